"""Run benchmark tasks: load → graphs → 5 folds → per-fold results (resumable) → results JSON + parity plot.

Layout on disk (``run_dir`` defaults to ``<out_dir>/runs``):
    <run_dir>/<task>/<model>/fold_<k>/fold.json         score, sizes, time, epochs (its presence = fold done)
    <run_dir>/<task>/<model>/fold_<k>/predictions.csv   id, target, prediction, fold
    <run_dir>/<task>/<model>/fold_<k>/train/            the trainer's checkpoints and logs
    <out_dir>/<task>__<model>.json                      the DESIGN.md results schema
    <out_dir>/plots/<task>__<model>.png                 parity plot (ROC curve for classification)

A fold whose ``fold.json`` exists is loaded, never recomputed; an interrupted fold resumes from the
trainer's ``last.ckpt``. A folder holds one set of settings (``<task>/<model>/settings.json``, the fingerprint):
a rerun with other settings into it is refused.

Protocols (recorded as ``"protocol"`` in every results JSON):
    budget      each fit (fold / ensemble member) trains for at most ``max_minutes`` (graph building not
                counted), early stopping and the epoch cap may stop it first. Results:
                ``<out_dir>/<task>__<model>.json``.
    converged   no wall-clock cap: each fit trains until early stopping on its inner validation split
                (``TrainConfig.patience``) or the epoch cap (Table A1: 300). Results:
                ``<out_dir>/converged/<task>__<model>.json``, per-fold files under ``<run_dir>/converged/``.
Both take the paper's recipe options: ``ensemble`` members per fold (prediction = their mean; member m
trains with seed ``seed + m`` in ``fold_<k>/train`` (m = 0) or ``fold_<k>/train_member_<m>``; a finished
member is never retrained), pretrained ``atom_embeddings`` (a file or ``"default"``, the table shipped in the
package; frozen, or fine-tuned with ``finetune_embeddings``), ``weight_decay`` (A.7), ``precision``.
Scores: MAE in the target's unit, or ROC-AUC; ``mean``/``std`` over the folds run (population std, as MatBench).
"""

from __future__ import annotations

import dataclasses
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
from crystograph.bench.baselines import mean_predictor
from crystograph.bench.loaders import cache_dir, load_task
from crystograph.bench.meta import process_commit, write_json
from crystograph.bench.record import _plot, _result, _validation_check, score  # noqa: F401  (_plot: tests)
from crystograph.bench.registry import N_FOLDS, Task, resolve_tasks
from crystograph.bench.settings import (  # noqa: F401  (model_label, parse_folds: the runner's interface)
    MODELS,
    BenchSettings,
    _check_overrides,
    _check_protocol,
    _fold_list,
    _resolve_embeddings,
    _setup_model,
    model_label,
    parse_folds,
)
from crystograph.data.store import take
from crystograph.errors import InputError


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
    max_minutes: float | None = None,
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
    protocol: str = "budget",
    ensemble: int = 1,
    atom_embeddings: str | Path | None = None,
    weight_decay: float | None = None,
    precision: str = "fp32",
    patience: int | None = None,
    finetune_embeddings: bool = False,
    max_steps: int | None = None,
    model_overrides: dict[str, Any] | None = None,
    graph_workers: int = 1,
    loss: str | None = None,
) -> list[dict[str, Any]]:
    """Benchmark `model` on `tasks` (names or groups, see `registry.GROUPS`); returns the results dicts.

    folds: None = all 5, an int n = folds 0..n-1, or a list of fold numbers. protocol: "budget" (each fit trains
    for at most `max_minutes`, default 3) or "converged" (until early stopping or the epoch cap; no `max_minutes`).
    out_dir: where ``<task>__<model>.json`` goes (``<out_dir>/converged/`` for the converged protocol); run_dir:
    per-fold files (default ``<out_dir>/runs``). limit: use only the first `limit` rows (smoke tests). epochs: cap
    on epochs (default: the preset's, Table A1's 300). ensemble: members per fold (mean prediction); atom_embeddings:
    a pretrained table (``crystograph pretrain``, or ``"default"``: the shipped one); finetune_embeddings: train the
    table with the network (default: frozen, as the paper's code); weight_decay: AdamW/SGD weight decay (default:
    the model's recipe); precision: fp32 | bf16; patience: early-stopping patience in epochs (default TrainConfig's);
    max_steps: optimiser steps per fit (a budget independent of the machine's load; the clock cap still applies);
    model_overrides: ModelConfig / GraphConfig fields set over the preset (CrysToGraph; they name the results
    ``<model label>-<field>_<value>…``, see `study.variant_suffix`); graph_workers: processes that build the graphs
    (default 1, the benchmark's own share of the machine; 0 = every usable core; the graphs do not depend on it);
    loss: "l1" | "mse" on the standardised target (default: the model's recipe, L1 for CrysToGraph, MSE for
    CGCNN)."""
    from rich.console import Console

    if model not in MODELS:
        raise InputError("--model", f"unknown model {model!r}; choose one of {', '.join(MODELS)} (ALIGNN runs "
                                    "externally: benchmarks/alignn_train.py on the exported folds CSV)")
    max_minutes = _check_protocol(model, protocol, max_minutes, ensemble, atom_embeddings, weight_decay, precision,
                                  patience, epochs, finetune_embeddings, max_steps, loss)
    layout, overrides = _check_overrides(model, preset, layout, model_overrides)
    out_dir = Path(out_dir)
    settings = BenchSettings(
        model=model, preset=preset, layout=layout, fold_ids=_fold_list(folds), max_minutes=max_minutes,
        data_dir=Path(data_dir) if data_dir is not None else None, out_dir=out_dir,
        run_root=Path(run_dir) if run_dir is not None else out_dir / "runs",
        graph_cache=Path(graph_cache_dir) if graph_cache_dir is not None else cache_dir() / "graphs",
        strict=strict, seed=seed, limit=limit, epochs=epochs, accelerator=accelerator, allow_download=allow_download,
        command=command if command is not None else " ".join(sys.argv), progress=progress, plot=plot,
        protocol=protocol, ensemble=int(ensemble), atom_embeddings=_resolve_embeddings(atom_embeddings),
        finetune_embeddings=bool(finetune_embeddings), weight_decay=weight_decay, precision=precision,
        patience=patience, max_steps=None if max_steps is None else int(max_steps), model_overrides=overrides,
        graph_workers=int(graph_workers), loss=loss)
    console = Console(stderr=True, quiet=not progress)
    process_commit()  # the code this run imported, named by every fold it trains (the tree may change meanwhile)
    return [_run_task(task, settings, console) for task in resolve_tasks(tasks)]


