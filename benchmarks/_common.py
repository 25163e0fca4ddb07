"""Helpers shared by the benchmark scripts.

Stdlib only (torch is imported lazily): this module is imported both from our
venv and from the separate ALIGNN venv (see ``setup_alignn.sh``).
"""

from __future__ import annotations

import json
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterable

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
DEFAULT_ALIGNN_VENV = Path(os.environ.get("ALIGNN_VENV", "/work/alignn-venv"))


def set_threads(n: int) -> None:
    """Pin intra-op threads (call before heavy torch work).

    The ``*_NUM_THREADS`` variables only take effect if set before the BLAS/OpenMP runtime
    starts, so scripts also call this at the very top, before importing torch.
    """
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(n)
    if "torch" in sys.modules:
        import torch

        torch.set_num_threads(n)


def command_line() -> str:
    """The command that started this process, shell-quoted, relative to the repo root."""
    exe = Path(sys.executable)
    try:
        exe_s = str(exe.relative_to(REPO_ROOT))
    except ValueError:
        exe_s = str(exe)
    script = Path(sys.argv[0]).resolve()
    try:
        script_s = str(script.relative_to(REPO_ROOT))
    except ValueError:
        script_s = sys.argv[0]
    return " ".join(shlex.quote(a) for a in [exe_s, script_s, *sys.argv[1:]])


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def hardware(threads: int | None = None) -> dict[str, Any]:
    """CPU model, visible cores and torch's thread count."""
    info: dict[str, Any] = {
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "machine": platform.machine(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "load_avg_1m_at_start": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
    }
    try:
        import torch

        info["torch_threads"] = torch.get_num_threads()
        info["cuda"] = bool(torch.cuda.is_available())
    except ImportError:
        pass
    if threads is not None:
        info["threads_requested"] = threads
    return info


def versions(packages: Iterable[str]) -> dict[str, str | None]:
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {}
    for p in packages:
        try:
            out[p] = version(p)
        except PackageNotFoundError:
            out[p] = None
    return out


def git_commit() -> str | None:
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def provenance_line(data_file: Path) -> str | None:
    """The line of the dataset's PROVENANCE.md that names the source commit (``owner/repo@<sha>``)."""
    prov = Path(data_file).parent / "PROVENANCE.md"
    try:
        text = prov.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if re.search(r"@[0-9a-f]{7,40}", line):
            return line.strip()
    for line in text.splitlines():
        if "source" in line.lower():
            return line.strip()
    return None


def data_source(data_file: Path) -> dict[str, Any]:
    """``file`` is relative to the repository root (``../shared/data/...``) when it lies beside it."""
    p = Path(data_file).resolve()
    rel = os.path.relpath(p, REPO_ROOT) if p.is_relative_to(REPO_ROOT.parent) else str(p)
    return {"file": rel, "provenance": provenance_line(p)}


def describe(values: list[float]) -> dict[str, float] | None:
    """min / mean / median / max of a list (None when empty)."""
    if not values:
        return None
    return {
        "min": float(min(values)),
        "mean": float(statistics.fmean(values)),
        "median": float(statistics.median(values)),
        "max": float(max(values)),
        "total": float(sum(values)),
    }


def write_json(path: Path, obj: Any) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n")
    tmp.replace(path)


def time_train_and_infer(model, batches, warmup: int = 0, lr: float = 1e-3) -> tuple[float, float]:
    """Seconds for one pass of AdamW + L1 training steps over ``batches`` (after ``warmup`` untimed steps on the
    first batches) and one pass of ``no_grad`` inference in eval mode. Batches are PyG batches with ``y``."""
    import time

    import torch

    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)

    def step(batch) -> None:
        optimizer.zero_grad()
        (model(batch).reshape(-1) - batch.y.reshape(-1)).abs().mean().backward()
        optimizer.step()

    model.train()
    for batch in batches[:warmup]:
        step(batch)
    start = time.perf_counter()
    for batch in batches:
        step(batch)
    train_s = time.perf_counter() - start
    model.eval()
    start = time.perf_counter()
    with torch.no_grad():
        for batch in batches:
            model(batch)
    return train_s, time.perf_counter() - start
