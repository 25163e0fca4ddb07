"""What a benchmark run reports: fold scores, the mean predictor on the same folds, the official-fold check,
the parity plot and the results JSON of a task."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from crystograph.bench import folds as folds_mod
from crystograph.bench.baselines import mean_predictor
from crystograph.bench.loaders import find_data_dir
from crystograph.bench.meta import hardware, versions
from crystograph.bench.registry import Task
from crystograph.errors import InputError

if TYPE_CHECKING:
    from crystograph.bench.runner import PreparedTask
    from crystograph.bench.settings import BenchSettings


def score(y_true: np.ndarray, y_pred: np.ndarray, metric: str) -> float:
    y_true = np.asarray(y_true, dtype=float).ravel()
    y_pred = np.asarray(y_pred, dtype=float).ravel()
    if metric == "MAE":
        return float(np.mean(np.abs(y_true - y_pred)))
    from sklearn.metrics import roc_auc_score

    if len(np.unique(y_true)) < 2:
        return float("nan")
    return float(roc_auc_score(y_true, y_pred))


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


def _result(prep: PreparedTask, s: BenchSettings, fold_records: list[dict], task_dir: Path) -> dict[str, Any]:
    """The results JSON of one task (schema in docs/DESIGN.md)."""
    task, tcfg, loaded = prep.task, prep.train_config, prep.loaded
    scores = np.asarray([f["score"] for f in fold_records], dtype=float)
    skipped_all = list(loaded.skipped) + list(prep.graph_skipped)
    vers = versions()
    return {
        "task": task.name,
        "model": s.label,
        "protocol": s.protocol,
        "preset": s.preset if s.model == "crystograph" else None,
        "ensemble": s.members,
        "metric": task.metric,
        "unit": task.unit if task.metric == "MAE" else None,
        "folds": fold_records,
        "mean": float(scores.mean()) if len(scores) else None,
        "std": float(scores.std()) if len(scores) else None,
        # budget: minutes per fit (each ensemble member gets this budget); converged: None (no wall-clock cap)
        "budget_minutes_per_fold": s.max_minutes if tcfg else None,
        "epoch_cap": tcfg.epochs if tcfg else None,
        "patience": tcfg.patience if tcfg else None,
        "atom_embeddings": str(s.atom_embeddings) if s.atom_embeddings is not None else None,
        "atom_embeddings_trainable": s.finetune_embeddings if s.atom_embeddings is not None else None,
        "precision": s.precision if s.model == "crystograph" else None,
        # CRYSTOGRAPH_COMPILE=1: eTGC attention through torch.compile (the same formulas, equal within ~1e-5)
        "fused_kernels": _fused_enabled() if s.model == "crystograph" else None,
        "commit": vers.get("git_commit"),  # this invocation's code; a fold loaded from disk names its own below
        "fold_commits": {str(f["fold"]): f.get("commit") for f in fold_records},  # None: trained before this was kept
        "command": s.command,
        "seed": s.seed,
        "data_source": loaded.data_source,
        "stand_in": {"label": task.label(), "is_stand_in": task.is_stand_in, "stands_in_for": task.stand_in_for,
                     "exact": task.exact, "benchmark": task.benchmark, "paper_name": task.paper_name},
        "hardware": hardware(s.accelerator if tcfg else None),
        "wall_s": prep.prep_s + float(sum(f["wall_s"] for f in fold_records)),
        "versions": vers,
        "notes": prep.notes,
        "n_samples": len(prep.ids),
        "skipped": {"count": len(skipped_all), "reading": len(loaded.skipped), "graphs": len(prep.graph_skipped),
                    "examples": [str(x) for x in skipped_all[:20]]},
        "dummy_same_folds": _dummy_scores(prep.ids, prep.y, prep.fold_of, [f["fold"] for f in fold_records], task),
        "fold_scheme": task.fold_scheme,
        "folds_verified_against_official": prep.verified,
        "data_prep_s": prep.prep_s,
        "train_config": None if tcfg is None else {k: getattr(tcfg, k) for k in (
            "optimizer", "lr", "lr_schedule", "lr_milestones", "loss", "weight_decay", "batch_size", "epochs",
            "max_minutes", "max_steps", "patience", "val_fraction")},
        "model_details": prep.extra,
        "run_dir": str(task_dir),
    }


def _fused_enabled() -> bool:
    from crystograph.nn import fused

    return fused.is_enabled()
