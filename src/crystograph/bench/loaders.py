"""Load a benchmark task as `StructureRecord`s: local CSVs, MatBench downloads, UnconvBench files.

- Local tasks read ``<data_dir>/<task.file>`` (gzip CSV, one CIF per row) with pandas, apply the task's row
  filters (then its seeded random `sample`, if any), and parse each CIF with pymatgen +
  `crystograph.structures.validate_structure`; a row that fails is a `Skipped` naming ``file:row`` (or raises
  with ``strict=True``).
- MatBench tasks are downloaded once from the URL in matminer's dataset metadata into ``cache_dir()/matbench``
  and checked against the SHA256 there (a file already in ``<data_dir>/matbench/<name>.json.gz`` is used
  instead, after the same check); the file is MatBench/matminer JSON
  (``{"index": [...], "columns": ["structure", target], "data": [[structure_dict, y], ...]}``).
- UnconvBench tasks read ``ub_<name>.json`` (same JSON layout) from ``<data_dir>/unconvbench/`` or
  ``cache_dir()/unconvbench/``; nothing is downloaded because the file URLs could not be verified.

The data dir is the one given, else ``$CRYSTOGRAPH_SHARED_DATA`` (``benchmarks/run_bench.py`` finds the
repository's ``../shared/data``).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import urllib.error
import urllib.request
import warnings
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from crystograph.bench.registry import Task
from crystograph.errors import ConfigError, InputError, Skipped

_SHA_RE = re.compile(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}")


from crystograph.paths import cache_dir  # noqa: E402  (re-exported: bench callers use loaders.cache_dir)


def find_data_dir(data_dir: str | Path | None = None) -> Path | None:
    """The shared data folder: the argument, else ``$CRYSTOGRAPH_SHARED_DATA``, else None."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    if os.environ.get("CRYSTOGRAPH_SHARED_DATA"):
        return Path(os.environ["CRYSTOGRAPH_SHARED_DATA"]).expanduser()
    return None


@dataclass
class LoadedTask:
    """Records of one task plus what the fold assignment needs.

    `order` lists every row id of the dataset in file order (also rows that were skipped), and `order_y`
    their targets, because official folds are defined over the full dataset; `fold_of` holds folds read from
    a fold column, when the task has one."""

    task: Task
    records: list  # list[StructureRecord]
    skipped: list[Skipped]
    order: list[str]
    order_y: np.ndarray
    fold_of: dict[str, int] | None = None
    data_source: dict[str, Any] = field(default_factory=dict)

    @property
    def ids(self) -> list[str]:
        return [r.id for r in self.records]


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def provenance_lines(folder: Path) -> list[str]:
    """The bullets of ``folder/PROVENANCE.md`` that name a source (``**Source**`` or ``owner/repo@commit``),
    each joined into one line."""
    path = Path(folder) / "PROVENANCE.md"
    if not path.exists():
        return []
    bullets: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("- "):
            bullets.append(line[2:].strip())
        elif line.startswith("  ") and bullets and line.strip():
            bullets[-1] += " " + line.strip()
        elif not line.strip() or line.startswith("#") or line.startswith("|"):
            bullets.append("")  # a blank line or a heading ends the bullet
    out = []
    for text in bullets:
        if text and ("**Source**" in text or _SHA_RE.search(text)):
            out.append(text if len(text) <= 500 else text[:497] + "...")
    return out


# ------------------------------------------------------------------------------------------------ parsing
def _record(rid: str, structure, target: str, y: float, source: str):
    from crystograph.structures import StructureRecord

    return StructureRecord(id=rid, structure=structure, targets={target: float(y)}, source=source)


def _parse(make_structure, source: str, strict: bool, skipped: list[Skipped]):
    """Run `make_structure()` and validate it; a failure becomes a Skipped (or raises when strict)."""
    from crystograph.structures import validate_structure

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            structure = make_structure()
        return validate_structure(structure, source)
    except InputError as err:
        if strict:
            raise
        skipped.append(Skipped(err.source, err.reason))
    except Exception as err:  # pymatgen raises many types for a bad CIF
        if strict:
            raise InputError(source, f"cannot parse structure: {type(err).__name__}: {err}") from err
        skipped.append(Skipped(source, f"cannot parse structure: {type(err).__name__}: {err}"))
    return None