def _check_settings(task_dir: Path, fingerprint: dict[str, Any]) -> None:
    """One folder, one set of settings: a rerun with other settings (budget, epochs, recipe, protocol, …) into a
    folder that holds a run is refused, so finished folds are never mixed with folds of another recipe."""
    stamp = task_dir / "settings.json"
    previous = [json.loads(stamp.read_text())] if stamp.exists() else [
        json.loads(f.read_text()).get("fingerprint") for f in sorted(task_dir.glob("fold_*/fold.json"))]
    for prev in previous:
        if prev is not None and prev != fingerprint:
            keys = sorted(set(prev) | set(fingerprint))
            diff = {k: [prev.get(k), fingerprint.get(k)] for k in keys if prev.get(k) != fingerprint.get(k)}
            raise InputError(str(task_dir), f"this folder holds a run with other settings (was → now: {diff}); "
                                            "rerun with the same settings to resume, or use another --run-dir / "
                                            "--out, or delete it")
    write_json(stamp, fingerprint)


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
        graphs, factory, tcfg, extra = None, None, None, ({"protocol": s.protocol} if s.converged else {})
        notes.append("dummy: mean of the training targets; no graphs are built, so rows whose graph would fail "
                     "to build stay in (compare skipped counts)")
    else:
        from crystograph.data import build_graphs

        factory, gcfg, tcfg, extra = _setup_model(task, s)
        graphs, graph_skipped = build_graphs(loaded.records, gcfg, targets=[task.target], cache_dir=s.graph_cache,
                                             progress=s.progress, strict=s.strict, workers=s.graph_workers)
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
    truth = prep.y[te, 0]
    members: list[dict[str, Any]] = []
    if s.model == "dummy":
        pred, n_epochs = mean_predictor(prep.y[tr], len(te), task.task_type), 0
    else:
        cap = prep.train_config.epochs
        limit = f"≤ {s.max_minutes} min" if s.max_minutes else f"until early stopping, ≤ {cap} epochs"
        limit = f"≤ {s.max_steps} steps, {limit}" if s.max_steps else limit
        console.print(f"fold {k}: training on {len(tr)}, testing on {len(te)} ({limit}"
                      + (f", {s.members} members" if s.members > 1 else "") + ")")
        member_preds = []
        for m in range(s.members):
            p, rec_m = _fit_member(k, m, fold_dir, tr, te, test_ids, prep, s, console)
            member_preds.append(p)
            members.append({**rec_m, "score": score(truth, p, task.metric)})
        pred = np.mean(member_preds, axis=0)
        known = [r["epochs"] for r in members if r["epochs"] is not None]
        n_epochs = max(known) if known else None
    pred = np.asarray(pred, dtype=float).reshape(len(te), -1)[:, 0]
    fold_dir.mkdir(parents=True, exist_ok=True)
    pred_csv = fold_dir / "predictions.csv"
    tmp = pred_csv.with_name(pred_csv.name + ".tmp")
    pd.DataFrame({"id": test_ids, "target": truth, "prediction": pred, "fold": k}).to_csv(tmp, index=False)
    tmp.replace(pred_csv)
    rec = {"fold": k, "score": score(truth, pred, task.metric), "n_test": len(te), "n_train": len(tr),
           "wall_s": time.monotonic() - t0, "epochs": n_epochs, "test_ids_sha1": _ids_hash(test_ids),
           "fingerprint": prep.fingerprint, "commit": process_commit()}  # the code that trained this fold
    if members:
        rec["members"] = [{**r, "stopped_by": _stopped_by(r["epochs"], prep.train_config.epochs, s)} for r in members]
    write_json(fold_dir / "fold.json", rec)
    console.print(f"fold {k}: {task.metric} {rec['score']:.4g} {task.unit if task.metric == 'MAE' else ''}"
                  f" ({rec['wall_s']:.0f} s, {n_epochs} epochs)")
    return rec


