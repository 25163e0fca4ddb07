"""Each reader on files written here: CIF, POSCAR, pymatgen JSON, MatBench JSON (gz too), ASE db, CGCNN folder,
CSV with a CIF column; format override, id/target columns, round trips."""

from __future__ import annotations

import gzip
import json
import math
import re

import numpy as np
import pytest
from badinputs import good_structures
from hypothesis import given, settings
from hypothesis import strategies as st
from pymatgen.core import Lattice, Structure

from crystograph.errors import InputError
from crystograph.structures import (
    ReadResult,
    StructureRecord,
    read_structure,
    read_structures,
    validate_structure,
    write_structures_csv,
)

GOOD = good_structures()


def _tilted() -> Structure:
    """A low-symmetry cell, so that a round trip cannot hide behind symmetry."""
    lat = Lattice.from_parameters(4.1, 5.2, 6.3, 81.0, 95.0, 103.0)
    return Structure(lat, ["Li", "Fe", "P", "O"],
                     [[0.1, 0.2, 0.3], [0.55, 0.4, 0.05], [0.8, 0.9, 0.6], [0.3, 0.7, 0.9]])


def assert_same(a: Structure, b: Structure, tol: float = 1e-5):
    """Same lattice parameters, and the same multiset of (species, fractional coords).

    CIF stores a, b, c, α, β, γ (so the Cartesian orientation may change) and writers may reorder sites."""
    np.testing.assert_allclose(a.lattice.parameters, b.lattice.parameters, atol=tol)

    def sites(s):
        return sorted((site.specie.symbol, *np.round(site.frac_coords % 1.0, 4)) for site in s)

    sa, sb = sites(a), sites(b)
    assert [x[0] for x in sa] == [x[0] for x in sb]
    np.testing.assert_allclose([x[1:] for x in sa], [x[1:] for x in sb], atol=1e-4)


@pytest.mark.parametrize("filename", ["x.cif", "x.cif.gz", "POSCAR", "CONTCAR_relaxed", "x.vasp", "x.json"])
def test_single_file_round_trip(tmp_path, filename):
    s = _tilted()
    path = tmp_path / filename
    if filename.endswith(".gz"):
        path.write_bytes(gzip.compress(s.to(fmt="cif").encode()))
    elif "CONTCAR" in filename:
        path.write_text(s.to(fmt="poscar"))
    else:
        s.to(filename=str(path))
    assert_same(read_structure(path), s)
    (record,) = read_structures(path).records
    assert record.source == str(path) and record.targets == {}
    assert record.id == {"x.cif": "x", "x.cif.gz": "x", "x.vasp": "x", "x.json": "x"}.get(filename, filename)


def test_cif_with_several_blocks(tmp_path):
    path = tmp_path / "two.cif"
    path.write_text(GOOD[0].to(fmt="cif") + "\n" + GOOD[2].to(fmt="cif").replace("data_", "data_second_", 1))
    result = read_structures(path)
    assert [r.id for r in result.records] == ["two", "two_2"]
    assert result.records[1].source.endswith(":block 2")
    with pytest.raises(InputError, match="holds 2 structures"):
        read_structure(path)


def test_format_override(tmp_path):
    s = _tilted()
    (tmp_path / "structure.dat").write_text(s.to(fmt="poscar"))
    with pytest.raises(InputError, match="unknown format '.dat'"):
        read_structure(tmp_path / "structure.dat")
    assert_same(read_structure(tmp_path / "structure.dat", fmt="poscar"), s)
    assert_same(read_structure(tmp_path / "structure.dat", fmt="VASP"), s)
    with pytest.raises(InputError, match="supported fmt values"):
        read_structure(tmp_path / "structure.dat", fmt="xyz")
    (tmp_path / "cif_as_poscar.cif").write_text(s.to(fmt="cif"))
    with pytest.raises(InputError, match="malformed POSCAR"):
        read_structure(tmp_path / "cif_as_poscar.cif", fmt="poscar")


def test_pymatgen_json_list_and_mapping(tmp_path):
    a, b = GOOD[0].copy(), GOOD[1].copy()
    a.properties = {"id": "nacl", "gap": 5.0}
    (tmp_path / "list.json").write_text(json.dumps([a.as_dict(), b.as_dict()]))
    result = read_structures(tmp_path / "list.json")
    assert [r.id for r in result.records] == ["nacl", "list_2"]
    assert result.records[0].targets == {"gap": 5.0}
    assert result.records[1].source.endswith("list.json:entry 2")
    # a requested target must be there
    result = read_structures(tmp_path / "list.json", target="gap")
    assert len(result.records) == 1 and "missing target 'gap'" in result.skipped[0].reason
    with gzip.open(tmp_path / "map.json.gz", "wt") as fh:
        json.dump({"m1": a.as_dict(), "m2": b.as_dict()}, fh)
    result = read_structures(tmp_path / "map.json.gz")
    assert [r.id for r in result.records] == ["m1", "m2"]
    assert_same(result.records[1].structure, b)


