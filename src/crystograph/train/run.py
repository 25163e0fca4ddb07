"""A training run: holdout or k-fold cross-validation, each fold an ensemble of seeds.

Layout of a run directory::

    RUN/config.yaml                 resolved model + train + run options (every flag)
    RUN/fold_<f>/member_<m>/        one fitted network: checkpoints/, metrics.csv,
                                    learning_curve.png, model.safetensors + model.json
    RUN/fold_<f>/test_predictions.csv
    RUN/predictions.csv             id, target, prediction (ensemble mean), std, fold
    RUN/parity.png, RUN/summary.json

A holdout run is "fold_0" with a seeded test split. A finished member (its model.json exists) is
never refitted, and an unfinished one resumes from its `last.ckpt`: a killed run picks up where it
stopped. `load_model(RUN)` uses every member of every fold as one ensemble.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import yaml

from crystograph.config import ModelConfig, TrainConfig, to_dict
from crystograph.errors import CrystographError
from crystograph.data import kfold_indices, stack_targets, train_val_split
from crystograph.data.store import sample_ids, take
from crystograph.train.checks import (
    check_same_data,
    check_sizes,
    check_targets,
    check_train_config,
    data_fingerprint,
    run_started,
)
from crystograph.train.export import MANIFEST, save_model, to_units, write_atomic
from crystograph.train.module import PropertyModule
from crystograph.train.fit import fit, is_global_zero, predict


@dataclass
class RunOptions:
    """What a run trains on; saved in config.yaml beside the model and train configs."""

    data: list[str] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)
    test_fraction: float = 0.1  # holdout runs only (folds == 1)


@dataclass
class RunResult:
    out_dir: Path
    fold_mae: list[float]
    dummy_mae: list[float]
    wall_s: float
    n_graphs: int

    @property
    def mean_mae(self) -> float:
        return float(np.mean(self.fold_mae))

    @property
    def mean_dummy_mae(self) -> float:
        return float(np.mean(self.dummy_mae))


# Settings that may differ when a run is resumed (where and how fast it runs, not what it learns).
_RESUMABLE_KEYS = {"accelerator", "devices", "num_nodes", "strategy", "num_workers", "max_minutes", "deterministic",
                   "data"}  # `data`: the paths may move; data.json's fingerprint says whether the data changed


def write_config(out_dir: Path, model_config: ModelConfig, train_config: TrainConfig, options: RunOptions) -> Path:
    """Write config.yaml; refuse a directory that holds a run with other settings (its finished members
    would otherwise be reused, and scored on a split they may have trained on)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "config.yaml"
    config = yaml.safe_load(yaml.safe_dump(
        {"model": to_dict(model_config), "train": to_dict(train_config), "run": dataclasses.asdict(options)}))
    if path.exists() and run_started(out_dir):  # a run that failed before its first checkpoint never started
        previous = yaml.safe_load(path.read_text()) or {}
        changed = sorted(f"{section}.{key}" for section in config for key in config[section]
                         if key not in _RESUMABLE_KEYS and key in previous.get(section, {})
                         and previous[section][key] != config[section][key])
        if changed:
            raise CrystographError(f"{out_dir}: holds a run with other settings ({', '.join(changed[:6])} differ); "
                                   "resume it with the same settings, or choose another --out")
    write_atomic(path, yaml.safe_dump(config, sort_keys=False).encode())
    return path


def _splits(n: int, train_config: TrainConfig, options: RunOptions) -> list[tuple[np.ndarray, np.ndarray]]:
    if train_config.folds > 1:
        return kfold_indices(n, train_config.folds, seed=train_config.seed)
    train_idx, test_idx = train_val_split(n, options.test_fraction, seed=train_config.seed)
    return [(train_idx, test_idx)]


def _fit_member(graphs, train_idx, member_dir: Path, model_config: ModelConfig, train_config: TrainConfig,
                options: RunOptions, seed: int, progress: bool):
    """Fit (or resume, or reuse) one ensemble member; returns the network in eval mode."""
    from crystograph.nn import CrysToGraph
    from crystograph.train.export import load_model_dir

    if (member_dir / MANIFEST).exists():
        model, _ = load_model_dir(member_dir)
        return model, None
    tr, va = train_val_split(len(train_idx), train_config.val_fraction, seed=seed)
    torch.manual_seed(seed)  # the initial weights depend on the member's seed only
    result = fit(CrysToGraph(model_config), take(graphs, train_idx[tr]), take(graphs, train_idx[va]),
                 train_config, member_dir, task=model_config.task, seed=seed, progress=progress)
    module = result.module
    _check_finite(module, result, member_dir)
    if not is_global_zero():  # DDP worker processes train; rank 0 alone writes files
        return module, result
    save_model(member_dir, module.model, model_config, task=model_config.task, targets=options.targets,
               y_mean=module.y_mean.tolist(), y_std=module.y_std.tolist(),
               extra={"best_val_mae": result.val_mae, "epochs": result.epochs, "steps": int(module.global_step),
                      "train_wall_s": result.wall_s, "seed": seed,
                      "domain": training_domain(take(graphs, train_idx))})
    return module, result


