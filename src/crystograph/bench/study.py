"""Ablation studies (paper 3.2-3.3, A.2-A.4, A.8): tasks × named model variants × folds, under one budget.

A study file (YAML; keys with ``-`` or ``_``, as the CLI options)::

    study: components                 # name of the outputs (default: the file name)
    paper: "Fig. 13"                  # what it reproduces (free text)
    tasks: [paper_bulk_s, paper_bulk_m, paper_bulk_l]   # names or groups of `crystograph bench --list`
    preset: small                     # ModelConfig.preset the variants start from
    model: {n-etgc: 3, n-gwt: 1}      # overrides shared by every variant
    budget: {folds: 3, max-minutes: 4, epochs: null, max-steps: null}   # per fold
    reference: full                   # the variant the others are divided by (default: the first)
    variants:                         # name -> ModelConfig / GraphConfig overrides
      full: {}
      no_gwt: {layout: no_gwt}

Each (task, variant) cell is one `crystograph.bench.runner.run_bench` call, so cells use the benchmark's
folds, and a finished fold is loaded, never recomputed (an interrupted one resumes from its checkpoint);
the variants of a task share one read of its data, and graphs come from the graph cache.
A cell is named by its configuration (``crystograph-small-no_gwt-n_etgc_3``), not by the variant name.
On disk: ``RUN_DIR/<study>/<task>/<label>/fold_<k>/`` (the runner's fold files and checkpoints; without a run
dir, ``OUT/<study>/runs/<task>/…``), ``OUT/<study>/cells/<task>__<label>.json`` (the runner's results JSON), and
``OUT/<study>.json`` and ``OUT/<study>.png``, built from every finished cell on disk (also of earlier runs).

Scores are the runner's: MAE on the held-out test fold; the summary JSON and figure are `study_summary`'s.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crystograph.errors import InputError

STUDY_KEYS = {"study", "description", "paper", "tasks", "preset", "model", "budget", "reference", "variants", "seed"}
BUDGET_KEYS = {"folds", "max_minutes", "epochs", "max_steps"}
_NOT_VARIED = {"graph", "task", "n_targets", "atom_embedding_path", "atom_embedding_trainable"}


def _key(key: Any) -> str:
    return str(key).replace("-", "_")


def knob_names() -> tuple[set[str], set[str]]:
    """(ModelConfig fields, GraphConfig fields) a variant may override."""
    from crystograph.config import GraphConfig, ModelConfig

    model = {f.name for f in dataclasses.fields(ModelConfig)} - _NOT_VARIED
    return model, {f.name for f in dataclasses.fields(GraphConfig)}


def model_config(preset: str, task_type: str, overrides: dict[str, Any]):
    """`ModelConfig.preset(preset)` with `overrides` (ModelConfig and GraphConfig field names) applied."""
    from crystograph.config import ModelConfig

    model_keys, graph_keys = knob_names()
    unknown = sorted(set(overrides) - model_keys - graph_keys)
    if unknown:
        raise InputError("variant", f"unknown model/graph settings {unknown}; known: {sorted(model_keys | graph_keys)}")
    try:
        return with_overrides(ModelConfig.preset(preset, task=task_type, n_targets=1), overrides)
    except (TypeError, ValueError) as err:
        raise InputError("variant", str(err)) from None


def normalize(preset: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """`overrides` with ``_`` keys, checked, without the settings that equal the preset's."""
    overrides = {_key(k): v for k, v in (overrides or {}).items()}
    cfg = model_config(preset, "regression", overrides)
    base = model_config(preset, "regression", {})
    out = {}
    for k, v in sorted(overrides.items()):
        owner, base_owner = (cfg, base) if hasattr(cfg, k) else (cfg.graph, base.graph)
        now = getattr(owner, k)
        if now != getattr(base_owner, k):
            out[k] = now
    return out


def variant_suffix(overrides: dict[str, Any]) -> str:
    """``-n_etgc_3-pe_mode_rw`` for the non-layout overrides (the layout is in the runner's model label)."""
    parts = [f"{k}_{re.sub(r'[^A-Za-z0-9.]+', '_', str(v))}" for k, v in sorted(overrides.items()) if k != "layout"]
    return "".join(f"-{p}" for p in parts)


def cell_label(preset: str, overrides: dict[str, Any]) -> str:
    from crystograph.bench.runner import model_label

    return model_label("crystograph", preset, overrides.get("layout", "stacked")) + variant_suffix(overrides)


@dataclass(frozen=True)
class Variant:
    name: str
    overrides: dict[str, Any]  # normalized: only the settings that differ from the preset
    label: str  # the runner's model label of this configuration