def _fit_member(k: int, m: int, fold_dir: Path, tr: list[int], te: list[int], test_ids: list[str],
                prep: PreparedTask, s: BenchSettings, console) -> tuple[np.ndarray, dict[str, Any]]:
    """Fit ensemble member `m` of fold `k` (seed ``seed + m``) and predict the test fold; a member whose
    ``member.json`` exists is loaded, not retrained. Member 0 lives in ``fold_<k>/train`` (the layout of a
    single-model fold), member m > 0 in ``fold_<k>/train_member_<m>``."""
    import pandas as pd

    from crystograph import train as train_mod

    member_dir = fold_dir / ("train" if m == 0 else f"train_member_{m}")
    done, preds_csv = member_dir / "member.json", member_dir / "member_predictions.csv"
    if done.exists() and preds_csv.exists():
        rec = json.loads(done.read_text())
        table = pd.read_csv(preds_csv, dtype={"id": str})
        if rec.get("test_ids_sha1") == _ids_hash(test_ids) and list(table["id"]) == test_ids:
            console.print(f"fold {k} member {m}: finished earlier, loaded")
            return table["prediction"].to_numpy(dtype=float), {key: rec[key] for key in ("member", "seed", "epochs",
                                                                                          "wall_s")}
    seed = s.seed + m
    stamp = {**prep.fingerprint, "test_ids_sha1": _ids_hash(test_ids)}
    if m > 0:
        stamp["member"] = m
    _claim_train_dir(member_dir, stamp, prep.notes, k)
    tcfg = dataclasses.replace(prep.train_config, seed=seed)
    t0 = time.monotonic()
    pred = train_mod.fit_predict(_seeded(prep.factory, seed), take(prep.graphs, tr), take(prep.graphs, te), tcfg,
                                 member_dir, prep.task.task_type,
                                 progress=s.progress)
    pred = np.asarray(pred, dtype=float).reshape(len(te), -1)[:, 0]
    rec = {"member": m, "seed": seed, "epochs": _read_epochs(member_dir), "wall_s": time.monotonic() - t0}
    tmp = preds_csv.with_name(preds_csv.name + ".tmp")
    pd.DataFrame({"id": test_ids, "prediction": pred}).to_csv(tmp, index=False)
    tmp.replace(preds_csv)
    write_json(done, {**rec, "test_ids_sha1": _ids_hash(test_ids)})
    if s.members > 1:
        console.print(f"fold {k} member {m}: {rec['epochs']} epochs, {rec['wall_s']:.0f} s")
    return pred, rec


def _stopped_by(epochs: int | None, cap: int, s: BenchSettings) -> str | None:
    """What ended a fit: the epoch cap, or (before it) early stopping — or, under a budget, possibly the clock."""
    if epochs is None:
        return None
    if epochs >= cap:
        return "epoch_cap"
    return "early_stopping" if s.max_minutes is None else "early_stopping_or_budget"


def _seeded(factory, seed: int):
    """The factory with the initial weights fixed by `seed` (an ensemble member's weights depend on its seed only)."""
    def build():
        import torch

        torch.manual_seed(seed)
        return factory()

    return build


def _run_task(task: Task, s: BenchSettings, console) -> dict[str, Any]:
    prep = _prepare(task, s, console)
    task_dir = s.task_dir(task.name)
    _check_settings(task_dir, prep.fingerprint)
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
        fold_records.append({key: rec[key] for key in ("fold", "score", "n_test", "n_train", "wall_s", "epochs",
                                                       "members", "commit") if key in rec})
        pred_files.append(fold_dir / "predictions.csv")
    if len(fold_records) < N_FOLDS:
        prep.notes.append(f"partial: {len(fold_records)} of {N_FOLDS} folds")
    if resumed:
        prep.notes.append(f"folds {resumed} loaded from {task_dir}")
    if s.limit is not None:
        prep.notes.append(f"limit: only the first {s.limit} rows were used (smoke test, not a benchmark number)")
    result = _result(prep, s, fold_records, task_dir)
    if s.plot and fold_records:
        png = _plot(task, s.label, pred_files, s.results_dir / "plots" / f"{task.name}__{s.label}.png",
                    result["dummy_same_folds"])
        result["plot"] = str(png) if png else None
    out_json = write_json(s.results_dir / f"{task.name}__{s.label}.json", result)
    mean = "n/a" if result["mean"] is None else f"{result['mean']:.4g} ± {result['std']:.2g}"
    console.print(f"[bold]{task.name} · {s.label}: {task.metric} {mean}[/] → {out_json}")
    return result
