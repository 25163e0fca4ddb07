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
    import pandas as pd

    frames = [pd.read_csv(p) for p in preds if p.exists()]
    if not frames:
        return None
    df = pd.concat(frames)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    n = df["fold"].nunique()
    title = f"{task.name} — {label} ({n} fold{'s' if n != 1 else ''})"
    if task.metric == "MAE":
        from crystograph.plots import parity_plot

        return parity_plot(df["target"], df["prediction"], out_png, title=title, unit=task.unit, baseline_mae=dummy)
    from sklearn.metrics import roc_curve

    from crystograph.plots import new_figure, save

    fig, ax = new_figure((5, 5))
    if df["target"].nunique() > 1:
        fpr, tpr, _ = roc_curve(df["target"], df["prediction"])
        ax.plot(fpr, tpr, label=f"ROC-AUC {score(df['target'], df['prediction'], 'ROC-AUC'):.4f}")
    ax.plot([0, 1], [0, 1], "k--", lw=1)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(title)
    ax.legend(loc="lower right")
    return save(fig, out_png)


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
    fold. out_dir: where ``<task>__<model>.json`` goes; run_dir: per-fold files (default ``<out_dir>/runs``). limit: use only the first `limit` rows (smoke tests). epochs: cap on epochs
    (default 300; the budget usually stops training first)."""
    from rich.console import Console

    if model not in MODELS:
        raise InputError("--model", f"unknown model {model!r}; choose one of {', '.join(MODELS)} (ALIGNN runs "
                                    "externally: benchmarks/alignn_train.py on the exported folds CSV)")
    console = Console(stderr=True, quiet=not progress)
    out_dir = Path(out_dir)
    run_root = Path(run_dir) if run_dir is not None else out_dir / "runs"
    graph_cache = Path(graph_cache_dir) if graph_cache_dir is not None else cache_dir() / "graphs"
    command = command if command is not None else " ".join(sys.argv)
    fold_ids = _fold_list(folds)
    label = model_label(model, preset, layout)
    results = []
    for task in resolve_tasks(tasks):
        results.append(_run_task(task, model, label, preset, layout, fold_ids, max_minutes, data_dir, out_dir,
                                 run_root / task.name / label, graph_cache, strict, seed, limit, epochs,
                                 accelerator, allow_download, command, progress, plot, console))
    return results


def _run_task(task, model, label, preset, layout, fold_ids, max_minutes, data_dir, out_dir, task_dir, graph_cache,
              strict, seed, limit, epochs, accelerator, allow_download, command, progress, plot, console):
    console.rule(f"[bold]{task.name}[/] · {label} · {task.label()}")
    started = time.monotonic()
    loaded = load_task(task, data_dir, limit=limit, strict=strict, progress=progress, allow_download=allow_download)
    fold_of = folds_mod.assign_folds(loaded, seed)
    verified = _validation_check(task, fold_of, data_dir)
    notes = [n for n in (task.notes,) if n]
    graph_skipped: list = []
    if model == "dummy":
        ids = [r.id for r in loaded.records]
        y = np.asarray([[r.targets[task.target]] for r in loaded.records], dtype=float).reshape(-1, 1)
        graphs, factory, tcfg, extra = None, None, None, {}
        notes.append("dummy: mean of the training targets; no graphs are built, so rows whose graph would fail "
                     "to build stay in (compare skipped counts)")
    else:
        from crystograph.data import build_graphs

        factory, gcfg, tcfg, extra = _setup_model(task, model, preset, layout, max_minutes, seed, epochs,
                                                  accelerator)
        graphs, graph_skipped = build_graphs(loaded.records, gcfg, targets=[task.target], cache_dir=graph_cache,
                                             progress=progress, strict=strict)
        ids = [str(g.sample_id) for g in graphs]
        y = np.concatenate([g.y.numpy() for g in graphs]).reshape(-1, 1) if graphs else np.zeros((0, 1))
    prep_s = time.monotonic() - started
    n_skipped = len(loaded.skipped) + len(graph_skipped)
    console.print(f"{len(ids)} samples ({n_skipped} skipped) ready in {prep_s:.0f} s")
    fingerprint = {"task": task.name, "model": label, "max_minutes": max_minutes if tcfg else None, "seed": seed,
                   "limit": limit, "epochs": tcfg.epochs if tcfg else None, **extra}

    fold_records, pred_files, resumed = [], [], []
    available = sorted(set(fold_of[i] for i in ids))
    for k in [k for k in fold_ids if k in available]:
        fold_dir = task_dir / f"fold_{k}"
        fold_json, pred_csv = fold_dir / "fold.json", fold_dir / "predictions.csv"
        tr, te = folds_mod.split_indices(ids, fold_of, k)
        test_ids = [ids[i] for i in te]
        if fold_json.exists():
            rec = json.loads(fold_json.read_text())
            if rec.get("test_ids_sha1") != _ids_hash(test_ids):
                raise InputError(str(fold_json), "this finished fold was computed on other test samples (different "
                                                 "data, limit or seed); use another --run-dir or delete it")
            if rec.get("fingerprint") != fingerprint:
                notes.append(f"fold {k} reused from an earlier run with settings {rec.get('fingerprint')}")
            resumed.append(k)
            console.print(f"fold {k}: {task.metric} {rec['score']:.4g} (finished earlier, loaded)")
        else:
            t0 = time.monotonic()
            if model == "dummy":
                pred, n_epochs = mean_predictor(y[tr], len(te), task.task_type), 0
            else:
                from crystograph.train import fit_predict

                console.print(f"fold {k}: training on {len(tr)}, testing on {len(te)} (≤ {max_minutes} min)")
                _claim_train_dir(fold_dir / "train", {**fingerprint, "test_ids_sha1": _ids_hash(test_ids)}, notes, k)
                pred = fit_predict(factory, [graphs[i] for i in tr], [graphs[i] for i in te], tcfg,
                                   fold_dir / "train", task.task_type, progress=progress)
                n_epochs = _read_epochs(fold_dir / "train")
            pred = np.asarray(pred, dtype=float).reshape(len(te), -1)[:, 0]
            truth = y[te, 0]
            import pandas as pd

            fold_dir.mkdir(parents=True, exist_ok=True)
            tmp = pred_csv.with_name(pred_csv.name + ".tmp")
            pd.DataFrame({"id": test_ids, "target": truth, "prediction": pred, "fold": k}).to_csv(tmp, index=False)
            tmp.replace(pred_csv)
            rec = {"fold": k, "score": score(truth, pred, task.metric), "n_test": len(te), "n_train": len(tr),
                   "wall_s": time.monotonic() - t0, "epochs": n_epochs, "test_ids_sha1": _ids_hash(test_ids),
                   "fingerprint": fingerprint}
            write_json(fold_json, rec)
            console.print(f"fold {k}: {task.metric} {rec['score']:.4g} {task.unit if task.metric == 'MAE' else ''}"
                          f" ({rec['wall_s']:.0f} s, {n_epochs} epochs)")
        fold_records.append({key: rec[key] for key in ("fold", "score", "n_test", "n_train", "wall_s", "epochs")})
        pred_files.append(pred_csv)

    scores = np.asarray([f["score"] for f in fold_records], dtype=float)
    dummy = _dummy_scores(ids, y, fold_of, [f["fold"] for f in fold_records], task)
    if len(fold_records) < N_FOLDS:
        notes.append(f"partial: {len(fold_records)} of {N_FOLDS} folds")
    if resumed:
        notes.append(f"folds {resumed} loaded from {task_dir}")
    if limit is not None:
        notes.append(f"limit: only the first {limit} rows were used (smoke test, not a benchmark number)")
    skipped_all = list(loaded.skipped) + list(graph_skipped)
    result = {
        "task": task.name,
        "model": label,
        "metric": task.metric,
        "unit": task.unit if task.metric == "MAE" else None,
        "folds": fold_records,
        "mean": float(scores.mean()) if len(scores) else None,
        "std": float(scores.std()) if len(scores) else None,
        "budget_minutes_per_fold": max_minutes if tcfg else None,
        "command": command,
        "seed": seed,
        "data_source": loaded.data_source,
        "stand_in": {"label": task.label(), "is_stand_in": task.is_stand_in, "stands_in_for": task.stand_in_for,
                     "exact": task.exact, "benchmark": task.benchmark, "paper_name": task.paper_name},
        "hardware": hardware(accelerator if tcfg else None),
        "wall_s": prep_s + float(sum(f["wall_s"] for f in fold_records)),
        "versions": versions(),
        "notes": notes,
        "n_samples": len(ids),
        "skipped": {"count": len(skipped_all), "reading": len(loaded.skipped), "graphs": len(graph_skipped),
                    "examples": [str(s) for s in skipped_all[:20]]},
        "dummy_same_folds": dummy,
        "fold_scheme": task.fold_scheme,
        "folds_verified_against_official": verified,
        "data_prep_s": prep_s,
        "train_config": None if tcfg is None else {k: getattr(tcfg, k) for k in (
            "optimizer", "lr", "lr_schedule", "weight_decay", "batch_size", "epochs", "max_minutes", "patience",
            "val_fraction")},
        "model_details": extra,
        "run_dir": str(task_dir),
    }
    if plot and fold_records:
        png = _plot(task, label, pred_files, out_dir / "plots" / f"{task.name}__{label}.png", dummy)
        result["plot"] = str(png) if png else None
    out_json = write_json(out_dir / f"{task.name}__{label}.json", result)
    mean = "n/a" if result["mean"] is None else f"{result['mean']:.4g} ± {result['std']:.2g}"
    console.print(f"[bold]{task.name} · {label}: {task.metric} {mean}[/] → {out_json}")
    return result