def _check_finite(module, result, member_dir: Path) -> None:
    """A fit whose loss or weights went non-finite stops the run; its checkpoints are removed (a rerun
    would resume the diverged state)."""
    import shutil

    weights_ok = all(bool(torch.isfinite(p).all()) for p in module.parameters())
    if weights_ok and not _logged_non_finite(member_dir / "metrics.csv"):
        return
    shutil.rmtree(member_dir / "checkpoints", ignore_errors=True)
    raise CrystographError(f"{member_dir}: training diverged (non-finite loss or weights); no model was saved — "
                           "check the targets' scale, or lower --lr")


def _logged_non_finite(metrics_csv: Path) -> bool:
    """True if the CSV log holds a nan/inf loss (blank cells are epochs without that metric)."""
    import pandas as pd

    if not metrics_csv.exists() or metrics_csv.stat().st_size == 0:
        return False
    log = pd.read_csv(metrics_csv, dtype=str, keep_default_na=False)
    cells = [v.strip().lower() for c in log.columns if "loss" in c or "mae" in c for v in log[c]]
    return any(v in ("nan", "inf", "-inf", "infinity", "-infinity") for v in cells)


def training_domain(graphs: Sequence) -> dict:
    """Elements (atomic numbers) and cell sizes (atoms per cell) a member was trained on."""
    if hasattr(graphs, "domain"):  # a graph store: from its arrays, without building the graphs
        return graphs.domain()
    elements = sorted({int(z) for g in graphs for z in g.z.tolist()})
    sizes = [int(g.num_nodes) for g in graphs]
    return {"elements": elements, "n_atoms": [min(sizes), max(sizes)] if sizes else [0, 0]}


def _to_units(model, raw: np.ndarray, member_dir: Path) -> np.ndarray:
    """A freshly fitted PropertyModule predicts in target units; a network loaded from disk needs its manifest."""
    if isinstance(model, PropertyModule):
        return raw
    return to_units(raw, json.loads((member_dir / MANIFEST).read_text()))


def train_run(graphs: Sequence, out_dir: Path | str, model_config: ModelConfig, train_config: TrainConfig,
              options: RunOptions, *, progress: bool = True) -> RunResult:
    """Cross-validate (folds > 1) or hold out a test split, with `ensemble` seeds per fold."""
    import pandas as pd

    from crystograph.plots import parity_plot

    out_dir = Path(out_dir)
    rank_zero = is_global_zero()
    check_train_config(train_config)
    check_sizes(len(graphs), train_config)
    y = stack_targets(graphs)  # [N, T]
    ids = sample_ids(graphs)
    check_targets(y, ids, options.targets, model_config.task)
    if rank_zero:
        check_same_data(out_dir, data_fingerprint(graphs, ids, y))
        write_config(out_dir, model_config, train_config, options)
    started = time.monotonic()
    fold_mae, dummy_mae, frames = [], [], []
    for fold, (train_idx, test_idx) in enumerate(_splits(len(graphs), train_config, options)):
        fold_dir = out_dir / f"fold_{fold}"
        member_preds = []
        for member in range(train_config.ensemble):
            member_dir = fold_dir / f"member_{member}"
            seed = train_config.seed + 1000 * fold + member
            model, _ = _fit_member(graphs, train_idx, member_dir, model_config, train_config, options, seed, progress)
            raw = predict(model, take(graphs, test_idx), batch_size=max(64, train_config.batch_size))
            member_preds.append(_to_units(model, raw, member_dir))
        preds = np.stack(member_preds)  # [M, n_test, T]
        mean, std = preds.mean(axis=0), preds.std(axis=0)
        y_test = y[test_idx]
        fold_mae.append(float(np.abs(mean - y_test).mean()))
        dummy_mae.append(float(np.abs(y[train_idx].mean(axis=0) - y_test).mean()))
        frame = pd.DataFrame({"id": [ids[i] for i in test_idx], "fold": fold})
        for t, name in enumerate(options.targets or ["target"]):
            frame[name] = y_test[:, t]
            frame[f"{name}_pred"] = mean[:, t]
            frame[f"{name}_std"] = std[:, t]
        if rank_zero:
            frame.to_csv(fold_dir / "test_predictions.csv", index=False)
        frames.append(frame)
    wall_s = time.monotonic() - started
    result = RunResult(out_dir, fold_mae, dummy_mae, wall_s, len(graphs))
    if not rank_zero:
        return result
    table = pd.concat(frames, ignore_index=True)
    table.to_csv(out_dir / "predictions.csv", index=False)
    name = (options.targets or ["target"])[0]
    parity_plot(table[name], table[f"{name}_pred"], out_dir / "parity.png", title=f"{name}: held-out predictions",
                baseline_mae=float(np.mean(dummy_mae)))
    (out_dir / "summary.json").write_text(json.dumps({
        "targets": options.targets, "n_graphs": len(graphs), "folds": train_config.folds,
        "ensemble": train_config.ensemble, "fold_mae": fold_mae, "mean_mae": result.mean_mae,
        "dummy_fold_mae": dummy_mae, "mean_dummy_mae": result.mean_dummy_mae,
        "ratio_to_dummy": result.mean_mae / result.mean_dummy_mae if result.mean_dummy_mae else None,
        "wall_s": wall_s,
    }, indent=2))
    return result
