"""Public reading API: ``read_structures``, ``read_structure``, ``write_structures_csv``; target checks."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
from pymatgen.core import Structure

from crystograph.errors import InputError, Skipped
from crystograph.structures.formats import _normalise_fmt
from crystograph.structures.parsing import _shorten
from crystograph.structures.readers import _iter_inputs
from crystograph.structures.records import ReadResult, StructureRecord, _as_list, _Ignored, _Item
from crystograph.structures.validate import validate_structure

FLOAT32_MAX = float(np.finfo(np.float32).max)  # targets train as float32


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
        if abs(number) > FLOAT32_MAX:
            raise InputError(item.source, f"target '{name}' = {number:g} is beyond float32 range "
                                          f"(±{FLOAT32_MAX:.3g}); rescale it (other units)")
        out[name] = number
    return out


def _is_number(v) -> bool:
    return isinstance(v, (bool, int, float, np.bool_, np.integer, np.floating))


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
    recursive: bool = False,
    species: Sequence[str] | None = None,
) -> ReadResult:
    """Read every structure in a file, a folder or a list of them.

    ``target``: the target column(s)/key(s) each input must provide (finite floats); None keeps what the
    format carries (MatBench: second column; id_prop.csv: its value columns; ASE db / JSON: numeric
    key-value pairs / properties; CSV and CIF: none). Bad inputs become ``Skipped`` (``strict=True``: raise
    the first ``InputError``). Ids must be unique: a repeated id is skipped, naming the first.
    Folders: the files directly inside (``recursive``: and in subfolders); hidden entries and subfolders not
    read are listed in ``ReadResult.ignored``. ``species``: element symbols for POSCARs without a species
    line (else the POTCAR beside the POSCAR names them, else the POSCAR is refused).
    """
    paths = [path_or_paths] if isinstance(path_or_paths, (str, Path)) else list(path_or_paths)
    fmt = _normalise_fmt(fmt, str(paths[0]) if paths else "fmt")
    kw = dict(wanted=None if target is None else _as_list(target), target=target, id_column=id_column,
              cif_column=cif_column, recursive=recursive, species=list(species) if species else None)
    result, seen = ReadResult(), {}

    def items() -> Iterator[_Item | InputError | _Ignored]:
        for p in paths:
            yield from _iter_inputs(Path(p), fmt, kw)

    for item in _progress(items(), progress):
        if isinstance(item, _Ignored):
            result.ignored.append(Skipped(item.source, item.reason))
            continue
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
    from rich.console import Console
    from rich.progress import track

    # On stderr: stdout carries results (e.g. `crystograph graph --json`, one object per line).
    return track(items, description="reading structures", transient=True, console=Console(stderr=True))
