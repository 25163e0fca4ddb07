"""Five-fold splits for the benchmark tasks, and their export for external baselines.

- MatBench v0.1 (official): ``KFold(5, shuffle=True, random_state=18012019)`` over the dataset order,
  ``StratifiedKFold`` with the same arguments for classification (matbench's
  ``scripts/mvb01_generate_validation.py``); fold k's test set is the k-th split. The local MatBench copies carry
  the same folds as a column (``official_test_fold``), checked against ``matbench_v0.1_validation.json.gz``.
- UnconvBench: ``KFold(5, shuffle=True, random_state=42)`` over the dataset order (authors' ``make_splits``).
- Every other task: ``KFold(5, shuffle=True, random_state=seed)`` over the rows sorted by id, so the folds do
  not depend on the file order.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from sklearn.model_selection import KFold, StratifiedKFold

from crystograph.bench.registry import MATBENCH_SEED, N_FOLDS, UNCONVBENCH_SEED, Task
from crystograph.errors import ConfigError, InputError


def fold_index(n: int, seed: int, *, y: Sequence | None = None, stratified: bool = False,
               n_folds: int = N_FOLDS) -> np.ndarray:
    """Test-fold number [n] of each of `n` rows in order, for a shuffled (stratified) k-fold."""
    if n < n_folds:
        raise InputError("folds", f"{n} rows cannot be split into {n_folds} folds")
    out = np.full(n, -1, dtype=int)
    if stratified:
        splitter = StratifiedKFold(n_folds, shuffle=True, random_state=seed)
        splits = splitter.split(np.zeros(n), np.asarray(y))
    else:
        splits = KFold(n_folds, shuffle=True, random_state=seed).split(np.arange(n))
    for k, (_, test) in enumerate(splits):
        out[test] = k
    return out


def matbench_fold_index(n: int, y: Sequence | None = None, classification: bool = False) -> np.ndarray:
    """Official MatBench v0.1 folds over the dataset order."""
    return fold_index(n, MATBENCH_SEED, y=y, stratified=classification)


def folds_by_id(ids: Sequence[str], seed: int) -> dict[str, int]:
    """Seeded k-fold over the ids sorted, so the assignment is independent of row order."""
    order = sorted(ids)
    return dict(zip(order, fold_index(len(order), seed).tolist()))


def assign_folds(loaded, seed: int = 0) -> dict[str, int]:
    """Fold of every row id of a `LoadedTask` (records and skipped rows alike)."""
    task: Task = loaded.task
    if task.fold_scheme == "column":
        if loaded.fold_of is None:
            raise ValueError(f"task {task.name} has no fold column values")
        return dict(loaded.fold_of)
    if task.fold_scheme == "matbench":
        clf = task.task_type == "classification"
        idx = matbench_fold_index(len(loaded.order), loaded.order_y if clf else None, clf)
        return dict(zip(loaded.order, idx.tolist()))
    if task.fold_scheme == "unconvbench":
        return dict(zip(loaded.order, fold_index(len(loaded.order), UNCONVBENCH_SEED).tolist()))
    if task.fold_scheme == "kfold_by_id":
        return folds_by_id(loaded.order, seed)
    raise ConfigError(f"unknown fold scheme {task.fold_scheme!r}")


def read_validation_file(path: str | Path, dataset: str | Sequence[str]):
    """Test fold of every id of `dataset` in a MatBench ``matbench_v0.1_validation.json(.gz)``:
    ``{id: fold}``, or ``{dataset: {id: fold}}`` when several datasets are asked for (one read of the file)."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as fh:
        doc = json.load(fh)
    names = [dataset] if isinstance(dataset, str) else list(dataset)
    result: dict[str, dict[str, int]] = {}
    for name in names:
        out: dict[str, int] = {}
        for key, split in doc["splits"][name].items():
            k = int(key.split("_")[-1])
            for rid in split["test"]:
                if rid in out:
                    raise ValueError(f"{rid} is in two test folds of {name}")
                out[rid] = k
        result[name] = out
    return result[dataset] if isinstance(dataset, str) else result


def _mismatches(folds: dict[str, int], official: dict[str, int]) -> list[str]:
    bad = [rid for rid, k in folds.items() if official.get(rid) != k]
    if len(folds) == len(official):
        bad += sorted(set(official) - set(folds))
    return bad


def check_official_folds(folds: dict[str, int], validation_file: str | Path, dataset: str) -> list[str]:
    """Ids whose fold differs from the official validation file (empty list = identical)."""
    return _mismatches(folds, read_validation_file(validation_file, dataset))


def split_indices(ids: Sequence[str], folds: dict[str, int], k: int) -> tuple[list[int], list[int]]:
    """(train, test) positions in `ids` for test fold `k`."""
    train, test = [], []
    for i, rid in enumerate(ids):
        (test if folds[rid] == k else train).append(i)
    return train, test


def export_folds_csv(task: Task | str, path: str | Path, *, data_dir: str | Path | None = None, seed: int = 0,
                     limit: int | None = None, loaded=None, progress: bool = True) -> Path:
    """Write ``id, cif, target, fold`` (one row per readable structure) for an external baseline (ALIGNN).

    The folds are the ones `run_bench` uses for the same task and seed; the CIF is written by pymatgen."""
    import pandas as pd

    from crystograph.bench.loaders import load_task
    from crystograph.bench.registry import get_task

    task = get_task(task) if isinstance(task, str) else task
    if loaded is None:
        loaded = load_task(task, data_dir, limit=limit, progress=progress)
    folds = assign_folds(loaded, seed)
    rows = [{"id": r.id, "cif": r.structure.to(fmt="cif"), "target": r.targets[task.target], "fold": folds[r.id]}
            for r in loaded.records]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows, columns=["id", "cif", "target", "fold"]).to_csv(path, index=False)
    return path