def _apply_filters(df, filters: Sequence[tuple[str, str, object]]):
    import pandas as pd

    mask = pd.Series(True, index=df.index)
    for column, op, value in filters:
        col = df[column]
        if op == "==":
            mask &= col == value
        elif op == "<=":
            mask &= col <= value
        elif op == ">=":
            mask &= col >= value
        elif op == "between":
            lo, hi = value  # type: ignore[misc]
            mask &= (col >= lo) & (col <= hi)
        elif op == "notna":
            mask &= col.notna()
        else:
            raise ConfigError(f"unknown filter op {op!r}")
    return df[mask]


def _numbers(column, kind: type, path: Path, name: str) -> np.ndarray:
    """A table column as float or int values; InputError naming the file, column and first bad value."""
    try:
        return column.astype(kind).to_numpy()
    except (TypeError, ValueError) as err:
        raise InputError(str(path), f"column {name!r} must hold {kind.__name__} values ({err})") from None


def _sample(df, task: Task):
    """The task's seeded random subset (`Task.sample`: a row count or a fraction), rows kept in file order."""
    if task.sample is None:
        return df
    if isinstance(task.sample, float) and 0 < task.sample < 1:
        picked = df.sample(frac=task.sample, random_state=task.sample_seed)
    elif isinstance(task.sample, int) and task.sample >= 1:
        picked = df.sample(n=min(task.sample, len(df)), random_state=task.sample_seed)
    else:
        raise ConfigError(f"task {task.name}: sample must be a row count >= 1 or a fraction in (0, 1)")
    return picked.sort_index()


def load_local(task: Task, data_dir: Path | None, *, limit: int | None = None, strict: bool = False,
               progress: bool = True, ids: Collection[str] | None = None) -> LoadedTask:
    """Rows of a local CSV task (filters, sample, then `limit`); `ids`: only the rows with these ids are parsed."""
    import pandas as pd

    from crystograph.progress import track

    base = find_data_dir(data_dir)
    if base is None or not (base / task.file).exists():
        where = base / task.file if base is not None else f"<data_dir>/{task.file}"
        raise InputError(str(where), f"dataset file for task {task.name!r} not found; pass --data-dir pointing "
                                     "at the folder that holds the shared datasets")
    path = base / task.file
    try:
        df = pd.read_csv(path)
    except (ValueError, UnicodeDecodeError, EOFError, OSError) as err:  # pandas' ParserError is a ValueError
        raise InputError(str(path), f"cannot be read as a CSV table ({type(err).__name__}: {err})") from None
    n_file = len(df)
    df = _apply_filters(df, task.filters)
    n_filtered = len(df)
    n_missing = int(df[task.target].isna().sum())
    df = df[df[task.target].notna()]  # rows without a label are not part of the task
    df = _sample(df, task)
    if limit is not None:
        df = df.head(int(limit))
    if ids is not None:
        df = df[df[task.id_column].astype(str).isin(set(ids))]
    ids = df[task.id_column].astype(str).tolist()
    if len(set(ids)) != len(ids):
        raise InputError(str(path), f"duplicate ids in column {task.id_column!r}")
    ys = _numbers(df[task.target], float, path, task.target)
    skipped: list[Skipped] = []
    records = []
    rows = list(zip(df.index.tolist(), ids, ys, df["cif"].tolist()))
    for row, rid, y, cif in track(rows, description=f"reading {task.name}", enabled=progress):
        source = f"{path}:{row + 2}"  # 1-based line number in the CSV, after the header
        structure = _parse(lambda cif=cif, source=source: _structure_from_cif(cif, source), source, strict, skipped)
        if structure is not None:
            records.append(_record(rid, structure, task.target, y, source))
    fold_of = None
    if task.fold_column:
        fold_of = dict(zip(ids, _numbers(df[task.fold_column], int, path, task.fold_column).tolist()))
    data_source = {
        "kind": "local",
        "file": task.file,
        "path": str(path),
        "sha256": sha256_file(path),
        "provenance": provenance_lines(path.parent),
        "rows_in_file": n_file,
        "filters": [list(f) for f in task.filters],
        "rows_after_filters": n_filtered,
        "rows_without_target": n_missing,
        "sample": None if task.sample is None else {"size": task.sample, "seed": task.sample_seed},
        "limit": limit,
        "rows_used": len(ids),
    }
    return LoadedTask(task, records, skipped, ids, ys, fold_of, data_source)


