"""`--config FILE.yaml` → the command's option values.

Keys are the option names users see (`out`, `format`, `target`, `batch-size` or `batch_size`), or the
parameter names; a scalar is accepted where an option takes a list. A run's own `config.yaml`
(sections `model`, `train`, `run`, as `crystograph train` writes it) is accepted back: its keys are
translated to options (`accelerator` → `device`, `targets` → `target`, the model sizes → `preset`, …),
and keys no option sets must hold their default values.
"""

from __future__ import annotations

import dataclasses
from typing import Any

# Keys of a run's config.yaml named differently from the option that sets them.
_RENAMED = {"accelerator": "device", "targets": "target", "atom_embedding_path": "atom_embeddings",
            "atom_embedding_trainable": "finetune_embeddings"}
_SIZES = ("hidden_dim", "num_heads", "head_dim", "n_etgc", "n_gwt", "n_ffnn", "ffn_mult")
_SIZE_OPTIONS = ("hidden_dim", "num_heads", "head_dim", "n_etgc", "n_gwt")  # sizes with their own option
_DERIVED = {"n_targets"}  # follows from the number of targets


class ConfigKeyError(ValueError):
    """A config key no option of the command takes, or a fixed setting with a non-default value."""


def option_names(params) -> dict[str, Any]:
    """Every spelling of each parameter (`out`, `out_dir`, `batch_size`, …) → the click parameter."""
    names = {}
    for p in params:
        names[p.name] = p
        for opt in [*getattr(p, "opts", []), *getattr(p, "secondary_opts", [])]:
            if opt.startswith("--"):
                names[opt[2:].replace("-", "_")] = p
    return names


def to_defaults(data: dict, params, command: str) -> dict[str, Any]:
    """The `default_map` for `command` from a YAML mapping; `ConfigKeyError` names every key it cannot use."""
    names = option_names([p for p in params if p.name != "config"])
    flat, errors = {}, []
    for key, value in _flatten(data, errors).items():
        param = names.get(key)
        if param is None:
            errors.append(f"unknown option {key!r}")
            continue
        if _takes_list(param) and not isinstance(value, list):
            value = [value]
        flat[param.name] = value
    if errors:
        known = sorted(k for k in names if not k.startswith("no_"))
        raise ConfigKeyError(f"{'; '.join(errors)} for `{command}`; known: {', '.join(known)}")
    return flat


def _takes_list(param) -> bool:
    return bool(getattr(param, "multiple", False)) or getattr(param, "nargs", 1) == -1


def _flatten(data: dict, errors: list[str]) -> dict[str, Any]:
    """Sections (`model`, `train`, `run`, `graph`) merged; a run's config.yaml translated to option names."""
    is_run_config = isinstance(data.get("model"), dict) and isinstance(data.get("train"), dict)
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict) and key in ("model", "train", "run", "graph"):
            for k, v in value.items():
                flat[k.replace("-", "_")] = v
        else:
            flat[key.replace("-", "_")] = value
    if is_run_config:
        flat = _from_run_config(flat, errors)
    return flat


def _preset_and_sizes(sizes: dict[str, Any], errors: list[str]) -> dict[str, Any]:
    """The preset whose sizes the run's match best, plus the size options (`--n-etgc`, …) that differ from it."""
    from crystograph.config import ModelConfig

    def differ(name: str) -> dict[str, Any]:
        return {k: v for k, v in sizes.items() if getattr(ModelConfig.preset(name), k) != v}

    fitting = [name for name in ("small", "paper") if set(differ(name)) <= set(_SIZE_OPTIONS)]
    if not fitting:
        errors.append(f"model sizes {sizes} match no --preset (small, paper) even with the size options "
                      f"({', '.join(_SIZE_OPTIONS)})")
        return {"preset": None}
    preset = min(fitting, key=lambda name: len(differ(name)))
    return {"preset": preset, **differ(preset)}


def _from_run_config(flat: dict[str, Any], errors: list[str]) -> dict[str, Any]:
    from crystograph.config import GraphConfig, TrainConfig
    from crystograph.train.run import RunOptions

    out = {_RENAMED.get(k, k): v for k, v in flat.items() if k not in _SIZES and k not in _DERIVED and k != "graph"}
    sizes = {k: flat[k] for k in _SIZES if k in flat}
    if sizes and "preset" not in out:
        out.update(_preset_and_sizes(sizes, errors))
    graph = flat.get("graph") or {}
    for k in ("pe_mode", "frame", "cell"):
        if k in graph:
            out[k] = graph[k]
    fixed = {f"graph.{f.name}": (graph[f.name], f.default) for f in dataclasses.fields(GraphConfig)
             if f.name not in ("pe_mode", "frame", "cell") and f.name in graph}
    for cls in (TrainConfig, RunOptions):
        for f in dataclasses.fields(cls):
            if f.name in ("optimizer", "lr_schedule", "lr_milestones", "loss", "val_fraction", "num_workers",
                          "test_fraction") and f.name in out:
                default = f.default_factory() if f.default is dataclasses.MISSING else f.default
                fixed[f.name] = (out.pop(f.name), default)
    for key, (value, default) in fixed.items():
        if value != default:
            errors.append(f"{key} = {value!r} cannot be set from the command line (only its default {default!r})")
    return out
