"""Every supported input format -> pymatgen ``Structure``, with errors that name the file, row and reason.

Formats (inferred from the path; ``fmt=`` overrides):

==========  ============================================================  ==========================================
``fmt``     path                                                          id / targets
==========  ============================================================  ==========================================
cif         ``*.cif``, ``*.cif.gz`` (several data blocks -> several)      file stem (``stem_2``... for extra blocks)
poscar      ``POSCAR*``, ``CONTCAR*``, ``*.vasp``, ``*.poscar``           file name / none
json        ``*.json[.gz]``: a pymatgen Structure dict, a list of them,   stem, ``properties["id"]`` or ``stem_N`` /
            or ``{id: Structure dict}``                                   ``Structure.properties``
matbench    ``*.json[.gz]`` with ``index``/``columns``/``data``            index / second column unless ``target``
db          ``*.db`` (ASE database)                                       ``row.id`` or ``id_column`` / key-value pairs
cgcnn       folder with ``id_prop.csv`` (id,target[,more]) + ``<id>.cif``  id_prop.csv
csv         ``*.csv[.gz]`` with a CIF-text column (``cif_column``)        ``id_column`` or material_id/id/mbid or row
==========  ============================================================  ==========================================

A folder without ``id_prop.csv`` means every (non-hidden) file directly inside it. Rows are numbered from 1
(data rows, header excluded); sites from 0, as in pymatgen.

Batch reading (``read_structures``) never drops an input silently: every row / file / entry ends up either in
``ReadResult.records`` or in ``ReadResult.skipped`` (``strict=True`` raises the first ``InputError`` instead).
"""

from __future__ import annotations

import gzip
import io
import json
import math
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
from pymatgen.core import DummySpecies, Element, Species, Structure

from crystograph.errors import InputError, Skipped

MIN_DISTANCE = 0.5  # Å; two sites closer than this are "overlapping atoms"
MAX_Z = 100  # the atom feature table covers Z = 1..100
FORMATS = ("cif", "poscar", "json", "matbench", "db", "cgcnn", "csv")
SUPPORTED = (
    "CIF (.cif, .cif.gz), POSCAR/CONTCAR (.vasp, .poscar), pymatgen or MatBench JSON (.json, .json.gz), "
    "ASE database (.db), CSV with a CIF column (.csv, .csv.gz), a CGCNN folder (id_prop.csv + <id>.cif)"
)
_FMT_ALIASES = {"vasp": "poscar", "contcar": "poscar", "pymatgen": "json", "ase": "db", "ase-db": "db"}
_ID_COLUMNS = ("material_id", "id", "mbid")
_REASON_MAX = 300


@dataclass
class StructureRecord:
    """One structure read from an input, with its id, targets and where it came from."""

    id: str
    structure: Structure
    targets: dict[str, float]
    source: str


@dataclass
class ReadResult:
    """Records read and inputs skipped; ``len(records) + len(skipped)`` = number of inputs."""

    records: list[StructureRecord] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[StructureRecord]:
        return iter(self.records)

    def summary(self) -> str:
        """``"read 10, skipped 3: 2 partial occupancy, 1 overlapping atoms"``."""
        text = f"read {len(self.records)}, skipped {len(self.skipped)}"
        if self.skipped:
            counts = Counter(_category(s.reason) for s in self.skipped)
            text += ": " + ", ".join(f"{n} {cat}" for cat, n in counts.most_common())
        return text


_CATEGORIES = (
    ("empty file", "empty file"),
    ("no such file", "missing file"),
    ("unknown format", "unknown format"),
    ("partial occupancy", "partial occupancy"),
    ("overlapping atoms", "overlapping atoms"),
    ("feature table", "unsupported element"),
    ("empty structure", "empty structure"),
    ("missing target", "missing target"),
    ("is nan", "NaN target"),
    ("is infinite", "infinite target"),
    ("not a number", "non-numeric target"),
    ("duplicate id", "duplicate id"),
    ("missing cif file", "missing CIF file"),
    ("malformed", "malformed file"),
)


def _category(reason: str) -> str:
    low = reason.lower()
    for key, name in _CATEGORIES:
        if key in low:
            return name
    return reason.split(":")[0].split(";")[0][:40]