def _structure_from_cif(cif, source: str):
    from crystograph.structures import parse_cif

    if not isinstance(cif, str):
        raise InputError(source, "empty CIF cell")
    structures = parse_cif(cif, source)
    if len(structures) != 1:
        raise InputError(source, f"the CIF holds {len(structures)} structures; expected one")
    return structures[0]


# ------------------------------------------------------------------------------------------------ download
def _fetch(url: str, dest: Path, timeout: float = 120.0) -> None:
    """Stream `url` into `dest` (tests replace this function; nothing else touches the network)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(dest, "wb") as out:
            for chunk in iter(lambda: response.read(1 << 20), b""):
                out.write(chunk)
    except (urllib.error.URLError, OSError) as err:
        raise InputError(url, f"download failed ({err}); without internet, run a local task "
                              "(e.g. local_matbench_jdft2d) or put the file in <data_dir>/matbench/") from err


def download(url: str, dest: Path, sha256: str | None) -> Path:
    """Download `url` to `dest` once; a cached file is reused when its SHA256 matches `sha256`."""
    dest = Path(dest)
    if dest.exists() and (sha256 is None or sha256_file(dest) == sha256):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    _fetch(url, part)
    if sha256 is not None:
        got = sha256_file(part)
        if got != sha256:
            part.unlink(missing_ok=True)
            raise InputError(url, f"SHA256 mismatch: expected {sha256}, got {got}; the download is corrupt or "
                                  "the file changed upstream (nothing was kept)")
    part.replace(dest)
    return dest


def read_split_json(path: Path, id_prefix: str, target: str, *, strict: bool = False, progress: bool = True,
                    input_column: str = "structure",
                    limit: int | None = None) -> tuple[list, list[Skipped], list[str], np.ndarray]:
    """Read a matminer/MatBench JSON (pandas ``orient="split"``: index, columns, data; structures as
    pymatgen dicts). Ids are ``<id_prefix>-<row+1>`` zero-padded to the digits of the row count, as
    MatBench (``mb-jdft2d-001``) and UnconvBench do. Only the first `limit` rows are parsed, but ids and
    targets of all rows are returned (folds are defined over the whole dataset).
    Returns (records, skipped, ids in order, targets)."""
    from pymatgen.core import Structure

    from crystograph.progress import track

    opener = gzip.open if str(path).endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8") as fh:
            doc = json.load(fh)
    except (ValueError, EOFError, OSError) as err:  # bad JSON, bad UTF-8, truncated or non-gzip file
        raise InputError(str(path), f"cannot be read as JSON ({type(err).__name__}: {err})") from None
    if not isinstance(doc, dict) or "data" not in doc or "columns" not in doc:
        raise InputError(str(path), "not a MatBench-style JSON (expected keys 'columns' and 'data')")
    columns = list(doc["columns"])
    if target not in columns:
        raise InputError(str(path), f"target column {target!r} not in {columns}")
    i_x = columns.index(input_column) if input_column in columns else 0
    i_y = columns.index(target)
    data = doc["data"]
    n = len(data)
    index = doc.get("index") or list(range(n))
    width = len(str(n))
    try:
        ids = [f"{id_prefix}-{int(i) + 1:0{width}d}" for i in index]
        ys = np.asarray([float(row[i_y]) for row in data], dtype=float)
    except (TypeError, ValueError, IndexError) as err:
        raise InputError(str(path), f"index entries must be integers and {target!r} numbers ({err})") from None
    records, skipped = [], []
    n_parse = n if limit is None else min(n, int(limit))
    for k in track(range(n_parse), description=f"reading {Path(path).name}", enabled=progress):
        source = f"{path}:{ids[k]}"
        structure = _parse(lambda d=data[k][i_x]: Structure.from_dict(d), source, strict, skipped)
        if structure is not None:
            records.append(_record(ids[k], structure, target, ys[k], source))
    return records, skipped, ids, ys


def matbench_id_prefix(name: str) -> str:
    """``matbench_mp_e_form`` → ``mb-mp-e-form`` (MatBench's id prefix)."""
    return name.replace("matbench", "mb").replace("_", "-")


def load_matbench(task: Task, data_dir: Path | None, *, limit: int | None = None, strict: bool = False,
                  progress: bool = True, allow_download: bool = True) -> LoadedTask:
    fname = f"{task.remote_name}.json.gz"
    base = find_data_dir(data_dir)
    local = base / "matbench" / fname if base is not None else None
    if local is not None and local.exists():
        path = local
        got = sha256_file(path)
        if task.sha256 and got != task.sha256:
            raise InputError(str(path), f"SHA256 mismatch: expected {task.sha256} (matminer metadata), got {got}")
        kind = "local copy of download"
    elif allow_download:
        path = download(task.url, cache_dir() / "matbench" / fname, task.sha256)
        kind = "download"
    else:
        raise InputError(task.name, f"{fname} is not in {cache_dir() / 'matbench'} and downloads are off")
    records, skipped, ids, ys = read_split_json(path, matbench_id_prefix(task.remote_name), task.target,
                                                strict=strict, progress=progress, limit=limit)
    data_source = {"kind": kind, "url": task.url, "path": str(path), "sha256": task.sha256,
                   "provenance": ["matminer 0.10.1 matminer/datasets/dataset_metadata.json (url, sha256)"],
                   "rows_in_file": len(ids), "limit": limit, "rows_used": len(records) + len(skipped)}
    return LoadedTask(task, records, skipped, ids, ys, None, data_source)


def load_unconvbench(task: Task, data_dir: Path | None, *, limit: int | None = None, strict: bool = False,
                     progress: bool = True) -> LoadedTask:
    from crystograph.bench.registry import UNCONVBENCH_FIGSHARE

    fname = f"ub_{task.remote_name}.json"
    candidates = []
    base = find_data_dir(data_dir)
    for folder in ([base / "unconvbench"] if base is not None else []) + [cache_dir() / "unconvbench"]:
        candidates += [folder / fname, folder / (fname + ".gz")]
    path = next((p for p in candidates if p.exists()), None)
    if path is None:
        raise InputError(
            f"UnconvBench {task.name}",
            "public source not verified: the authors' README points to Figshare "
            f"({UNCONVBENCH_FIGSHARE}) but no file URL or checksum could be verified, so nothing is downloaded. "
            f"Download {fname} yourself into <data_dir>/unconvbench/ (looked in: "
            f"{', '.join(str(p) for p in candidates[::2])}) or run a local stand-in instead, e.g. "
            "local_supercon, local_c2db_gap, local_2dmatpedia_exf, local_bulk_s/m/l (see `crystograph bench --list`).",
        )
    records, skipped, ids, ys = read_split_json(path, task.remote_name, task.target, strict=strict,
                                                progress=progress, limit=limit)
    data_source = {"kind": "user file", "path": str(path), "sha256": sha256_file(path),
                   "provenance": [f"UnconvBench file {fname} (user-supplied; not verified)"],
                   "rows_in_file": len(ids), "limit": limit, "rows_used": len(records) + len(skipped)}
    return LoadedTask(task, records, skipped, ids, ys, None, data_source)


def load_task(task: Task, data_dir: str | Path | None = None, *, limit: int | None = None, strict: bool = False,
              progress: bool = True, allow_download: bool = True, ids: Collection[str] | None = None) -> LoadedTask:
    """Load any registered task (see the module docstring for where each kind of task comes from); `ids` (local
    tasks only) keeps only the rows with those ids."""
    data_dir = Path(data_dir) if data_dir is not None else None
    if task.loader == "local_csv":
        return load_local(task, data_dir, limit=limit, strict=strict, progress=progress, ids=ids)
    if ids is not None:
        raise ConfigError(f"task {task.name}: selecting rows by id is supported for local tasks only")
    if task.loader == "matbench_download":
        return load_matbench(task, data_dir, limit=limit, strict=strict, progress=progress,
                             allow_download=allow_download)
    if task.loader == "unconvbench_file":
        return load_unconvbench(task, data_dir, limit=limit, strict=strict, progress=progress)
    raise ConfigError(f"unknown loader {task.loader!r}")