def _matbench(structures, values, name="gap pbe"):
    return {"index": [f"mb-{i}" for i in range(len(values))], "columns": ["structure", name],
            "data": [[s.as_dict(), v] for s, v in zip(structures, values)]}


@pytest.mark.parametrize("gz", [False, True])
def test_matbench_json(tmp_path, gz):
    data = _matbench(GOOD[:4], [1.5, 0.0, float("nan"), 2.5])
    path = tmp_path / ("mb.json.gz" if gz else "mb.json")
    text = json.dumps(data)  # writes NaN, as the real MatBench files do
    path.write_bytes(gzip.compress(text.encode()) if gz else text.encode())
    result = read_structures(path)
    assert [r.id for r in result.records] == ["mb-0", "mb-1", "mb-3"]
    assert [r.targets for r in result.records] == [{"gap pbe": 1.5}, {"gap pbe": 0.0}, {"gap pbe": 2.5}]
    (skip,) = result.skipped
    assert skip.source == f"{path}:row 3 (id mb-2)" and skip.reason == "target 'gap pbe' is NaN"
    for rec, s in zip(result.records, [GOOD[0], GOOD[1], GOOD[3]]):
        assert_same(rec.structure, s)
    assert len(read_structures(path, fmt="matbench", target="gap pbe").records) == 3
    with pytest.raises(InputError, match="missing target column 'band_gap'"):
        read_structures(path, target="band_gap", strict=True)


def test_matbench_fmt_rejects_plain_json(tmp_path):
    GOOD[0].to(filename=str(tmp_path / "s.json"))
    with pytest.raises(InputError, match="MatBench"):
        read_structures(tmp_path / "s.json", fmt="matbench", strict=True)


def test_ase_db(tmp_path):
    import ase
    import ase.db
    from pymatgen.io.ase import AseAtomsAdaptor

    path = tmp_path / "x.db"
    with ase.db.connect(str(path)) as db:
        for i, s in enumerate(GOOD[:3]):
            db.write(AseAtomsAdaptor.get_atoms(s), energy_pa=-1.0 - i, mpid=f"mp-{i}", tag="bulk")
        db.write(ase.Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]]), energy_pa=0.3, mpid="h2")
    result = read_structures(path)
    assert [r.id for r in result.records] == ["1", "2", "3"]
    assert result.records[1].targets == {"energy_pa": -2.0}  # numeric key-value pairs only
    assert "no 3-D periodic cell" in result.skipped[0].reason and result.skipped[0].source == f"{path}:row 4"
    result = read_structures(path, id_column="mpid", target="energy_pa")
    assert [r.id for r in result.records] == ["mp-0", "mp-1", "mp-2"]
    assert result.records[0].source == f"{path}:row 1 (id mp-0)"
    for rec, s in zip(result.records, GOOD):
        assert_same(rec.structure, s)
    with pytest.raises(InputError, match="no such file"):
        read_structures(tmp_path / "absent.db", strict=True)
    assert not (tmp_path / "absent.db").exists()


def test_cgcnn_folder(tmp_path):
    for i, s in enumerate(GOOD[:3]):
        s.to(filename=str(tmp_path / f"id{i}.cif"))
    (tmp_path / "id_prop.csv").write_text("id0,1.0,10\nid1,2.0,20\n\nid2,3.0,30\n")
    (tmp_path / "atom_init.json").write_text("{}")  # CGCNN folders carry this; it is not a structure
    result = read_structures(tmp_path)
    assert [r.id for r in result.records] == ["id0", "id1", "id2"] and not result.skipped
    assert result.records[2].targets == {"target": 3.0, "target_2": 30.0}
    result = read_structures(tmp_path, target=["band_gap", "energy"])
    assert result.records[0].targets == {"band_gap": 1.0, "energy": 10.0}
    assert_same(result.records[1].structure, GOOD[1])
    with pytest.raises(InputError, match="not a CGCNN folder"):
        read_structures(tmp_path / "..", fmt="cgcnn", strict=True)


