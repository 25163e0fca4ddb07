"""What a benchmark run is asked for: the model, its label, folds, protocol and recipe options, checked before
any data is read (`BenchSettings`, `_check_protocol`), and the model / training set-up of one task."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crystograph.bench.baselines import CGCNN, CGCNN_RECIPE, cgcnn_train_config
from crystograph.bench.registry import N_FOLDS, Task
from crystograph.bench.study import variant_suffix, with_overrides
from crystograph.errors import InputError

MODELS = ("crystograph", "cgcnn", "dummy")
PROTOCOLS = ("budget", "converged")
DEFAULT_BUDGET_MINUTES = 3.0
PRECISIONS = ("fp32", "bf16")
LOSSES = ("l1", "mse")  # TrainConfig.loss


def model_label(model: str, preset: str = "small", layout: str = "stacked") -> str:
    """Name used in file names and tables: ``crystograph-small``, ``crystograph-paper-no_gwt``, ``cgcnn``, …"""
    if model != "crystograph":
        return model
    return f"crystograph-{preset}" + ("" if layout == "stacked" else f"-{layout}")


def parse_folds(text: str | None) -> int | list[int] | None:
    """``"2"`` = folds 0 and 1; ``"0,3"`` or ``"3,"`` = those fold numbers; None = all."""
    if text is None:
        return None
    parts = [p.strip() for p in str(text).split(",") if p.strip()]
    try:
        if len(parts) == 1 and not str(text).strip().endswith(","):
            return int(parts[0])
        return [int(p) for p in parts]
    except ValueError:
        raise InputError("--folds", f"expected N or a comma-separated list of fold numbers (got {text!r})") from None


def _fold_list(folds: int | Sequence[int] | None) -> list[int]:
    if folds is None:
        return list(range(N_FOLDS))
    if isinstance(folds, int):
        if not 1 <= folds <= N_FOLDS:
            raise InputError("--folds", f"number of folds must be 1..{N_FOLDS} (got {folds})")
        return list(range(folds))
    out = sorted({int(k) for k in folds})
    if not out or out[0] < 0 or out[-1] >= N_FOLDS:
        raise InputError("--folds", f"fold numbers must be in 0..{N_FOLDS - 1} (got {list(folds)})")
    return out


@dataclass
class BenchSettings:
    """Everything `run_bench` was asked for, shared by every task and fold."""

    model: str
    preset: str
    layout: str
    fold_ids: list[int]
    max_minutes: float
    data_dir: Path | None
    out_dir: Path
    run_root: Path
    graph_cache: Path
    strict: bool
    seed: int
    limit: int | None
    epochs: int | None
    accelerator: str
    allow_download: bool
    command: str
    progress: bool
    plot: bool
    protocol: str = "budget"
    ensemble: int = 1
    atom_embeddings: Path | None = None  # resolved: "default" is the shipped file's path
    finetune_embeddings: bool = False
    weight_decay: float | None = None
    precision: str = "fp32"
    patience: int | None = None
    max_steps: int | None = None  # optimiser steps per fit (reproducible, unlike the clock)
    loss: str | None = None  # regression loss on the standardised target (None: the model's recipe)
    # ModelConfig / GraphConfig fields set over the preset (CrysToGraph only; those equal to the preset's left out)
    model_overrides: dict[str, Any] = field(default_factory=dict)
    graph_workers: int = 1  # processes building the graphs (not in the fingerprint: the graphs do not depend on it)

    @property
    def label(self) -> str:
        """``<model label>`` and, for CrysToGraph with overrides, ``-<field>_<value>…`` (`variant_suffix`)."""
        suffix = variant_suffix(self.model_overrides) if self.model == "crystograph" else ""
        return model_label(self.model, self.preset, self.layout) + suffix

    @property
    def converged(self) -> bool:
        return self.protocol == "converged"

    @property
    def members(self) -> int:
        """Fits per fold (the mean predictor needs one)."""
        return 1 if self.model == "dummy" else self.ensemble

    @property
    def results_dir(self) -> Path:
        return self.out_dir / "converged" if self.converged else self.out_dir

    def task_dir(self, task_name: str) -> Path:
        return self.run_root / ("converged" if self.converged else "") / task_name / self.label

    def recipe(self) -> dict[str, Any]:
        """The non-default protocol/recipe options (fingerprint and ``model_details``)."""
        out: dict[str, Any] = {}
        if self.converged:
            out["protocol"] = self.protocol
        if self.ensemble != 1:
            out["ensemble"] = self.ensemble
        if self.atom_embeddings is not None:
            out["atom_embeddings"] = {"file": self.atom_embeddings.name, "sha256": _sha256(self.atom_embeddings)}
        if self.finetune_embeddings:
            out["atom_embeddings_trainable"] = True
        if self.weight_decay is not None:
            out["weight_decay"] = self.weight_decay
        if self.precision != "fp32":
            out["precision"] = self.precision
        if self.patience is not None:
            out["patience"] = self.patience
        if self.max_steps is not None:
            out["max_steps"] = self.max_steps
        if self.loss is not None:
            out["loss"] = self.loss
        return out


def _setup_model(task: Task, s: "BenchSettings"):
    """(model_factory, graph_config, train_config, description) for a trainable model. The description goes into
    the fingerprint: recipe options appear in it only when they differ from the defaults, so a default budget run
    has the same fingerprint with or without them named."""
    from crystograph.config import GraphConfig, ModelConfig, TrainConfig

    overrides: dict[str, Any] = {}
    if s.weight_decay is not None:
        overrides["weight_decay"] = s.weight_decay
    if s.patience is not None:
        overrides["patience"] = s.patience
    if s.max_steps is not None:
        overrides["max_steps"] = s.max_steps
    if s.loss is not None:
        overrides["loss"] = s.loss
    if s.model == "crystograph":
        from crystograph.nn import CrysToGraph

        emb = str(s.atom_embeddings) if s.atom_embeddings is not None else None
        mcfg = ModelConfig.preset(s.preset, layout=s.layout, task=task.task_type, n_targets=1, precision=s.precision,
                                  atom_embedding_path=emb, atom_embedding_trainable=s.finetune_embeddings)
        tcfg = TrainConfig.preset(s.preset, max_minutes=s.max_minutes, seed=s.seed, accelerator=s.accelerator,
                                  **overrides)
        if s.model_overrides:
            mcfg = with_overrides(mcfg, s.model_overrides)
        if s.epochs:
            tcfg.epochs = s.epochs
        extra = {"preset": s.preset, "layout": s.layout, **s.recipe(), **s.model_overrides}
        return (lambda: CrysToGraph(mcfg)), mcfg.graph, tcfg, extra
    if s.model == "cgcnn":
        tcfg = cgcnn_train_config(s.max_minutes, seed=s.seed, epochs=s.epochs or 300, accelerator=s.accelerator,
                                  **overrides)
        extra = {"reference": "txie-93/cgcnn", "recipe": CGCNN_RECIPE, **s.recipe()}
        return (lambda: CGCNN(n_targets=1, task=task.task_type)), GraphConfig(), tcfg, extra
    raise InputError("--model", f"unknown model {s.model!r}; choose one of {', '.join(MODELS)} (ALIGNN runs "
                                "externally: benchmarks/alignn_train.py on `crystograph bench --export-folds`)")


def _check_overrides(model: str, preset: str, layout: str,
                     overrides: dict[str, Any] | None) -> tuple[str, dict[str, Any]]:
    """(layout, the overrides that differ from the preset's, checked); a layout among the overrides must agree with
    `layout`."""
    if not overrides:
        return layout, {}
    if model != "crystograph":
        raise InputError("--" + next(iter(overrides)).replace("_", "-"),
                         f"applies to --model crystograph only (got --model {model})")
    from crystograph.bench.study import normalize

    given = overrides.get("layout", layout)
    if given != layout:
        raise InputError("--layout", f"two layouts given: {layout!r} and {given!r} among the model settings")
    out = normalize(preset, overrides)
    out.pop("layout", None)
    return layout, out


def _resolve_embeddings(value: str | Path | None) -> Path | None:
    from crystograph.embeddings import resolve

    return None if value is None else resolve(value)


def _check_protocol(model, protocol, max_minutes, ensemble, atom_embeddings, weight_decay, precision, patience,
                    epochs, finetune_embeddings=False, max_steps=None, loss=None) -> float | None:
    """Validate the protocol/recipe options before any data is read; returns the per-fit budget in minutes."""
    if protocol not in PROTOCOLS:
        raise InputError("--protocol", f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    if protocol == "converged" and max_minutes is not None:
        raise InputError("--max-minutes", "the converged protocol has no wall-clock cap (it trains until early "
                                          "stopping); cap it with --epochs instead")
    if max_minutes is not None and not max_minutes > 0:
        raise InputError("--max-minutes", f"must be > 0 (got {max_minutes})")
    if int(ensemble) < 1:
        raise InputError("--ensemble", f"must be at least 1 (got {ensemble})")
    if precision not in PRECISIONS:
        raise InputError("--precision", f"choose one of {', '.join(PRECISIONS)} (got {precision!r})")
    if weight_decay is not None and not weight_decay >= 0:
        raise InputError("--weight-decay", f"must be >= 0 (got {weight_decay})")
    if patience is not None and patience < 0:
        raise InputError("--patience", f"must be >= 0 (got {patience})")
    if epochs is not None and epochs < 1:
        raise InputError("--epochs", f"must be at least 1 (got {epochs})")
    if loss is not None and (model == "dummy" or loss not in LOSSES):
        raise InputError("--loss", f"choose one of {', '.join(LOSSES)} for a trained model (got {loss!r}, "
                                   f"--model {model})")
    if max_steps is not None and (model == "dummy" or int(max_steps) < 1):
        raise InputError("--max-steps", f"must be ≥ 1 and applies to trained models (got {max_steps}, --model {model})")
    if model != "crystograph":
        for flag, given in (("--atom-embeddings", atom_embeddings is not None), ("--precision", precision != "fp32"),
                            ("--finetune-embeddings", finetune_embeddings)):
            if given:
                raise InputError(flag, f"applies to --model crystograph only (got --model {model})")
    if finetune_embeddings and atom_embeddings is None:
        raise InputError("--finetune-embeddings", "needs --atom-embeddings (a table to fine-tune)")
    if atom_embeddings is not None:
        from crystograph.nn import load_atom_embedding

        load_atom_embedding(atom_embeddings)  # a missing or malformed table fails here, before any training
    if protocol == "converged":
        return None
    return DEFAULT_BUDGET_MINUTES if max_minutes is None else float(max_minutes)


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