@dataclass
class Study:
    name: str
    tasks: list[str]
    variants: list[Variant]
    reference: str
    preset: str = "small"
    folds: list[int] = dataclasses.field(default_factory=lambda: [0, 1, 2, 3, 4])
    max_minutes: float = 3.0
    epochs: int | None = None
    max_steps: int | None = None
    seed: int = 0
    paper: str = ""
    description: str = ""

    def variant(self, name: str) -> Variant:
        return next(v for v in self.variants if v.name == name)

    def cells(self) -> list[tuple[str, Variant]]:
        """(task, variant) pairs, task-major; variants with the same configuration share one cell."""
        return [(t, v) for t in self.tasks for v in self.variants]

    def budget_text(self) -> str:
        """The per-fold budget in words: a step budget when set (the time cap is then a safety net)."""
        if self.max_steps is not None:
            return f"{self.max_steps} steps per fold"
        return f"≤ {self.max_minutes:g} min per fold"

    def estimate_cpu_minutes(self) -> float:
        """Training budget of every distinct cell and fold (graph building and data loading not counted)."""
        distinct = {(t, v.label) for t, v in self.cells()}
        return len(distinct) * len(self.folds) * self.max_minutes


def parse_study(data: dict[str, Any], default_name: str = "study") -> Study:
    """A `Study` from a YAML mapping (see the module docstring); InputError naming the bad key otherwise."""
    from crystograph.bench.registry import resolve_tasks
    from crystograph.bench.runner import _fold_list, parse_folds

    data = {_key(k): v for k, v in (data or {}).items()}
    bad = sorted(set(data) - STUDY_KEYS)
    if bad:
        raise InputError("study", f"unknown keys {bad}; known: {sorted(STUDY_KEYS)}")
    budget = {_key(k): v for k, v in (data.get("budget") or {}).items()}
    if set(budget) - BUDGET_KEYS:
        raise InputError("study", f"unknown budget keys {sorted(set(budget) - BUDGET_KEYS)}; "
                                  f"known: {sorted(BUDGET_KEYS)}")
    preset = data.get("preset", "small")
    shared = {_key(k): v for k, v in (data.get("model") or {}).items()}
    raw = data.get("variants") or {}
    if not isinstance(raw, dict) or not raw:
        raise InputError("study", "`variants` must map variant names to settings (at least one)")
    variants = []
    for name, over in raw.items():
        norm = normalize(preset, {**shared, **{_key(k): v for k, v in (over or {}).items()}})
        variants.append(Variant(str(name), norm, cell_label(preset, norm)))
    reference = str(data.get("reference", variants[0].name))
    if reference not in {v.name for v in variants}:
        raise InputError("study", f"reference {reference!r} is not one of the variants")
    tasks = data.get("tasks") or []
    folds = budget.get("folds")
    try:
        folds = _fold_list(parse_folds(folds) if isinstance(folds, str) else folds)
        numbers = {"max_minutes": float(budget.get("max_minutes", 3.0)), "seed": int(data.get("seed", 0)),
                   **{k: None if budget.get(k) is None else int(budget[k]) for k in ("epochs", "max_steps")}}
    except (TypeError, ValueError) as err:
        raise InputError("study", f"budget and seed must be numbers (folds: N or a list of fold numbers): {err}") \
            from None
    return Study(name=str(data.get("study", default_name)), tasks=[t.name for t in resolve_tasks(tasks)],
                 variants=variants, reference=reference, preset=preset, folds=folds, paper=str(data.get("paper", "")),
                 description=str(data.get("description", "")).strip(), **numbers)


def load_study(path: str | Path) -> Study:
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise InputError(str(path), f"cannot read the study file ({err})") from None
    if not isinstance(data, dict):
        raise InputError(str(path), "a study file is a mapping (study, tasks, budget, variants, …)")
    return parse_study(data, default_name=path.stem)


def select(study: Study, tasks: Sequence[str] | None = None, variants: Sequence[str] | None = None,
           folds: Sequence[int] | None = None, keep_reference: bool = True) -> Study:
    """The study restricted to some tasks / variants (the reference is kept, it is the denominator, unless
    `keep_reference` is False: processes that share a study's variants run the reference in one of them), and
    run on other `folds`."""
    names = {v.name for v in study.variants}
    unknown = sorted(set(variants or ()) - names)
    if unknown:
        raise InputError("--variants", f"unknown variants {unknown}; the study has {sorted(names)}")
    keep = set(variants or names) | ({study.reference} if keep_reference or not variants else set())
    out = dataclasses.replace(study, variants=[v for v in study.variants if v.name in keep],
                              folds=list(folds) if folds else study.folds)
    if tasks:
        missing = sorted(set(tasks) - set(study.tasks))
        if missing:
            raise InputError("--tasks", f"tasks {missing} are not in the study ({', '.join(study.tasks)})")
        out.tasks = [t for t in study.tasks if t in set(tasks)]
    return out


