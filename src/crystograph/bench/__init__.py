"""Benchmarks: task registry (MatBench v0.1, UnconvBench, offline stand-ins), loaders, official folds,
baselines (mean predictor, CGCNN), the resumable runner and the results table.

    from crystograph.bench import run_bench, TASKS
    run_bench(["local_matbench_jdft2d"], model="crystograph", preset="small", max_minutes=3, out_dir="results")

Heavy modules (torch) load on first use, so `crystograph.bench.TASKS` is cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from crystograph.bench.registry import GROUPS, LOCAL_TASKS, MATBENCH_TASKS, TASKS, UNCONVBENCH_TASKS, Task, get_task

_LAZY = {
    "run_bench": "crystograph.bench.runner",
    "model_label": "crystograph.bench.runner",
    "MODELS": "crystograph.bench.runner",
    "load_task": "crystograph.bench.loaders",
    "cache_dir": "crystograph.bench.loaders",
    "find_data_dir": "crystograph.bench.loaders",
    "assign_folds": "crystograph.bench.folds",
    "export_folds_csv": "crystograph.bench.folds",
    "CGCNN": "crystograph.bench.baselines",
    "mean_predictor": "crystograph.bench.baselines",
    "make_table": "crystograph.bench.report",
    "glance_table": "crystograph.bench.report",
}

__all__ = ["GROUPS", "LOCAL_TASKS", "MATBENCH_TASKS", "TASKS", "UNCONVBENCH_TASKS", "Task", "get_task", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'crystograph.bench' has no attribute {name!r}")
