"""Helpers shared by the benchmark scripts.

Stdlib only (torch is imported lazily): this module is imported both from our
venv and from the separate ALIGNN venv (see ``setup_alignn.sh``).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import statistics
import sys
from pathlib import Path
from typing import Any, Iterable

REPO_ROOT = Path(__file__).resolve().parent.parent


def find_shared_data() -> Path:
    """``$CRYSTOGRAPH_SHARED_DATA``, else the first ``shared/data`` folder above the current directory or this
    repository (``../shared/data`` seen from the repository), else that path even though it is missing."""
    if os.environ.get("CRYSTOGRAPH_SHARED_DATA"):
        return Path(os.environ["CRYSTOGRAPH_SHARED_DATA"]).expanduser()
    for base in (Path.cwd().resolve(), *Path.cwd().resolve().parents, REPO_ROOT, *REPO_ROOT.parents):
        if (base / "shared" / "data").is_dir():
            return base / "shared" / "data"
    return REPO_ROOT.parent / "shared" / "data"


SHARED_DATA = find_shared_data()
META_FILE = REPO_ROOT / "src" / "crystograph" / "bench" / "meta.py"
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


def _load_meta():
    """`crystograph.bench.meta` loaded from its file: stdlib only, so it works in a venv without crystograph."""
    spec = importlib.util.spec_from_file_location("_crystograph_bench_meta", META_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_meta = _load_meta()
cpu_model = _meta.cpu_model


def hardware(threads: int | None = None, accelerator: str | None = None) -> dict[str, Any]:
    """The one hardware schema of every result file (`crystograph.bench.meta.hardware`)."""
    return _meta.hardware(accelerator, threads)


def versions(packages: Iterable[str]) -> dict[str, Any]:
    """Python, the packages' versions and this repository's commit (`crystograph.bench.meta.versions`)."""
    return _meta.versions(packages, REPO_ROOT)


def git_commit() -> str | None:
    """HEAD of this repository, with ``-dirty`` for uncommitted changes to tracked files."""
    return _meta.git_commit(REPO_ROOT)


write_json = _meta.write_json


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


def time_train_and_infer(model, batches, warmup: int = 0, lr: float = 1e-3,
                         device: str = "cpu") -> tuple[float, float]:
    """Seconds for one pass of AdamW + L1 training steps over ``batches`` (after ``warmup`` untimed steps on the
    first batches) and one pass of ``no_grad`` inference in eval mode. Batches are PyG batches with ``y``; they are
    moved to ``device`` before the clock starts, and on a GPU each timed pass ends with a synchronisation."""
    import time

    import torch

    dev = torch.device(device)
    model = model.to(dev)
    batches = [b.to(dev) for b in batches]
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    def step(batch) -> None:
        optimizer.zero_grad()
        (model(batch).reshape(-1) - batch.y.reshape(-1)).abs().mean().backward()
        optimizer.step()

    model.train()
    for batch in batches[:warmup]:
        step(batch)
    sync()
    start = time.perf_counter()
    for batch in batches:
        step(batch)
    sync()
    train_s = time.perf_counter() - start
    model.eval()
    with torch.no_grad():
        for batch in batches[:warmup]:
            model(batch)
        sync()
        start = time.perf_counter()
        for batch in batches:
            model(batch)
        sync()
    return train_s, time.perf_counter() - start


def sample_cif_rows(path: Path, n: int, seed: int, columns: tuple[str, ...] = ()) -> tuple[list[dict[str, str]], int]:
    """(seeded sample of ``n`` rows as {"id", "cif", *columns}, rows in the file) of a CSV(.gz) with a ``cif``
    column: ``random.Random(seed).sample`` over row positions, file order kept."""
    import csv
    import gzip
    import random

    csv.field_size_limit(1 << 30)
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", newline="") as fh:
        rows = list(csv.DictReader(fh))
    idx = sorted(random.Random(seed).sample(range(len(rows)), min(n, len(rows))))
    id_col = next((c for c in ("material_id", "id") if c in rows[0]), next(iter(rows[0])))  # else the first column
    return [{"id": rows[i][id_col], "cif": rows[i]["cif"], **{c: rows[i][c] for c in columns}} for i in idx], len(rows)
