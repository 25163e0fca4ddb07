"""Tabular inputs, one item per row: MatBench JSON, ASE database, CGCNN ``id_prop.csv`` folder, CSV with CIF text."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

from crystograph.errors import InputError
from crystograph.structures.parsing import (
    _Captured,
    _read_text,
    _shorten,
    _single,
    _structure_from_dict,
    parse_cif,
)
from crystograph.structures.records import _as_list, _Item

_ID_COLUMNS = ("material_id", "id", "mbid")


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
