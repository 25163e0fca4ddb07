"""Run benchmark tasks: load → graphs → 5 folds → per-fold results (resumable) → results JSON + parity plot.

Layout on disk (``run_dir`` defaults to ``<out_dir>/runs``):
    <run_dir>/<task>/<model>/fold_<k>/fold.json         score, sizes, time, epochs (its presence = fold done)
    <run_dir>/<task>/<model>/fold_<k>/predictions.csv   id, target, prediction, fold
    <run_dir>/<task>/<model>/fold_<k>/train/            the trainer's checkpoints and logs
    <out_dir>/<task>__<model>.json                      the DESIGN.md results schema
    <out_dir>/plots/<task>__<model>.png                 parity plot (ROC curve for classification)

A fold whose ``fold.json`` exists is loaded, never recomputed; an interrupted fold resumes from the
trainer's ``last.ckpt``. Each fold trains for at most ``max_minutes`` (graph building is not counted).
Scores: MAE in the target's unit, or ROC-AUC; ``mean``/``std`` over the folds run (population std, as MatBench).
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from crystograph.bench import folds as folds_mod
from crystograph.bench.baselines import CGCNN, cgcnn_train_config, mean_predictor
from crystograph.bench.loaders import cache_dir, find_data_dir, load_task
from crystograph.bench.meta import hardware, versions, write_json
from crystograph.bench.registry import N_FOLDS, Task, resolve_tasks
from crystograph.errors import InputError

MODELS = ("crystograph", "cgcnn", "dummy")


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


def score(y_true: np.ndarray, y_pred: np.ndarray, metric: str) -> float:
    y_true = np.asarray(y_true, dtype=float).ravel()
    y_pred = np.asarray(y_pred, dtype=float).ravel()
    if metric == "MAE":
        return float(np.mean(np.abs(y_true - y_pred)))
    from sklearn.metrics import roc_auc_score

    if len(np.unique(y_true)) < 2:
        return float("nan")
    return float(roc_auc_score(y_true, y_pred))


def _setup_model(task: Task, model: str, preset: str, layout: str, max_minutes: float, seed: int,
                 epochs: int | None, accelerator: str):
    """(model_factory, graph_config, train_config, description) for a trainable model."""
    from crystograph.config import GraphConfig, ModelConfig, TrainConfig

    if model == "crystograph":
        from crystograph.nn import CrysToGraph

        mcfg = ModelConfig.preset(preset, layout=layout, task=task.task_type, n_targets=1)
        tcfg = TrainConfig.preset(preset, max_minutes=max_minutes, seed=seed, accelerator=accelerator)
        if epochs:
            tcfg.epochs = epochs
        return (lambda: CrysToGraph(mcfg)), mcfg.graph, tcfg, {"preset": preset, "layout": layout}
    if model == "cgcnn":
        tcfg = cgcnn_train_config(max_minutes, seed=seed, epochs=epochs or 300, accelerator=accelerator)
        return (lambda: CGCNN(n_targets=1, task=task.task_type)), GraphConfig(), tcfg, {"reference": "txie-93/cgcnn"}
    raise InputError("--model", f"unknown model {model!r}; choose one of {', '.join(MODELS)} (ALIGNN runs "
                                "externally: benchmarks/alignn_train.py on `crystograph bench --export-folds`)")


def _ids_hash(ids: Sequence[str]) -> str:
    return hashlib.sha1("\n".join(ids).encode()).hexdigest()


def _read_epochs(train_dir: Path) -> int | None:
    fit_json = train_dir / "fit.json"
    if fit_json.exists():
        try:
            return json.loads(fit_json.read_text()).get("epochs")
        except (OSError, ValueError):
            return None
    return None


def _validation_check(task: Task, fold_of: dict[str, int], data_dir: Path | None) -> bool | None:
    """Check MatBench folds against the official validation file when it is at hand; None = not checked."""
    if task.fold_scheme not in ("column", "matbench") or not (task.remote_name or "").startswith("matbench_"):
        return None
    base = find_data_dir(data_dir)
    vf = base / "matbench" / "matbench_v0.1_validation.json.gz" if base is not None else None
    if vf is None or not vf.exists():
        return None
    bad = folds_mod.check_official_folds(fold_of, vf, task.remote_name)
    if bad:
        raise InputError(str(vf), f"{len(bad)} ids of {task.name} are not in their official fold (e.g. {bad[:3]})")
    return True


def _dummy_scores(ids, y, fold_of, done: list[int], task: Task) -> float | None:
    """Mean score of the mean predictor on the same samples and folds (context for a budgeted model)."""
    if not done or len(ids) == 0:
        return None
    out = []
    for k in done:
        tr, te = folds_mod.split_indices(ids, fold_of, k)
        if tr and te:
            out.append(score(y[te, 0], mean_predictor(y[tr], len(te))[:, 0], task.metric))
    return float(np.mean(out)) if out else None


def _plot(task: Task, label: str, preds: list[Path], out_png: Path, dummy: float | None = None) -> Path | None:
    """Parity plot (MAE tasks) or ROC curve (classification) of every fold's test predictions."""
    import pandas as pd

    from crystograph.plots import parity_plot, roc_plot

    frames = [pd.read_csv(p) for p in preds if p.exists()]
    if not frames:
        return None
    df = pd.concat(frames)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    n = df["fold"].nunique()
    title = f"{task.name} — {label} ({n} fold{'s' if n != 1 else ''})"
    if task.metric == "MAE":
        return parity_plot(df["target"], df["prediction"], out_png, title=title, unit=task.unit, baseline_mae=dummy)
    return roc_plot(df["target"], df["prediction"], out_png, title=title)


