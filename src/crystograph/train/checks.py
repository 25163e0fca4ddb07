"""Checks a training run makes before it writes anything: options, targets, labels, and the data fingerprint.

A run that would train on nothing, on targets float32 cannot hold, or on data other than the data its finished
members saw fails here with a message saying how to proceed, before `config.yaml` is written.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from crystograph.config import TrainConfig
from crystograph.errors import CrystographError

DATA_FILE = "data.json"  # RUN/data.json: fingerprint of the ids, targets and structures a run trains on
FLOAT32_MAX = float(np.finfo(np.float32).max)
OUTLIER_FACTOR = 1e6  # a |target| this many times the median |target| is reported


def _lightning_strategies() -> set[str]:
    try:
        from lightning.pytorch.strategies import StrategyRegistry

        return set(StrategyRegistry.available_strategies())
    except Exception:  # an older or newer Lightning without the registry: Lightning itself decides
        return set()


def check_train_config(cfg: TrainConfig) -> None:
    """Numeric options a run cannot start with, named as the CLI spells them."""
    problems = []
    for name, value, low in (("epochs", cfg.epochs, 1), ("ensemble", cfg.ensemble, 1), ("folds", cfg.folds, 1),
                             ("batch-size", cfg.batch_size, 1), ("patience", cfg.patience, 0)):
        if value < low:
            problems.append(f"--{name} {value} (must be ≥ {low})")
    if cfg.max_minutes is not None and not cfg.max_minutes > 0:
        problems.append(f"--max-minutes {cfg.max_minutes} (must be > 0)")
    if cfg.max_steps is not None and cfg.max_steps < 1:
        problems.append(f"--max-steps {cfg.max_steps} (must be ≥ 1)")
    if not cfg.lr > 0:
        problems.append(f"--lr {cfg.lr} (must be > 0)")
    if cfg.num_nodes < 1:
        problems.append(f"--num-nodes {cfg.num_nodes} (must be ≥ 1)")
    strategies = _lightning_strategies()
    if cfg.strategy != "auto" and strategies and cfg.strategy not in strategies:
        problems.append(f"--strategy {cfg.strategy!r} (Lightning knows auto, {', '.join(sorted(strategies))})")
    if problems:
        raise CrystographError(f"invalid option(s): {'; '.join(problems)}")


def check_sizes(n: int, cfg: TrainConfig) -> None:
    """Enough samples for the folds (k-fold: two per fold) or for train, validation and test (holdout: three)."""
    if cfg.folds > 1 and n < 2 * cfg.folds:
        raise CrystographError(f"{n} usable structures are too few for --folds {cfg.folds} (need at least "
                               f"{2 * cfg.folds}); use fewer folds or more data")
    if cfg.folds == 1 and n < 3:
        raise CrystographError(f"only {n} usable structures: too few to train (need at least 3)")


def check_targets(y: np.ndarray, ids: Sequence[str], names: Sequence[str], task: str) -> None:
    """Finite float32 targets (and standardisation statistics); 0/1 labels for classification; a warning
    naming extreme outliers."""
    names = list(names) or ["target"]
    for t, name in enumerate(names):
        col = np.asarray(y[:, t], dtype=np.float64)
        bad = np.flatnonzero(~np.isfinite(col) | (np.abs(col) > FLOAT32_MAX))
        if len(bad):
            raise CrystographError(f"target '{name}' of {ids[bad[0]]} is {col[bad[0]]:g}, not a finite float32 "
                                   f"({len(bad)} such values); fix or rescale the data")
        if task == "classification":
            odd = np.flatnonzero(~np.isin(col, (0.0, 1.0)))
            if len(odd):
                raise CrystographError(f"classification needs labels 0 or 1: target '{name}' of {ids[odd[0]]} is "
                                       f"{col[odd[0]]:g} ({len(odd)} such values); use --task regression")
            continue
        mean, std = col.mean(), col.std()
        if not (np.isfinite(np.float32(mean)) and np.isfinite(np.float32(std))):
            raise CrystographError(f"target '{name}': mean {mean:g} / std {std:g} overflow float32; rescale it")
        median = float(np.median(np.abs(col)))
        far = np.flatnonzero(np.abs(col) > OUTLIER_FACTOR * median) if median > 0 else []
        if len(far):
            k = int(far[np.argmax(np.abs(col[far]))])
            warnings.warn(f"target '{name}': {len(far)} value(s) over {OUTLIER_FACTOR:g} × the median |value| "
                          f"({median:g}), e.g. {ids[k]} = {col[k]:g}; check the units", stacklevel=2)


def data_fingerprint(graphs: Sequence, ids: Sequence[str], y: np.ndarray) -> dict[str, str]:
    """SHA-1 of the ids, of the targets and of the structures (atomic numbers, positions, neighbour vectors)."""
    id_hash = hashlib.sha1("\n".join(ids).encode()).hexdigest()
    target_hash = hashlib.sha1(np.ascontiguousarray(y, dtype=np.float64).tobytes()).hexdigest()
    h = hashlib.sha1()
    for g in graphs:
        for name in ("z", "pos", "edge_vec"):
            value = getattr(g, name, None)
            if value is not None:
                h.update(value.detach().cpu().numpy().round(6).tobytes())
    return {"ids": id_hash, "targets": target_hash, "structures": h.hexdigest(), "n": str(len(ids))}


def run_started(out_dir: Path) -> bool:
    """True once any member has a checkpoint or a saved model (a run that failed before that never started)."""
    return any(out_dir.glob("fold_*/member_*/model.json")) or any(out_dir.glob("fold_*/member_*/checkpoints/*.ckpt"))


def check_same_data(out_dir: Path, fingerprint: dict[str, str]) -> None:
    """Refuse a started run whose recorded data differ from `fingerprint`; record it otherwise."""
    path = out_dir / DATA_FILE
    if path.exists() and run_started(out_dir):
        try:
            previous = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            previous = {}
        changed = [key for key in ("ids", "targets", "structures") if previous.get(key) != fingerprint[key]]
        if changed:
            raise CrystographError(
                f"{out_dir}: its models were trained on other data ({', '.join(changed)} differ); reusing them "
                "would report their old metrics — choose another --out, or delete this folder to retrain")
    elif not path.exists() and run_started(out_dir):
        raise CrystographError(f"{out_dir}: holds models without a record of their data ({DATA_FILE}); choose "
                               "another --out, or delete this folder to retrain")
    from crystograph.train.export import write_atomic

    write_atomic(path, json.dumps(fingerprint, indent=2).encode())
