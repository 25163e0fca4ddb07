"""Per-file readers (CIF, POSCAR, pymatgen JSON), the reader table and ``_iter_inputs`` (file or folder -> items)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import partial
from pathlib import Path

from crystograph.errors import InputError
from crystograph.structures.formats import _stem, detect_format
from crystograph.structures.parsing import (
    _read_text,
    _structure_from_dict,
    parse_cif,
    parse_poscar,
    potcar_species,
)
from crystograph.structures.records import _fixed, _Ignored, _Item
from crystograph.structures.tables import (
    _read_cgcnn,
    _read_csv,
    _read_db,
    _read_matbench,
)


# A reader yields, per input, either an _Item (its structure is loaded lazily) or the InputError for it.
def _read_cif(path: Path, source: str, wanted, **_) -> Iterator[_Item | InputError]:
    structures = parse_cif(_read_text(path, source), source)
    for k, s in enumerate(structures):
        ident = _stem(path) if k == 0 else f"{_stem(path)}_{k + 1}"
        src = source if len(structures) == 1 else f"{source}:block {k + 1}"
        yield _Item(ident, src, _fixed(s), {}, wanted)


def _read_poscar(path: Path, source: str, wanted, species=None, **_) -> Iterator[_Item | InputError]:
    """Species for a POSCAR without a species line: `species` (the user's), else the POTCAR beside it."""
    names = list(species) if species else potcar_species(path)
    yield _Item(_stem(path), source, _fixed(parse_poscar(_read_text(path, source), source, names)), {}, wanted)


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


_READERS = {"cif": _read_cif, "poscar": _read_poscar, "json": _read_json,
            "matbench": partial(_read_json, matbench=True),
            "db": _read_db, "csv": _read_csv}


def _iter_inputs(path: Path, fmt: str | None, kw: dict) -> Iterator[_Item | InputError | _Ignored]:
    """Items of one path (file or folder); a file-level failure becomes one InputError item."""
    source = str(path)
    try:
        if not path.exists():
            raise InputError(source, _missing_reason(path))
        f = fmt or detect_format(path)
        if path.is_dir() and f != "cgcnn":
            yield from _iter_folder(path, fmt, kw)
            return
        if f == "cgcnn":
            if not (path / "id_prop.csv").is_file():
                raise InputError(source, "not a CGCNN folder: no id_prop.csv inside")
            yield from _read_cgcnn(path, source, **kw)
        else:
            yield from _READERS[f](path, source, **kw)
    except InputError as exc:
        yield exc
    except OSError as exc:  # an unreadable file or folder is skipped like a missing one
        yield InputError(source, f"cannot read: {exc.strerror or exc}")


def _iter_folder(path: Path, fmt: str | None, kw: dict) -> Iterator[_Item | InputError | _Ignored]:
    """Every file directly inside `path`, in name order; hidden entries and subfolders (unless `recursive`) are
    reported as ignored, broken or looping symlinks as errors."""
    for p in sorted(path.iterdir()):
        if p.name.startswith("."):
            yield _Ignored(str(p), "hidden file or folder (name it explicitly to read it)")
        elif p.is_dir():
            if kw.get("recursive"):
                yield from _iter_inputs(p, fmt, kw)
            else:
                yield _Ignored(str(p), "subfolder (read with --recursive, or name it)")
        elif p.is_file():
            yield from _iter_inputs(p, fmt, kw)
        elif p.is_symlink():
            yield InputError(str(p), _missing_reason(p))
        else:
            yield _Ignored(str(p), "not a regular file (a device, socket or pipe)")


def _missing_reason(path: Path) -> str:
    """Why `path` cannot be found: a symlink loop, a broken symlink, or no such file."""
    import errno
    import os

    if path.is_symlink():
        try:
            os.stat(path)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                return "symlink loop (the link points back to itself)"
        return f"broken symlink: it points to {os.readlink(path)}, which does not exist"
    return "no such file or directory"
