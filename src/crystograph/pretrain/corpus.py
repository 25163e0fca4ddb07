"""The pretraining corpus: local datasets + CoRE MOF 2019, de-duplicated, without any evaluation structure.

Sources (`sources`): every distinct dataset file of the registry's local tasks (`registry.LOCAL_TASKS`; one
source per file, named by the first task that reads it), all rows of the file read as structures, plus CoRE MOF
2019-ASR (`data.coremof.load_coremof`). Task-specific row selections (a target present, an atom-count range, a
random subset) are dropped: pretraining needs no labels. Data-quality filters are kept (`KEPT_FILTER_COLUMNS`:
C2DB's non-orthogonal cells have wrong coordinates, so only its `cell_orthogonal` rows are read). Cells with
more than `max_atoms` atoms are left out (counted as ``too_large``).

Leakage: every structure of the evaluation tasks (`EVAL_TASKS`; with 5-fold CV each of them is in some test
fold) is fingerprinted (`fingerprint.fingerprints`, whatever its size), and a corpus structure that matches
any of them on either fingerprint grid is removed (``leaked``). De-duplication: of the structures with the same
fingerprint, the first in source order (sources in the order of `sources`, rows in file order) is kept.

`build_corpus` returns the rows (source, id, n_atoms, formula, fingerprint, fingerprint_shifted) and the
counts; `write_corpus` writes them as CSV; `load_corpus` reads the structures of a corpus file back as
`StructureRecord`s (ids ``<source>:<id>``) for `crystograph.pretrain.pretrain`.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crystograph.errors import InputError, Skipped
from crystograph.pretrain.fingerprint import Fingerprint, fingerprints

EVAL_TASKS = ("local_supercon", "local_matbench_jdft2d", "local_2dmatpedia_exf", "local_c2db_gap", "local_perov5")
KEPT_FILTER_COLUMNS = ("cell_orthogonal",)  # data-quality filters (see the module docstring)
COREMOF = "coremof_2019_asr"
COREMOF_PROP = "LCD"  # load_coremof needs a property; MOFs without a finite LCD are not read
DEFAULT_MAX_ATOMS = 64
CHUNK = 4000  # rows parsed per load_task call (bounds the memory held by pymatgen structures)
COLUMNS = ("source", "id", "n_atoms", "formula", "fingerprint", "fingerprint_shifted")


@dataclass
class CorpusRow:
    source: str
    id: str
    n_atoms: int
    formula: str
    fingerprint: str
    fingerprint_shifted: str
    elements: frozenset = frozenset()  # atomic numbers (not written)


@dataclass
class SourceCount:
    source: str
    file: str
    rows: int = 0  # rows (structures) the source has
    filtered_out: int = 0  # by the kept data-quality filters (or, CoRE MOF: no finite LCD / unreadable index)
    too_large: int = 0  # more than max_atoms atoms
    unreadable: int = 0  # failed to parse or validate
    fingerprint_failed: int = 0
    before_dedup: int = 0  # fingerprinted structures
    leaked: int = 0  # match an evaluation structure
    duplicates: int = 0  # same fingerprint as a structure kept earlier
    kept: int = 0


@dataclass
class CorpusResult:
    rows: list[CorpusRow]
    counts: list[SourceCount]
    eval_counts: dict[str, dict[str, int]]
    skipped: list[Skipped] = field(default_factory=list)


class _Sized:
    """An iterator with a known length (for the progress bar)."""

    def __init__(self, items: Iterable, total: int):
        self.items, self.total = items, total

    def __len__(self) -> int:
        return self.total

    def __iter__(self) -> Iterator:
        return iter(self.items)


# ------------------------------------------------------------------------------------------------ sources
def source_task(task, max_atoms: int | None = None):
    """A local task turned into a corpus source: all rows of its file (target `natoms`, which every file has),
    only the data-quality filters, plus ``natoms <= max_atoms`` when given."""
    kept = tuple(f for f in task.filters if f[0] in KEPT_FILTER_COLUMNS)
    size = (("natoms", "<=", int(max_atoms)),) if max_atoms is not None else ()
    return dataclasses.replace(task, target="natoms", filters=kept + size, sample=None, fold_column=None)


def sources() -> list[str]:
    """Source names: one local task per distinct file (registry order), then CoRE MOF."""
    from crystograph.bench.registry import LOCAL_TASKS, TASKS

    seen, out = set(), []
    for name in LOCAL_TASKS:
        if TASKS[name].file not in seen:
            seen.add(TASKS[name].file)
            out.append(name)
    return out + [COREMOF]


def _local_ids(task, data_dir, max_atoms: int, limit: int | None, count: SourceCount) -> list[str]:
    """Ids of the rows a local source reads (quality filters, size, limit), counting what is left out."""
    import pandas as pd

    from crystograph.bench.loaders import _apply_filters, find_data_dir

    base = find_data_dir(data_dir)
    path = base / task.file if base is not None else None
    if path is None or not path.exists():
        raise InputError(str(path or task.file), f"dataset file of {task.name} not found (pass --data-dir)")
    kept = source_task(task)
    columns = [task.id_column, "natoms", *{f[0] for f in kept.filters}]
    df = pd.read_csv(path, usecols=columns)
    count.rows = len(df)
    df = _apply_filters(df, kept.filters)
    count.filtered_out = count.rows - len(df)
    count.too_large = int((df["natoms"] > max_atoms).sum())
    df = df[df["natoms"] <= max_atoms]
    if limit is not None:
        df = df.head(int(limit))
    return df[task.id_column].astype(str).tolist()


def _iter_local(name: str, data_dir, max_atoms: int, limit: int | None, count: SourceCount,
                skipped: list[Skipped]) -> _Sized:
    from crystograph.bench.loaders import load_task
    from crystograph.bench.registry import TASKS

    task = TASKS[name]
    count.file = task.file
    ids = _local_ids(task, data_dir, max_atoms, limit, count)
    src = source_task(task, max_atoms)

    def records():
        for start in range(0, len(ids), CHUNK):
            loaded = load_task(src, data_dir, ids=ids[start:start + CHUNK], progress=False)
            skipped.extend(loaded.skipped)
            count.unreadable += len(loaded.skipped)
            yield from loaded.records

    return _Sized(records(), len(ids))


def _iter_coremof(max_atoms: int, limit: int | None, count: SourceCount, skipped: list[Skipped],
                  progress: bool) -> _Sized:
    import pandas as pd

    from crystograph.data.coremof import INDEX, coremof_dir, load_coremof

    count.file = "core-mof 2019-ASR (PyPI core-mof)"
    index = pd.read_csv(coremof_dir(progress=progress) / INDEX, dtype={"filename": str})
    count.rows = len(index)
    count.too_large = int((index["n_atoms"] > max_atoms).sum())
    loaded = load_coremof(prop=COREMOF_PROP, max_atoms=max_atoms, limit=limit, progress=progress)
    skipped.extend(loaded.skipped)
    count.unreadable = len(loaded.skipped)
    if limit is None:
        count.filtered_out = count.rows - count.too_large - len(loaded.records) - count.unreadable
    return _Sized(loaded.records, len(loaded.records))


def _fingerprint(record, skipped: list[Skipped]) -> Fingerprint | None:
    try:
        return fingerprints(record.structure)
    except Exception as err:  # a structure vesin cannot search (degenerate cell, …)
        skipped.append(Skipped(record.source, f"fingerprint failed: {type(err).__name__}: {err}"))
        return None


# ------------------------------------------------------------------------------------------------ build
def eval_fingerprints(eval_tasks: Sequence[str], data_dir, limit: int | None, progress: bool,
                      skipped: list[Skipped]) -> tuple[set[str], set[str], dict[str, dict[str, int]]]:
    """Fingerprints (both grids) of every structure of the evaluation tasks, and per-task counts."""
    from crystograph.bench.loaders import load_task
    from crystograph.bench.registry import get_task
    from crystograph.progress import track

    keys, shifted, counts = set(), set(), {}
    for name in eval_tasks:
        loaded = load_task(get_task(name), data_dir, limit=limit, progress=progress)
        n_fp = 0
        for record in track(loaded.records, description=f"fingerprints {name}", enabled=progress):
            fp = _fingerprint(record, skipped)
            if fp is not None:
                keys.add(fp.key)
                shifted.add(fp.key_shifted)
                n_fp += 1
        counts[name] = {"structures": len(loaded.records), "unreadable": len(loaded.skipped), "fingerprinted": n_fp}
    return keys, shifted, counts


def build_corpus(data_dir=None, *, max_atoms: int = DEFAULT_MAX_ATOMS, limit: int | None = None,
                 eval_tasks: Sequence[str] = EVAL_TASKS, source_names: Sequence[str] | None = None,
                 progress: bool = True) -> CorpusResult:
    """Read, fingerprint, filter and de-duplicate every source (see the module docstring); `limit`: at most that
    many rows per source and per evaluation task (smoke tests: the leakage filter is then incomplete too)."""
    from crystograph.progress import track

    skipped: list[Skipped] = []
    leak_keys, leak_shifted, eval_counts = eval_fingerprints(eval_tasks, data_dir, limit, progress, skipped)
    seen: set[str] = set()
    rows, counts = [], []
    for name in source_names or sources():
        count = SourceCount(name, "")
        counts.append(count)
        if name == COREMOF:
            items = _iter_coremof(max_atoms, limit, count, skipped, progress)
        else:
            items = _iter_local(name, data_dir, max_atoms, limit, count, skipped)
        for record in track(items, description=f"corpus: {name}", enabled=progress):
            row = _admit(name, record, count, seen, leak_keys, leak_shifted, skipped)
            if row is not None:
                rows.append(row)
    return CorpusResult(rows, counts, eval_counts, skipped)


def _admit(name: str, record, count: SourceCount, seen: set[str], leak_keys: set[str], leak_shifted: set[str],
           skipped: list[Skipped]) -> CorpusRow | None:
    """The corpus row of `record`, or None (counted) when it leaks, repeats an earlier one or has no fingerprint."""
    fp = _fingerprint(record, skipped)
    if fp is None:
        count.fingerprint_failed += 1
        return None
    count.before_dedup += 1
    if fp.key in leak_keys or fp.key_shifted in leak_shifted:
        count.leaked += 1
        return None
    if fp.key in seen:
        count.duplicates += 1
        return None
    seen.add(fp.key)
    count.kept += 1
    s = record.structure
    return CorpusRow(name, str(record.id), len(s), fp.formula, fp.key, fp.key_shifted, frozenset(s.atomic_numbers))


# ------------------------------------------------------------------------------------------------ files
def corpus_csv(rows: Sequence[CorpusRow]) -> bytes:
    """The corpus file: one row per structure, in corpus order (deterministic for the same inputs)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    for r in rows:
        writer.writerow([r.source, r.id, r.n_atoms, r.formula, r.fingerprint, r.fingerprint_shifted])
    return buf.getvalue().encode()