def _claim_train_dir(train_dir: Path, fingerprint: dict, notes: list[str], fold: int) -> None:
    """An interrupted fold resumes from its last checkpoint only if it was started with the same settings;
    otherwise its partial training is discarded (and noted) rather than silently continued."""
    import shutil

    stamp = train_dir / "fingerprint.json"
    if train_dir.exists():
        previous = json.loads(stamp.read_text()) if stamp.exists() else None
        if previous != fingerprint:
            shutil.rmtree(train_dir)
            notes.append(f"fold {fold}: discarded an interrupted run started with other settings ({previous})")
        else:
            notes.append(f"fold {fold}: resumed from its last checkpoint")
    write_json(stamp, fingerprint)


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

    @property
    def label(self) -> str:
        return model_label(self.model, self.preset, self.layout)


@dataclass
class PreparedTask:
    """A task's samples, folds and model set-up, ready for training fold after fold."""

    task: Task
    loaded: Any  # LoadedTask
    fold_of: dict[str, int]
    verified: bool | None
    ids: list[str]
    y: np.ndarray  # [N, 1]
    graphs: list | None  # None for the dummy model
    graph_skipped: list
    factory: Any  # () -> nn.Module, or None
    train_config: Any  # TrainConfig, or None
    extra: dict[str, Any]
    notes: list[str]
    prep_s: float
    fingerprint: dict[str, Any] = field(default_factory=dict)


def run_bench(
    tasks: str | Sequence[str],
    model: str = "crystograph",
    preset: str = "small",
    folds: int | Sequence[int] | None = None,
    max_minutes: float = 3.0,
    data_dir: str | Path | None = None,
    *,
    out_dir: str | Path,
    strict: bool = False,
    layout: str = "stacked",
    run_dir: str | Path | None = None,
    seed: int = 0,
    limit: int | None = None,
    epochs: int | None = None,
    accelerator: str = "auto",
    allow_download: bool = True,
    graph_cache_dir: str | Path | None = None,
    command: str | None = None,
    progress: bool = True,
    plot: bool = True,
) -> list[dict[str, Any]]:
    """Benchmark `model` on `tasks` (names or groups, see `registry.GROUPS`); returns the results dicts.

    folds: None = all 5, an int n = folds 0..n-1, or a list of fold numbers. max_minutes: training budget per
    fold. out_dir: where ``<task>__<model>.json`` goes; run_dir: per-fold files (default ``<out_dir>/runs``).
    limit: use only the first `limit` rows (smoke tests). epochs: cap on epochs (default: the preset's; the
    budget usually stops training first)."""
    from rich.console import Console

    if model not in MODELS:
        raise InputError("--model", f"unknown model {model!r}; choose one of {', '.join(MODELS)} (ALIGNN runs "
                                    "externally: benchmarks/alignn_train.py on the exported folds CSV)")
    out_dir = Path(out_dir)
    settings = BenchSettings(
        model=model, preset=preset, layout=layout, fold_ids=_fold_list(folds), max_minutes=max_minutes,
        data_dir=Path(data_dir) if data_dir is not None else None, out_dir=out_dir,
        run_root=Path(run_dir) if run_dir is not None else out_dir / "runs",
        graph_cache=Path(graph_cache_dir) if graph_cache_dir is not None else cache_dir() / "graphs",
        strict=strict, seed=seed, limit=limit, epochs=epochs, accelerator=accelerator, allow_download=allow_download,
        command=command if command is not None else " ".join(sys.argv), progress=progress, plot=plot)
    console = Console(stderr=True, quiet=not progress)
    return [_run_task(task, settings, console) for task in resolve_tasks(tasks)]