def test_folder_of_files(tmp_path):
    GOOD[0].to(filename=str(tmp_path / "a.cif"))
    GOOD[1].to(filename=str(tmp_path / "b.vasp"))
    GOOD[2].to(filename=str(tmp_path / "c.json"))
    (tmp_path / "notes.md").write_text("hello")
    (tmp_path / ".hidden.cif").write_text("junk")
    result = read_structures(tmp_path)
    assert [r.id for r in result.records] == ["a", "b", "c"]
    assert len(result.skipped) == 1 and "unknown format '.md'" in result.skipped[0].reason
    assert result.summary() == "read 3, skipped 1: 1 unknown format; ignored 1 folder entry"
    assert [i.source for i in result.ignored] == [str(tmp_path / ".hidden.cif")]  # listed, not dropped silently
    # a list of paths, with a folder in it; ids must stay unique across the list
    result = read_structures([tmp_path / "a.cif", tmp_path])
    assert len(result.records) == 3 and len(result.skipped) == 2
    assert "duplicate id 'a'" in result.skipped[0].reason


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz"])
def test_csv_round_trip(tmp_path, suffix):
    records = [StructureRecord(f"s{i}", s, {"y": float(i), "z": -i / 3}, "mem") for i, s in enumerate(GOOD)]
    path = write_structures_csv(records, tmp_path / f"data{suffix}")
    result = read_structures(path, id_column="id", target=["y", "z"])
    assert [r.id for r in result.records] == [f"s{i}" for i in range(len(GOOD))]
    for rec, orig in zip(result.records, records):
        assert_same(rec.structure, orig.structure)
        assert rec.targets["y"] == orig.targets["y"] and math.isclose(rec.targets["z"], orig.targets["z"])
    assert result.records[2].source == f"{path}:row 3 (id s2)"
    # defaults: no target requested -> no targets; id column "id" found automatically
    result = read_structures(path)
    assert result.records[0].targets == {} and result.records[0].id == "s0"


def test_csv_columns(tmp_path):
    import pandas as pd

    rows = [{"name": f"n{i}", "structure_cif": s.to(fmt="cif"), "y": i} for i, s in enumerate(GOOD[:2])]
    pd.DataFrame(rows).to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(InputError, match="no CIF column 'cif'.*set cif_column"):
        read_structures(tmp_path / "t.csv", strict=True)
    result = read_structures(tmp_path / "t.csv", cif_column="structure_cif", target="y")
    assert [r.id for r in result.records] == ["1", "2"]  # no id column: row numbers
    assert result.records[0].source == f"{tmp_path / 't.csv'}:row 1"
    result = read_structures(tmp_path / "t.csv", cif_column="structure_cif", id_column="name")
    assert [r.id for r in result.records] == ["n0", "n1"]
    with pytest.raises(InputError, match="missing target column 'gap'"):
        read_structures(tmp_path / "t.csv", cif_column="structure_cif", target="gap", strict=True)
    # a file-level failure is one skipped input, not an exception
    result = read_structures(tmp_path / "t.csv")
    assert len(result.records) == 0 and len(result.skipped) == 1


def test_validate_false_keeps_disorder(tmp_path):
    s = Structure(Lattice.cubic(4.2), [{"Fe": 0.5, "Co": 0.5}, "O"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    s.to(filename=str(tmp_path / "d.cif"))
    assert not read_structure(tmp_path / "d.cif", validate=False).is_ordered


def test_self_image_overlap_and_missing_path(tmp_path):
    Structure(Lattice.cubic(0.4), ["H"], [[0, 0, 0]]).to(filename=str(tmp_path / "tiny.cif"))
    with pytest.raises(InputError, match="own periodic image"):
        read_structure(tmp_path / "tiny.cif")
    with pytest.raises(InputError, match="no such file"):
        read_structure(tmp_path / "nope.cif")


def test_read_result_api():
    r = ReadResult()
    assert len(r) == 0 and r.summary() == "read 0, skipped 0"


def test_csv_with_bom_and_crlf(tmp_path):
    text = "material_id,cif,y\r\n" + "".join(
        f'mp-{i},"{s.to(fmt="cif")}",{i}\r\n' for i, s in enumerate(GOOD[:2]))
    (tmp_path / "bom.csv").write_bytes(b"\xef\xbb\xbf" + text.encode())
    result = read_structures(tmp_path / "bom.csv", target="y")
    assert [r.id for r in result.records] == ["mp-0", "mp-1"] and not result.skipped


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1), st.floats(0, 1)), min_size=1, max_size=12),
    st.floats(0.05, 0.45),
)
def test_overlap_check_agrees_with_distance_matrix(coords, gap):
    """validate_structure's neighbour-list check vs the O(n^2) periodic distance matrix, on random cells."""
    s = Structure(Lattice.from_parameters(6.0, 7.0, 8.0, 85, 95, 100), ["C"] * len(coords), coords)
    s.append("O", s.lattice.get_fractional_coords(s[0].coords + [gap, 0, 0]))
    dm = s.distance_matrix + np.eye(len(s)) * 1e9
    assert dm.min() < 0.5
    with pytest.raises(InputError, match="overlapping atoms") as exc:
        validate_structure(s, "random")
    reported = float(re.search(r"are ([0-9.]+) Å apart", exc.value.reason).group(1))
    assert abs(reported - dm.min()) < 6e-4  # the closest pair, printed to 3 decimals (ties round either way)
    s.remove_sites([len(s) - 1])
    dm = s.distance_matrix + np.eye(len(s)) * 1e9
    if dm.min() >= 0.5 and min(s.lattice.abc) > 0.5:
        assert validate_structure(s, "random") is s