def _shorten(text: str, limit: int = _REASON_MAX) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ----------------------------------------------------------------------------------------------- validation
def validate_structure(structure: Structure, source: str) -> Structure:
    """Reject what crystograph cannot featurise; return ``structure`` unchanged otherwise.

    Checks, in order: at least one site; a finite 3-D lattice; no partial occupancy; elements with
    1 <= Z <= MAX_Z (no dummy species); no two sites (or a site and its own periodic image) closer than
    MIN_DISTANCE. The distance check uses a cell-list neighbour search (``get_neighbor_list``), O(n).
    """
    if len(structure) == 0:
        raise InputError(source, "empty structure: no atoms")
    matrix = structure.lattice.matrix
    if not (np.isfinite(matrix).all() and np.isfinite(structure.frac_coords).all()):
        raise InputError(source, "non-finite lattice or coordinates (NaN/inf)")
    if not structure.lattice.volume > 1e-3:
        raise InputError(source, f"degenerate lattice: cell volume {structure.lattice.volume:.3g} Å^3")
    if not structure.is_ordered:
        bad = [i for i, site in enumerate(structure) if not site.is_ordered]
        occ = ", ".join(f"{_symbol(sp)}:{amt:g}" for sp, amt in structure[bad[0]].species.items())
        more = f" ({len(bad)} disordered sites in total)" if len(bad) > 1 else ""
        raise InputError(
            source,
            f"site {bad[0]} has partial occupancy {{{occ}}}{more}; crystograph needs an ordered structure — "
            "order it first, e.g. with pymatgen OrderDisorderedStructureTransformation",
        )
    if any(not _supported(sp) for sp in structure.composition):
        i, sp = next((i, sp) for i, site in enumerate(structure) for sp in site.species if not _supported(sp))
        raise InputError(
            source,
            f"site {i} has species {sp} outside the feature table (supported: elements Z = 1..{MAX_Z}, "
            "no dummy species)",
        )
    centres, others, _, dists = structure.get_neighbor_list(MIN_DISTANCE, exclude_self=True)
    if len(dists):
        k = int(np.argmin(dists))
        i, j, d = int(centres[k]), int(others[k]), float(dists[k])
        n_pairs = max(1, len(dists) // 2)
        more = f" ({n_pairs} such pairs)" if n_pairs > 1 else ""
        if i == j:
            what = f"site {i} ({_symbol(structure[i].specie)}) is {d:.3f} Å from its own periodic image"
        else:
            i, j = min(i, j), max(i, j)
            si, sj = _symbol(structure[i].specie), _symbol(structure[j].specie)
            what = f"sites {i} ({si}) and {j} ({sj}) are {d:.3f} Å apart"
        raise InputError(source, f"overlapping atoms: {what} (minimum {MIN_DISTANCE} Å){more}")
    return structure


def _symbol(sp) -> str:
    return getattr(sp, "symbol", None) or str(sp)


def _supported(sp) -> bool:
    if isinstance(sp, DummySpecies) or not isinstance(sp, (Element, Species)):
        return False
    el = sp if isinstance(sp, Element) else sp.element
    return 1 <= el.Z <= MAX_Z


# ----------------------------------------------------------------------------------------------- parsing
def _read_text(path: Path, source: str) -> str:
    """File contents as text (gunzipped if ``.gz``); raises for missing, unreadable or empty files."""
    try:
        raw = path.read_bytes()
        if path.suffix.lower() == ".gz":
            raw = gzip.decompress(raw)
    except FileNotFoundError:
        raise InputError(source, "no such file or directory") from None
    except (OSError, EOFError) as exc:
        raise InputError(source, f"cannot read file: {_shorten(exc)}") from None
    text = raw.decode("utf-8-sig", errors="replace")
    if not text.strip():
        raise InputError(source, "empty file")
    return text


class _Captured(warnings.catch_warnings):
    """Record (do not print) warnings raised while parsing; ``.messages`` keeps them for error reasons."""

    def __init__(self):
        super().__init__(record=True)

    def __enter__(self):
        self._log = super().__enter__()
        warnings.simplefilter("always")
        return self

    @property
    def messages(self) -> list[str]:
        out: list[str] = []
        for w in self._log:
            for line in str(w.message).splitlines():
                line = line.replace("Issues encountered while parsing CIF:", "").strip()
                if line.startswith("'_") and line.endswith("'"):  # pymatgen reports a missing key as its name
                    line = f"missing CIF key {line}"
                if line and not line.startswith("No structure parsed for section") and line not in out:
                    out.append(line)
        return out


def parse_cif(text: str, source: str) -> list[Structure]:
    """All structures (data blocks) in a CIF text; ``InputError("malformed CIF: ...")`` if none parse."""
    from pymatgen.io.cif import CifParser

    if not text.strip():
        raise InputError(source, "malformed CIF: empty CIF text")
    with _Captured() as cap:
        try:
            structures = CifParser.from_str(text).parse_structures(primitive=False, on_error="warn")
            error = None
        except Exception as exc:  # pymatgen raises ValueError/KeyError/ZeroDivisionError... on bad CIFs
            structures = []
            error = f"missing CIF key {exc}" if isinstance(exc, KeyError) else (str(exc) or type(exc).__name__)
    if structures:
        return structures
    details = [m for m in dict.fromkeys([*cap.messages, error]) if m and "no structures" not in m]
    detail = "; ".join(details)
    reason = "malformed CIF: no structure could be parsed" + (f" (pymatgen: {detail})" if detail else "")
    if not text.endswith("\n"):
        reason += "; the file looks truncated (its last line is incomplete)"
    raise InputError(source, _shorten(reason))


def parse_poscar(text: str, source: str) -> Structure:
    from pymatgen.io.vasp import Poscar

    with _Captured() as cap:
        try:
            return Poscar.from_str(text, read_velocities=False).structure
        except Exception as exc:
            hint = f" ({'; '.join(cap.messages)})" if cap.messages else ""
            raise InputError(source, _shorten(f"malformed POSCAR: {exc}{hint}")) from None


def _structure_from_dict(d, source: str) -> Structure:
    if not isinstance(d, dict) or "lattice" not in d or "sites" not in d:
        kind = d.get("@class", "dict") if isinstance(d, dict) else type(d).__name__
        raise InputError(source, f"malformed JSON: not a pymatgen Structure dict (got {kind})")
    if not d["sites"]:
        raise InputError(source, "empty structure: no atoms")
    with _Captured():
        try:
            return Structure.from_dict(d)
        except Exception as exc:
            raise InputError(source, _shorten(f"malformed JSON: bad pymatgen Structure dict: {exc}")) from None


# ----------------------------------------------------------------------------------------------- format detection
def detect_format(path: Path) -> str:
    """The ``fmt`` of a path from its name (or folder contents); ``InputError`` listing SUPPORTED otherwise."""
    if path.is_dir():
        return "cgcnn" if (path / "id_prop.csv").exists() else "dir"
    name = path.name.lower()
    if name.endswith((".cif", ".cif.gz")):
        return "cif"
    if name.startswith(("poscar", "contcar")) or name.endswith((".vasp", ".poscar")):
        return "poscar"
    if name.endswith((".json", ".json.gz")):
        return "json"
    if name.endswith(".db"):
        return "db"
    if name.endswith((".csv", ".csv.gz")):
        return "csv"
    ext = "".join(path.suffixes[-2:]) if name.endswith(".gz") else path.suffix
    raise InputError(str(path), f"unknown format '{ext or path.name}'; supported: {SUPPORTED}")


def _normalise_fmt(fmt: str | None, source: str) -> str | None:
    if fmt is None:
        return None
    f = _FMT_ALIASES.get(fmt.lower(), fmt.lower())
    if f not in FORMATS:
        raise InputError(source, f"unknown format '{fmt}'; supported fmt values: {', '.join(FORMATS)}")
    return f


def _stem(path: Path) -> str:
    name = path.name.removesuffix(".gz")
    if name.upper().startswith(("POSCAR", "CONTCAR")):
        return name
    suffix = next((x for x in (".cif", ".json", ".vasp", ".poscar", ".csv", ".db") if name.lower().endswith(x)), "")
    return name[: len(name) - len(suffix)] or path.name


# ----------------------------------------------------------------------------------------------- readers
# A reader yields, per input, either an _Item (its structure is loaded lazily) or the InputError for it.
@dataclass
class _Item:
    id: str
    source: str
    load: Callable[[], Structure]
    targets: dict[str, object]  # raw target values, checked by _targets
    wanted: list[str] | None  # target names this input must provide (None: keep the numeric ones it has)


def _fixed(s: Structure) -> Callable[[], Structure]:
    return lambda: s


def _read_cif(path: Path, source: str, wanted, **_) -> Iterator[_Item | InputError]:
    structures = parse_cif(_read_text(path, source), source)
    for k, s in enumerate(structures):
        ident = _stem(path) if k == 0 else f"{_stem(path)}_{k + 1}"
        src = source if len(structures) == 1 else f"{source}:block {k + 1}"
        yield _Item(ident, src, _fixed(s), {}, wanted)


def _read_poscar(path: Path, source: str, wanted, **_) -> Iterator[_Item | InputError]:
    yield _Item(_stem(path), source, _fixed(parse_poscar(_read_text(path, source), source)), {}, wanted)


def _read_json(path: Path, source: str, wanted, target, matbench=False, **_) -> Iterator[_Item | InputError]:
    try:
        data = json.loads(_read_text(path, source))
    except json.JSONDecodeError as exc:
        raise InputError(source, f"malformed JSON: {exc}") from None
    if isinstance(data, dict) and {"index", "columns", "data"} <= data.keys():
        yield from _read_matbench(data, source, target)
        return
    if matbench:
        raise InputError(source, "malformed MatBench JSON: expected an object with index, columns and data")
    if isinstance(data, dict) and "sites" in data:
        entries = [(_stem(path), source, data)]
    elif isinstance(data, list):
        entries = [(_json_id(d, f"{_stem(path)}_{n}"), f"{source}:entry {n}", d) for n, d in enumerate(data, 1)]
    elif isinstance(data, dict) and data and all(isinstance(v, dict) for v in data.values()):
        entries = [(str(k), f"{source}:entry {k}", d) for k, d in data.items()]
    else:
        raise InputError(source, "malformed JSON: expected a pymatgen Structure dict, a list of them, "
                                 "{id: Structure dict}, or MatBench {index, columns, data}")
    for ident, src, d in entries:
        yield _Item(ident, src, lambda d=d, src=src: _structure_from_dict(d, src), {}, wanted)


def _json_id(d, default: str) -> str:
    props = d.get("properties") if isinstance(d, dict) else None
    props = props if isinstance(props, dict) else {}
    return str(props.get("id") or props.get("material_id") or default)


def _read_matbench(data: dict, source: str, target) -> Iterator[_Item | InputError]:
    columns = [str(c) for c in data["columns"]]
    if "structure" not in columns:
        raise InputError(source, f"MatBench JSON without a 'structure' column (columns: {', '.join(columns)})")
    s_col = columns.index("structure")
    others = [c for c in columns if c != "structure"]
    wanted = _as_list(target) if target is not None else others[:1]
    for name in wanted:
        if name not in columns:
            raise InputError(source, f"missing target column '{name}' (columns: {', '.join(columns)})")
    index = data["index"]
    for n, row in enumerate(data["data"], 1):
        ident = str(index[n - 1]) if n <= len(index) else str(n)
        src = f"{source}:row {n} (id {ident})"
        if not isinstance(row, list) or len(row) != len(columns):
            yield InputError(src, f"malformed MatBench row: expected {len(columns)} values")
            continue
        raw = {c: v for c, v in zip(columns, row) if c != "structure"}
        yield _Item(ident, src, lambda d=row[s_col], src=src: _structure_from_dict(d, src), raw, wanted)


def _read_db(path: Path, source: str, wanted, id_column, **_) -> Iterator[_Item | InputError]:
    import ase.db
    from pymatgen.io.ase import AseAtomsAdaptor

    if not path.is_file():  # ase.db.connect would create an empty database
        raise InputError(source, "no such file or directory")
    if path.stat().st_size == 0:
        raise InputError(source, "empty file")
    try:
        rows = list(ase.db.connect(str(path), type="db").select())
    except Exception as exc:
        raise InputError(source, _shorten(f"malformed ASE database: {exc}")) from None

    def load(row, src):
        atoms = row.toatoms()
        if atoms.cell.rank < 3 or not atoms.pbc.any():
            raise InputError(src, f"ASE row has no 3-D periodic cell (pbc={atoms.pbc.tolist()})")
        with _Captured():
            return AseAtomsAdaptor.get_structure(atoms)

    for row in rows:
        ident = str(row.id) if id_column is None else row.get(id_column)
        src = f"{source}:row {row.id}" + ("" if id_column is None else f" (id {ident})")
        if ident is None:
            yield InputError(src, f"missing id: the row has no key '{id_column}'")
            continue
        yield _Item(str(ident), src, lambda row=row, src=src: load(row, src), dict(row.key_value_pairs), wanted)


def _read_cgcnn(path: Path, source: str, target, **_) -> Iterator[_Item | InputError]:
    id_prop = path / "id_prop.csv"
    lines = _read_text(id_prop, str(id_prop)).splitlines()
    names = _as_list(target) if target is not None else []
    for n, line in enumerate(lines, 1):
        cells = [c.strip() for c in line.split(",")]
        if not any(cells):
            continue
        ident, values = cells[0], cells[1:]
        src = f"{id_prop}:row {n} (id {ident})"
        col_names = names + [f"target_{k}" if k > 1 else "target" for k in range(len(names) + 1, len(values) + 1)]
        raw = dict(zip(col_names, values))
        wanted = names if target is not None else list(raw)
        cif = path / f"{ident}.cif"
        if not cif.is_file():
            yield InputError(src, f"missing CIF file {cif.name} referenced by id_prop.csv")
            continue

        def load(cif=cif):
            structures = parse_cif(_read_text(cif, str(cif)), str(cif))
            return _single(structures, str(cif))

        yield _Item(ident, src, load, raw, wanted)


def _read_csv(path: Path, source: str, wanted, id_column, cif_column, **_) -> Iterator[_Item | InputError]:
    import pandas as pd

    text = _read_text(path, source)
    try:
        df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except Exception as exc:
        raise InputError(source, _shorten(f"malformed CSV: {exc}")) from None
    columns = [str(c) for c in df.columns]
    if cif_column not in columns:
        raise InputError(source, f"no CIF column '{cif_column}' (columns: {', '.join(columns)}); set cif_column")
    for name in [c for c in (id_column, *(wanted or [])) if c is not None]:
        if name not in columns:
            raise InputError(source, f"missing target column '{name}' (columns: {', '.join(columns)})"
                             if name != id_column else f"no id column '{name}' (columns: {', '.join(columns)})")
    id_col = id_column or next((c for c in _ID_COLUMNS if c in columns), None)
    for n, row in enumerate(df.to_dict("records"), 1):
        ident = str(row[id_col]).strip() if id_col else str(n)
        src = f"{source}:row {n}" + (f" (id {ident})" if id_col else "")
        if not ident:
            yield InputError(src, f"missing id in column '{id_col}'")
            continue
        raw = {c: row[c] for c in wanted or []}
        yield _Item(ident, src, lambda t=row[cif_column], src=src: _single(parse_cif(t, src), src), raw, wanted)


def _single(structures: list[Structure], source: str) -> Structure:
    if len(structures) != 1:
        raise InputError(source, f"malformed CIF: expected one structure, found {len(structures)} data blocks")
    return structures[0]


_READERS = {"cif": _read_cif, "poscar": _read_poscar, "json": _read_json,
            "matbench": partial(_read_json, matbench=True),
            "db": _read_db, "csv": _read_csv}


def _as_list(target) -> list[str]:
    return [target] if isinstance(target, str) else [str(t) for t in target]


def _targets(item: _Item, structure: Structure) -> dict[str, float]:
    """Checked float targets: every name in ``item.wanted`` must be present and finite."""
    raw = {**{k: v for k, v in structure.properties.items()}, **item.targets}
    if item.wanted is None:
        return {k: float(v) for k, v in raw.items() if _is_number(v) and math.isfinite(float(v))}
    out = {}
    for name in item.wanted:
        value = raw.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            raise InputError(item.source, f"missing target '{name}'")
        try:
            number = float(value.strip() if isinstance(value, str) else value)
        except (TypeError, ValueError):
            raise InputError(item.source, f"target '{name}' is not a number: {_shorten(repr(value), 60)}") from None
        if math.isnan(number):
            raise InputError(item.source, f"target '{name}' is NaN")
        if math.isinf(number):
            raise InputError(item.source, f"target '{name}' is infinite ({number})")
        out[name] = number
    return out


def _is_number(v) -> bool:
    return isinstance(v, (bool, int, float, np.bool_, np.integer, np.floating))


def _iter_inputs(path: Path, fmt: str | None, kw: dict) -> Iterator[_Item | InputError]:
    """Items of one path (file or folder); a file-level failure becomes one InputError item."""
    source = str(path)
    try:
        if not path.exists():
            raise InputError(source, "no such file or directory")
        f = fmt or detect_format(path)
        if path.is_dir() and f != "cgcnn":  # every non-hidden file directly inside, in name order
            for p in sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")):
                yield from _iter_inputs(p, fmt, kw)
            return
        if f == "cgcnn":
            if not (path / "id_prop.csv").is_file():
                raise InputError(source, "not a CGCNN folder: no id_prop.csv inside")
            yield from _read_cgcnn(path, source, **kw)
        else:
            yield from _READERS[f](path, source, **kw)
    except InputError as exc:
        yield exc


# ----------------------------------------------------------------------------------------------- public API
def read_structures(
    path_or_paths: str | Path | Sequence[str | Path],
    fmt: str | None = None,
    *,
    target: str | list[str] | None = None,
    id_column: str | None = None,
    cif_column: str = "cif",
    strict: bool = False,
    validate: bool = True,
    progress: bool = False,
) -> ReadResult:
    """Read every structure in a file, a folder or a list of them.

    ``target``: the target column(s)/key(s) each input must provide (finite floats); None keeps what the
    format carries (MatBench: second column; id_prop.csv: its value columns; ASE db / JSON: numeric
    key-value pairs / properties; CSV and CIF: none). Bad inputs become ``Skipped`` (``strict=True``: raise
    the first ``InputError``). Ids must be unique: a repeated id is skipped, naming the first.
    """
    paths = [path_or_paths] if isinstance(path_or_paths, (str, Path)) else list(path_or_paths)
    fmt = _normalise_fmt(fmt, str(paths[0]) if paths else "fmt")
    kw = dict(wanted=None if target is None else _as_list(target), target=target, id_column=id_column,
              cif_column=cif_column)
    result, seen = ReadResult(), {}

    def items() -> Iterator[_Item | InputError]:
        for p in paths:
            yield from _iter_inputs(Path(p), fmt, kw)

    for item in _progress(items(), progress):
        try:
            if isinstance(item, InputError):
                raise item
            if item.id in seen:
                raise InputError(item.source, f"duplicate id '{item.id}' (first read from {seen[item.id]}); skipped")
            try:
                structure = item.load()
            except InputError:
                raise
            except Exception as exc:  # an unexpected parser failure still names the input
                raise InputError(item.source, _shorten(f"cannot read structure: {type(exc).__name__}: {exc}"))
            if validate:
                validate_structure(structure, item.source)
            record = StructureRecord(item.id, structure, _targets(item, structure), item.source)
        except InputError as exc:
            if strict:
                raise
            result.skipped.append(Skipped(exc.source, exc.reason))
            continue
        seen[item.id] = item.source
        result.records.append(record)
    return result


def read_structure(path: str | Path, fmt: str | None = None, *, validate: bool = True) -> Structure:
    """The one structure in a file (CIF, POSCAR, JSON, ...); ``InputError`` if it is bad or holds several."""
    path = Path(path)
    if path.is_dir():
        raise InputError(str(path), "is a folder; read_structure reads one file (use read_structures)")
    result = read_structures(path, fmt, strict=True, validate=validate)
    if len(result.records) != 1:
        raise InputError(str(path), f"holds {len(result.records)} structures; read_structure expects one "
                                    "(use read_structures)")
    return result.records[0].structure


def write_structures_csv(records: Iterable[StructureRecord], path: str | Path) -> Path:
    """Write ``id, cif, <targets...>`` (readable back with ``read_structures(path, target=...)``)."""
    import pandas as pd
    from pymatgen.io.cif import CifWriter

    rows = [{"id": r.id, "cif": str(CifWriter(r.structure)), **r.targets} for r in records]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows, columns=["id", "cif", *dict.fromkeys(k for r in rows for k in r if k not in ("id", "cif"))]
                 ).to_csv(path, index=False)
    return path


def _progress(items: Iterable, enabled: bool) -> Iterable:
    if not enabled:
        return items
    from rich.progress import track

    return track(items, description="reading structures", transient=True)