def _prepare(task: Task, s: BenchSettings, console) -> PreparedTask:
    """Load the task, assign its folds and (for trained models) build the graphs and the training set-up."""
    console.rule(f"[bold]{task.name}[/] · {s.label} · {task.label()}")
    started = time.monotonic()
    loaded = load_task(task, s.data_dir, limit=s.limit, strict=s.strict, progress=s.progress,
                       allow_download=s.allow_download)
    fold_of = folds_mod.assign_folds(loaded, s.seed)
    verified = _validation_check(task, fold_of, s.data_dir)
    notes = [n for n in (task.notes,) if n]
    graph_skipped: list = []
    if s.model == "dummy":
        ids = [r.id for r in loaded.records]
        y = np.asarray([[r.targets[task.target]] for r in loaded.records], dtype=float).reshape(-1, 1)
        graphs, factory, tcfg, extra = None, None, None, {}
        notes.append("dummy: mean of the training targets; no graphs are built, so rows whose graph would fail "
                     "to build stay in (compare skipped counts)")
    else:
        from crystograph.data import build_graphs

        factory, gcfg, tcfg, extra = _setup_model(task, s.model, s.preset, s.layout, s.max_minutes, s.seed,
                                                  s.epochs, s.accelerator)
        graphs, graph_skipped = build_graphs(loaded.records, gcfg, targets=[task.target], cache_dir=s.graph_cache,
                                             progress=s.progress, strict=s.strict)
        ids = [str(g.sample_id) for g in graphs]
        y = np.concatenate([g.y.numpy() for g in graphs]).reshape(-1, 1) if graphs else np.zeros((0, 1))
    prep = PreparedTask(task, loaded, fold_of, verified, ids, y, graphs, graph_skipped, factory, tcfg, extra, notes,
                        time.monotonic() - started)
    prep.fingerprint = {"task": task.name, "model": s.label, "max_minutes": s.max_minutes if tcfg else None,
                        "seed": s.seed, "limit": s.limit, "epochs": tcfg.epochs if tcfg else None, **extra}
    n_skipped = len(loaded.skipped) + len(graph_skipped)
    console.print(f"{len(ids)} samples ({n_skipped} skipped) ready in {prep.prep_s:.0f} s")
    return prep


def _load_finished_fold(fold_json: Path, test_ids: list[str], prep: PreparedTask, k: int) -> dict[str, Any]:
    rec = json.loads(fold_json.read_text())
    if rec.get("test_ids_sha1") != _ids_hash(test_ids):
        raise InputError(str(fold_json), "this finished fold was computed on other test samples (different "
                                         "data, limit or seed); use another --run-dir or delete it")
    if rec.get("fingerprint") != prep.fingerprint:
        prep.notes.append(f"fold {k} reused from an earlier run with settings {rec.get('fingerprint')}")
    return rec


def _train_fold(k: int, fold_dir: Path, prep: PreparedTask, s: BenchSettings, console) -> dict[str, Any]:
    """Train (or fit the mean predictor) on the other folds, predict fold `k`, write its predictions and record."""
    import pandas as pd

    task = prep.task
    tr, te = folds_mod.split_indices(prep.ids, prep.fold_of, k)
    test_ids = [prep.ids[i] for i in te]
    t0 = time.monotonic()
    if s.model == "dummy":
        pred, n_epochs = mean_predictor(prep.y[tr], len(te), task.task_type), 0
    else:
        from crystograph.train import fit_predict

        console.print(f"fold {k}: training on {len(tr)}, testing on {len(te)} (≤ {s.max_minutes} min)")
        _claim_train_dir(fold_dir / "train", {**prep.fingerprint, "test_ids_sha1": _ids_hash(test_ids)}, prep.notes, k)
        pred = fit_predict(prep.factory, [prep.graphs[i] for i in tr], [prep.graphs[i] for i in te],
                           prep.train_config, fold_dir / "train", task.task_type, progress=s.progress)
        n_epochs = _read_epochs(fold_dir / "train")
    pred = np.asarray(pred, dtype=float).reshape(len(te), -1)[:, 0]
    truth = prep.y[te, 0]
    fold_dir.mkdir(parents=True, exist_ok=True)
    pred_csv = fold_dir / "predictions.csv"
    tmp = pred_csv.with_name(pred_csv.name + ".tmp")
    pd.DataFrame({"id": test_ids, "target": truth, "prediction": pred, "fold": k}).to_csv(tmp, index=False)
    tmp.replace(pred_csv)
    rec = {"fold": k, "score": score(truth, pred, task.metric), "n_test": len(te), "n_train": len(tr),
           "wall_s": time.monotonic() - t0, "epochs": n_epochs, "test_ids_sha1": _ids_hash(test_ids),
           "fingerprint": prep.fingerprint}
    write_json(fold_dir / "fold.json", rec)
    console.print(f"fold {k}: {task.metric} {rec['score']:.4g} {task.unit if task.metric == 'MAE' else ''}"
                  f" ({rec['wall_s']:.0f} s, {n_epochs} epochs)")
    return rec


