"""What a benchmark result needs to be reproducible: hardware, package versions, git commit; JSON writing.

Standard library only (torch is imported lazily and may be absent), so that `benchmarks/_common.py` can load
this file by path from any virtual environment (the ALIGNN one has no crystograph). One schema for every
result file::

    hardware: {cpu, cpu_cores, cpu_cores_usable, torch_threads, gpu, accelerator, threads_requested,
               platform, python, load_avg_1m_at_start}
    versions: {python, <package>: version or null, ..., git_commit}
"""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import sys
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("crystograph", "torch", "torch_geometric", "lightning", "pymatgen", "numpy", "scikit-learn", "pandas")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _torch_info() -> tuple[int | None, str | None]:
    """(intra-op threads, GPU name) from torch when it is installed, else (None, None)."""
    try:
        import torch
    except ImportError:
        return None, None
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return torch.get_num_threads(), gpu


def hardware(accelerator: str | None = None, threads: int | None = None) -> dict[str, Any]:
    """CPU model and cores (all, and those this process may use), torch threads, GPU name if any, the
    accelerator and thread count asked for, and the machine's 1-minute load when the measurement started."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    torch_threads, gpu = _torch_info()
    return {
        "cpu": cpu_model(),
        "cpu_cores": os.cpu_count(),
        "cpu_cores_usable": usable,
        "torch_threads": torch_threads,
        "gpu": gpu,
        "accelerator": accelerator,
        "threads_requested": threads,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_avg_1m_at_start": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
    }


# pathspecs of the files whose changes make a run's commit "-dirty": the whole tree less outputs and documentation
_RUN_FILES = (":/", ":(top,exclude,glob)**/results/**", ":(top,exclude,glob)**/*.md", ":(top,exclude,glob)**/*.png")


def git_commit(start: Path | None = None) -> str | None:
    """HEAD of the repository holding `start` (default: this file), with ``-dirty`` for local changes to tracked
    files that can change a run: changes under any ``results/`` folder, to ``*.md`` and to ``*.png`` (what runs
    write, documentation, figures) do not count, so a benchmark rewriting its own result files does not flag the
    folds after it. Outside a git checkout (a copy of the tree on another machine), ``$CRYSTOGRAPH_GIT_COMMIT``
    when set, else None."""
    cwd = Path(start or Path(__file__).resolve().parent)
    fallback = os.environ.get("CRYSTOGRAPH_GIT_COMMIT") or None
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return fallback
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", *_RUN_FILES], cwd=cwd,
                               capture_output=True, text=True, timeout=10)
        return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return fallback


_PROCESS_COMMIT: list[str | None] = []


def process_commit() -> str | None:
    """`git_commit()` taken once per process, at the first call: the code a long run imported at its start. A
    fold that ends after the tree changed (an edit, a new commit) still names the code that trained it."""
    if not _PROCESS_COMMIT:
        _PROCESS_COMMIT.append(git_commit())
    return _PROCESS_COMMIT[0]


def versions(packages: Iterable[str] = PACKAGES, repo: Path | None = None) -> dict[str, Any]:
    """Python, each package's installed version (None when absent) and the git commit of `repo`."""
    out: dict[str, Any] = {"python": sys.version.split()[0]}
    for name in packages:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    out["git_commit"] = process_commit() if repo is None else git_commit(repo)
    return out


def _clean(obj: Any) -> Any:
    """NaN/inf → None so that the JSON is standard."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def write_json(path: Path, data: Any) -> Path:
    """Write atomically (temp file + rename): a killed run never leaves half a result file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(_clean(data), indent=2, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path