def write_corpus(rows: Sequence[CorpusRow], path: str | Path) -> Path:
    from crystograph.train.export import write_atomic

    return write_atomic(Path(path), corpus_csv(rows))


def read_corpus(path: str | Path) -> list[dict[str, Any]]:
    path = Path(path)
    if not path.is_file():
        raise InputError(str(path), "corpus file not found (build it with benchmarks/pretrain_corpus.py)")
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    if rows and set(COLUMNS) - set(rows[0]):
        raise InputError(str(path), f"not a corpus file (columns {', '.join(COLUMNS)} expected)")
    return rows


def element_coverage(rows: Sequence[CorpusRow], max_z: int = 100) -> dict[str, Any]:
    """Structures per element, and which of Z = 1..max_z occur in the corpus and which do not."""
    from pymatgen.core.periodic_table import Element

    per_z = Counter(z for r in rows for z in r.elements)
    present = sorted(z for z in per_z if 1 <= z <= max_z)
    absent = [z for z in range(1, max_z + 1) if z not in per_z]
    return {"present_z": present, "absent_z": absent,
            "absent_symbols": [Element.from_Z(z).symbol for z in absent],
            "structures_per_element": {Element.from_Z(z).symbol: per_z[z] for z in sorted(per_z)}}


def load_corpus(path: str | Path, data_dir=None, *, progress: bool = True) -> tuple[list, list[Skipped]]:
    """The structures of a corpus file as `StructureRecord`s (id ``<source>:<id>``, corpus order) and the rows
    that could not be read back (or whose atom count changed)."""
    rows = read_corpus(path)
    by_source: dict[str, list[dict]] = {}
    for r in rows:
        by_source.setdefault(r["source"], []).append(r)
    found: dict[tuple[str, str], Any] = {}
    skipped: list[Skipped] = []
    for source, group in by_source.items():
        for rec in _read_source(source, group, data_dir, progress, skipped):
            found[(source, str(rec.id))] = dataclasses.replace(rec, id=f"{source}:{rec.id}")
    records = []
    for r in rows:
        rec = found.get((r["source"], r["id"]))
        if rec is None:
            skipped.append(Skipped(f"{r['source']}:{r['id']}", "not found when reading the corpus back"))
        elif len(rec.structure) != int(r["n_atoms"]):
            skipped.append(Skipped(rec.source, f"{len(rec.structure)} atoms, the corpus says {r['n_atoms']}"))
        else:
            records.append(rec)
    return records, skipped


def _read_source(source: str, group: list[dict], data_dir, progress: bool, skipped: list[Skipped]) -> list:
    ids = [r["id"] for r in group]
    if source == COREMOF:
        from crystograph.data.coremof import load_coremof

        wanted = set(ids)
        loaded = load_coremof(prop=COREMOF_PROP, max_atoms=max(int(r["n_atoms"]) for r in group), progress=progress)
        skipped.extend(s for s in loaded.skipped if Path(s.source).stem in wanted)
        return [rec for rec in loaded.records if rec.id in wanted]
    from crystograph.bench.loaders import load_task
    from crystograph.bench.registry import TASKS

    if source not in TASKS:
        raise InputError(source, "unknown corpus source (not a registered task)")
    loaded = load_task(source_task(TASKS[source]), data_dir, ids=ids, progress=progress)
    skipped.extend(loaded.skipped)
    return loaded.records