def _run_task(task: Task, s: BenchSettings, console) -> dict[str, Any]:
    prep = _prepare(task, s, console)
    task_dir = s.run_root / task.name / s.label
    fold_records, pred_files, resumed = [], [], []
    available = sorted(set(prep.fold_of[i] for i in prep.ids))
    for k in [k for k in s.fold_ids if k in available]:
        fold_dir = task_dir / f"fold_{k}"
        if (fold_dir / "fold.json").exists():
            _, te = folds_mod.split_indices(prep.ids, prep.fold_of, k)
            rec = _load_finished_fold(fold_dir / "fold.json", [prep.ids[i] for i in te], prep, k)
            resumed.append(k)
            console.print(f"fold {k}: {task.metric} {rec['score']:.4g} (finished earlier, loaded)")
        else:
            rec = _train_fold(k, fold_dir, prep, s, console)
        fold_records.append({key: rec[key] for key in ("fold", "score", "n_test", "n_train", "wall_s", "epochs")})
        pred_files.append(fold_dir / "predictions.csv")
    if len(fold_records) < N_FOLDS:
        prep.notes.append(f"partial: {len(fold_records)} of {N_FOLDS} folds")
    if resumed:
        prep.notes.append(f"folds {resumed} loaded from {task_dir}")
    if s.limit is not None:
        prep.notes.append(f"limit: only the first {s.limit} rows were used (smoke test, not a benchmark number)")
    result = _result(prep, s, fold_records, task_dir)
    if s.plot and fold_records:
        png = _plot(task, s.label, pred_files, s.out_dir / "plots" / f"{task.name}__{s.label}.png",
                    result["dummy_same_folds"])
        result["plot"] = str(png) if png else None
    out_json = write_json(s.out_dir / f"{task.name}__{s.label}.json", result)
    mean = "n/a" if result["mean"] is None else f"{result['mean']:.4g} ± {result['std']:.2g}"
    console.print(f"[bold]{task.name} · {s.label}: {task.metric} {mean}[/] → {out_json}")
    return result


def _result(prep: PreparedTask, s: BenchSettings, fold_records: list[dict], task_dir: Path) -> dict[str, Any]:
    """The results JSON of one task (schema in docs/DESIGN.md)."""
    task, tcfg, loaded = prep.task, prep.train_config, prep.loaded
    scores = np.asarray([f["score"] for f in fold_records], dtype=float)
    skipped_all = list(loaded.skipped) + list(prep.graph_skipped)
    return {
        "task": task.name,
        "model": s.label,
        "metric": task.metric,
        "unit": task.unit if task.metric == "MAE" else None,
        "folds": fold_records,
        "mean": float(scores.mean()) if len(scores) else None,
        "std": float(scores.std()) if len(scores) else None,
        "budget_minutes_per_fold": s.max_minutes if tcfg else None,
        "command": s.command,
        "seed": s.seed,
        "data_source": loaded.data_source,
        "stand_in": {"label": task.label(), "is_stand_in": task.is_stand_in, "stands_in_for": task.stand_in_for,
                     "exact": task.exact, "benchmark": task.benchmark, "paper_name": task.paper_name},
        "hardware": hardware(s.accelerator if tcfg else None),
        "wall_s": prep.prep_s + float(sum(f["wall_s"] for f in fold_records)),
        "versions": versions(),
        "notes": prep.notes,
        "n_samples": len(prep.ids),
        "skipped": {"count": len(skipped_all), "reading": len(loaded.skipped), "graphs": len(prep.graph_skipped),
                    "examples": [str(x) for x in skipped_all[:20]]},
        "dummy_same_folds": _dummy_scores(prep.ids, prep.y, prep.fold_of, [f["fold"] for f in fold_records], task),
        "fold_scheme": task.fold_scheme,
        "folds_verified_against_official": prep.verified,
        "data_prep_s": prep.prep_s,
        "train_config": None if tcfg is None else {k: getattr(tcfg, k) for k in (
            "optimizer", "lr", "lr_schedule", "weight_decay", "batch_size", "epochs", "max_minutes", "patience",
            "val_fraction")},
        "model_details": prep.extra,
        "run_dir": str(task_dir),
    }
