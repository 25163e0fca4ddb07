"""A corpus of bad (and borderline-valid) inputs, generated on the fly — nothing is downloaded.

    from badinputs import make_corpus          # tests/ is on sys.path under pytest
    corpus = make_corpus(tmp_path)             # -> list[BadInput], files written under tmp_path
    for item in corpus: ...

Each ``BadInput`` says what a correct pipeline does with it:

- ``expect``: ``"valid"`` (every entry reads and builds a graph) or ``"reject"`` (at least one entry is refused);
- ``stage``: where the rejection happens — ``"read"`` (``crystograph.structures`` raises ``InputError``) or
  ``"graph"`` (reads fine; the graph builder refuses it); ``None`` for valid items;
- ``reason``: a substring of the error message (compare case-insensitively);
- ``where``: a substring of ``InputError.source`` beyond the file name (e.g. ``"row 3"``), or ``""``;
- ``kind``: ``"structure"`` (one structure: fine for ``read_structure`` / ``crystograph predict``),
  ``"table"`` (several rows: use ``read_structures(path, **read_kwargs)``), ``"folder"``;
- ``n_records`` / ``n_skipped``: what ``read_structures(path, **read_kwargs)`` returns in batch mode;
- ``read_kwargs``: e.g. ``{"target": "y"}`` for tables with targets.

The CLI tests (``graph``, ``train``, ``predict``, ``bench``) can reuse it: a "read" rejection should surface as a
one-line error naming ``item.path`` (and ``where``) and containing ``reason``; batch commands should count it.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from pymatgen.core import DummySpecies, Lattice, Structure

__all__ = ["BadInput", "CORPUS_NAMES", "make_corpus", "good_structures"]

# The item names make_corpus returns, in order (handy for pytest parametrisation without writing files).
CORPUS_NAMES = (
    "malformed_cif", "truncated_cif", "empty_file", "blank_file", "wrong_extension_txt", "wrong_extension_xyz2",
    "malformed_json", "partial_occupancy", "overlapping_atoms", "dummy_species", "element_z_gt_100",
    "empty_structure", "isolated_atom", "one_atom_cell", "big_3000_atoms", "target_nan", "target_inf",
    "target_missing", "duplicate_ids", "bad_cif_row", "cgcnn_missing_cif",
    # issue 11
    "poscar_no_species", "binary_garbage", "degenerate_lattice", "target_beyond_float32", "broken_symlink",
    "symlink_loop", "folder_with_extras",
)


@dataclass(frozen=True)
class BadInput:
    name: str
    path: Path
    expect: str  # "valid" | "reject"
    stage: str | None  # "read" | "graph" | None (valid)
    reason: str = ""  # substring of the expected error message
    kind: str = "structure"  # "structure" | "table" | "folder"
    where: str = ""  # substring of the error source besides the file name, e.g. "row 3"
    n_records: int = 1
    n_skipped: int = 0
    read_kwargs: dict = field(default_factory=dict)
    description: str = ""

    @property
    def valid(self) -> bool:
        return self.expect == "valid"

    def __str__(self) -> str:  # readable pytest ids
        return self.name


def good_structures() -> list[Structure]:
    """Five small ordered crystals (rock salt, diamond Si, CsCl, perovskite, Po), primitive cells."""
    return [
        Structure(_fcc(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
        Structure(_fcc(5.43), ["Si", "Si"], [[0, 0, 0], [0.25, 0.25, 0.25]]),
        Structure(Lattice.cubic(4.12), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
        Structure(Lattice.cubic(3.90), ["Sr", "Ti", "O", "O", "O"],
                  [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]),
        Structure(Lattice.cubic(3.35), ["Po"], [[0, 0, 0]]),
    ]


def _fcc(a: float) -> Lattice:
    return Lattice([[0, a / 2, a / 2], [a / 2, 0, a / 2], [a / 2, a / 2, 0]])


def _cif(s: Structure) -> str:
    return s.to(fmt="cif")


def _table(path: Path, rows: list[dict]) -> Path:
    """CSV writer that keeps NaN as ``nan``, inf as ``inf`` and None as an empty cell (pandas would blank NaN)."""
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows({k: "" if v is None else str(v) for k, v in row.items()} for row in rows)
    return path


def make_corpus(directory: str | Path) -> list[BadInput]:
    """Write every corpus file under ``directory`` and return their descriptions."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    good = good_structures()
    nacl_cif = _cif(good[0])
    items: list[BadInput] = []

    def add(name, filename, content, **kw):
        path = d / filename
        if isinstance(content, Structure):
            content.to(filename=str(path))
        elif isinstance(content, bytes):
            path.write_bytes(content)
        elif content is not None:
            path.write_text(content)
        items.append(BadInput(name=name, path=path, **kw))

    reject = dict(expect="reject", stage="read", n_records=0, n_skipped=1)

    # --- unreadable files -----------------------------------------------------------------------------
    add("malformed_cif", "malformed.cif", "data_broken\n_cell_length_a  five\nloop_\n_atom_site_label\nNa1 0 0\n",
        reason="malformed CIF", description="CIF that pymatgen cannot parse (a cell length is text)", **reject)
    add("truncated_cif", "truncated.cif", nacl_cif.rstrip()[:-25],
        reason="truncated", description="a valid CIF cut off in the middle of an atom row", **reject)
    add("empty_file", "empty.cif", "", reason="empty file", description="0-byte file", **reject)
    add("blank_file", "blank.vasp", "\n  \n", reason="empty file", description="whitespace-only POSCAR", **reject)
    add("wrong_extension_txt", "structure.txt", nacl_cif, reason="unknown format",
        description="a good CIF with a .txt extension (no fmt override)", **reject)
    add("wrong_extension_xyz2", "structure.xyz2", "2\n\nNa 0 0 0\nCl 2.8 0 0\n", reason="unknown format",
        description="unsupported extension", **reject)
    add("malformed_json", "broken.json", '{"lattice": {"matrix": [[1, 0, 0]', reason="malformed JSON",
        description="JSON cut off mid-object", **reject)

    # --- structures the readers refuse ----------------------------------------------------------------
    disordered = Structure(Lattice.cubic(4.2), [{"Fe": 0.5, "Co": 0.5}, "O"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    add("partial_occupancy", "partial_occupancy.cif", disordered, reason="partial occupancy",
        description="a Fe0.5Co0.5 mixed site", **reject)
    overlap = Structure(Lattice.cubic(5.0), ["Na", "Cl", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0.54]])
    add("overlapping_atoms", "overlapping_atoms.cif", overlap, reason="overlapping atoms",
        description="two Cl 0.2 Å apart", **reject)
    dummy = Structure(Lattice.cubic(4.0), ["Na", DummySpecies("X")], [[0, 0, 0], [0.5, 0.5, 0.5]])
    add("dummy_species", "dummy_species.json", json.dumps(dummy.as_dict()), reason="outside the feature table",
        description="pymatgen JSON with a dummy species X0+", **reject)
    heavy = Structure(Lattice.cubic(4.0), ["Na", "Md"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    add("element_z_gt_100", "mendelevium.cif", heavy, reason="outside the feature table",
        description="Md (Z = 101) is beyond the 100-element feature table", **reject)
    add("empty_structure", "no_atoms.json", json.dumps(Structure(Lattice.cubic(4.0), [], []).as_dict()),
        reason="empty structure", description="a Structure with a lattice and no sites", **reject)

    # --- valid edge cases -----------------------------------------------------------------------------
    add("isolated_atom", "isolated_atom.cif", Structure(Lattice.cubic(60.0), ["Cu"], [[0, 0, 0]]),
        expect="reject", stage="graph", reason="neighbo",
        description="1 atom in a 60 Å box: reads fine; no neighbour within the graph radius")
    add("one_atom_cell", "one_atom.cif", good[4], expect="valid", stage=None, description="simple-cubic Po")
    big = Structure(Lattice.cubic(3.905), ["Sr", "Ti", "O"], [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0]]) * 10
    add("big_3000_atoms", "big_3000.cif", big, expect="valid", stage=None,
        description="10x10x10 supercell of a 3-atom cell (3,000 atoms)")

    # --- tables ---------------------------------------------------------------------------------------
    def rows(values, ids=None):
        ids = ids or [f"mp-{i + 1}" for i in range(len(values))]
        return [{"material_id": i, "cif": _cif(good[k % 4]), "y": v} for k, (i, v) in enumerate(zip(ids, values))]

    table = dict(expect="reject", stage="read", kind="table", read_kwargs={"target": "y"})
    add("target_nan", "targets_nan.csv", None, reason="is NaN", where="row 2 (id mp-2)", n_records=3, n_skipped=1,
        description="CSV whose row 2 has target NaN", **table)
    _table(d / "targets_nan.csv", rows([1.0, math.nan, 2.0, 3.0]))
    add("target_inf", "targets_inf.csv", None, reason="is infinite", where="row 3 (id mp-3)", n_records=3,
        n_skipped=1, description="CSV whose row 3 has target inf", **table)
    _table(d / "targets_inf.csv", rows([1.0, 2.0, math.inf, 3.0]))
    add("target_missing", "targets_missing.csv", None, reason="missing target", where="row 4 (id mp-4)",
        n_records=3, n_skipped=1, description="CSV whose row 4 has an empty target cell", **table)
    _table(d / "targets_missing.csv", rows([1.0, 2.0, 3.0, None]))
    add("duplicate_ids", "duplicate_ids.csv", None, reason="duplicate id", where="row 3 (id mp-1)", n_records=3,
        n_skipped=1, description="id mp-1 appears in rows 1 and 3 (the second is skipped)", **table)
    _table(d / "duplicate_ids.csv", rows([1.0, 2.0, 3.0, 4.0], ids=["mp-1", "mp-2", "mp-1", "mp-4"]))
    add("bad_cif_row", "bad_cif_row.csv", None, reason="malformed CIF", where="row 3 (id mp-3)", n_records=4,
        n_skipped=1, description="5-row CSV whose middle row holds a broken CIF", **table)
    bad_rows = rows([1.0, 2.0, 3.0, 4.0, 5.0])
    bad_rows[2]["cif"] = "data_oops\n_cell_length_a 4.0\n# the rest of this CIF is missing\n"
    _table(d / "bad_cif_row.csv", bad_rows)

    # --- folders --------------------------------------------------------------------------------------
    cg = d / "cgcnn_missing_cif"
    cg.mkdir(exist_ok=True)
    for i, s in enumerate(good[:3]):
        s.to(filename=str(cg / f"c{i}.cif"))
    (cg / "id_prop.csv").write_text("c0,1.0\nc1,2.0\nc9,3.0\nc2,4.0\n")
    items.append(BadInput(name="cgcnn_missing_cif", path=cg, expect="reject", stage="read", kind="folder",
                          reason="missing CIF file", where="row 3 (id c9)", n_records=3, n_skipped=1,
                          description="id_prop.csv names c9, which has no c9.cif"))
    _issue11_items(d, add, items, reject, table, rows)
    return items


POSCAR_VASP4 = "NaCl, VASP 4 style\n1.0\n5.64 0 0\n0 5.64 0\n0 0 5.64\n1 1\nDirect\n0 0 0\n0.5 0.5 0.5\n"


def _issue11_items(d: Path, add, items: list, reject: dict, table: dict, rows) -> None:
    """Wrong answers reported as success, and folder entries that vanished (issue 11)."""
    add("poscar_no_species", "POSCAR_nospecies", POSCAR_VASP4, reason="without a species line",
        description="VASP 4 POSCAR: no element line (pymatgen would call the atoms H and He)", **reject)
    add("binary_garbage", "garbage.cif", bytes(range(256)) * 8, reason="binary file",
        description="random bytes with a .cif name (not 'looks truncated')", **reject)
    cif = _cif(good_structures()[2]).replace("_cell_length_a   4.12000000", "_cell_length_a   0.0")
    add("degenerate_lattice", "zero_length.cif", cif, reason="degenerate lattice",
        description="a CIF with a zero cell length (singular lattice, not 'malformed')", **reject)
    add("target_beyond_float32", "targets_huge.csv", None, reason="beyond float32", where="row 3 (id mp-3)",
        n_records=3, n_skipped=1, description="row 3 has target 1e39 (float32 overflows to inf)", **table)
    _table(d / "targets_huge.csv", rows([1.0, 2.0, 1e39, 3.0]))
    _link(d / "broken_link.cif", d / "does_not_exist.cif")
    add("broken_symlink", "broken_link.cif", None, reason="broken symlink", description="a dangling symlink",
        **reject)
    _link(d / "loop.cif", d / "loop.cif")
    add("symlink_loop", "loop.cif", None, reason="symlink loop", description="a symlink to itself", **reject)
    folder = d / "folder_with_extras"
    (folder / "sub").mkdir(parents=True, exist_ok=True)
    good_structures()[0].to(filename=str(folder / "good.cif"))
    good_structures()[1].to(filename=str(folder / "sub" / "nested.cif"))
    (folder / ".hidden.cif").write_text("junk")
    _link(folder / "dangling.cif", folder / "gone.cif")
    items.append(BadInput(name="folder_with_extras", path=folder, expect="reject", stage="read", kind="folder",
                          reason="broken symlink", n_records=1, n_skipped=1,
                          description="a folder with a subfolder and a hidden file (listed as ignored) and a "
                                      "dangling symlink (skipped)"))


def _link(path: Path, target: Path) -> None:
    if path.is_symlink():
        path.unlink()
    path.symlink_to(target)