# ------------------------------------------------------------------------------------------------ running
def with_overrides(mcfg, overrides: dict[str, Any]):
    """`mcfg` (a ModelConfig) with ModelConfig / GraphConfig field overrides."""
    _, graph_keys = knob_names()
    graph = dataclasses.replace(mcfg.graph, **{k: v for k, v in overrides.items() if k in graph_keys})
    return dataclasses.replace(mcfg, graph=graph, **{k: v for k, v in overrides.items() if k not in graph_keys})


@contextmanager
def _one_load_per_task() -> Iterator[None]:
    """Variants of a task share one read of its data (parsing thousands of CIFs takes minutes); cells are run
    task after task, so only the last task's records are kept."""
    from crystograph.bench import runner

    load, last = runner.load_task, {}

    def cached(task, *args, **kwargs):
        key = (task.name, repr(args), repr(sorted(kwargs.items())))
        if key not in last:
            last.clear()
            last[key] = load(task, *args, **kwargs)
        return last[key]

    runner.load_task = cached
    try:
        yield
    finally:
        runner.load_task = load


def _check_models(study: Study) -> None:
    """Build each variant's model once before any work: a layout without layers fails here, not mid-study."""
    from crystograph.nn import CrysToGraph

    for v in study.variants:
        try:
            CrysToGraph(model_config(study.preset, "regression", v.overrides))
        except ValueError as err:
            raise InputError(f"variant {v.name}", str(err)) from None


def run_study(study: Study, out_dir: str | Path, *, tasks: Sequence[str] | None = None,
              variants: Sequence[str] | None = None, folds: Sequence[int] | None = None,
              run_dir: str | Path | None = None,
              data_dir: str | Path | None = None, limit: int | None = None, accelerator: str = "auto",
              allow_download: bool = True, graph_cache_dir: str | Path | None = None, command: str | None = None,
              progress: bool = True, keep_reference: bool = True) -> dict[str, Any]:
    """Run every missing fold of every cell (or of those of `tasks` / `variants`, on `folds`), then write
    ``OUT/<study>.json`` and ``OUT/<study>.png`` from all of the study's cells on disk, over the study's folds
    and `folds`. Per-fold files (checkpoints, predictions) go to ``RUN_DIR/<study>/`` (default
    ``OUT/<study>/runs``)."""
    from crystograph.bench.runner import run_bench
    from crystograph.bench.study_summary import write_summary

    full, study = study, select(study, tasks, variants, folds, keep_reference=keep_reference)
    full = dataclasses.replace(full, folds=sorted(set(full.folds) | set(study.folds)))
    _check_models(study)
    root = Path(out_dir) / study.name
    runs = Path(run_dir) / study.name if run_dir is not None else root / "runs"
    done: set[tuple[str, str]] = set()
    with _one_load_per_task():
        for task, v in study.cells():
            if (task, v.label) in done or _finished_cell(root, task, v, study, limit):
                continue
            done.add((task, v.label))
            run_bench(task, model="crystograph", preset=study.preset, layout=v.overrides.get("layout", "stacked"),
                      folds=study.folds, max_minutes=study.max_minutes, data_dir=data_dir, out_dir=root / "cells",
                      run_dir=runs, seed=study.seed, limit=limit, epochs=study.epochs, accelerator=accelerator,
                      allow_download=allow_download, graph_cache_dir=graph_cache_dir, command=command,
                      progress=progress, plot=False, max_steps=study.max_steps, model_overrides=v.overrides)
    return write_summary(full, out_dir, limit=limit, command=command)


def _finished_cell(root: Path, task: str, v: Variant, study: Study, limit: int | None) -> bool:
    """Whether the cell's results JSON already holds every fold of the study, trained with the study's budget
    (preset, seed, steps, minutes, epochs, row limit): such a cell is not run again, even where its per-fold
    folder is gone (a new machine). Anything else goes to the runner, which resumes or refuses."""
    path = root / "cells" / f"{task}__{v.label}.json"
    if not path.exists():
        return False
    res = json.loads(path.read_text())
    train = res.get("train_config") or {}
    same = (res.get("preset") == study.preset and res.get("seed") == study.seed
            and (res.get("data_source") or {}).get("limit") == limit and train.get("max_steps") == study.max_steps
            and train.get("max_minutes") == study.max_minutes
            and (study.epochs is None or res.get("epoch_cap") == study.epochs))
    scored = {f["fold"] for f in res.get("folds", []) if f.get("score") is not None}
    return same and set(study.folds) <= scored
