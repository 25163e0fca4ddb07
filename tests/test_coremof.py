"""The embedded CoRE MOF dataset: cache location, one-time extraction with an atom-count index, loading."""

from __future__ import annotations

import io
import math
import tarfile
from pathlib import Path

import pytest
from badinputs import good_structures
from pymatgen.core import Structure

from crystograph.data import coremof
from crystograph.data.coremof import coremof_dir, count_atoms_cif, default_cache_dir, load_coremof
from crystograph.errors import InputError
from tests.conftest import rocksalt_cell


def test_default_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("CRYSTOGRAPH_CACHE", str(tmp_path / "c"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("CRYSTOGRAPH_CACHE")
    assert default_cache_dir() == tmp_path / "xdg" / "crystograph"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_cache_dir() == Path.home() / ".cache" / "crystograph"


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # spglib, via CifWriter(symprec)
def test_count_atoms_cif():
    for s in good_structures():
        assert count_atoms_cif(s.to(fmt="cif")) == len(s)
    nacl = rocksalt_cell()
    from pymatgen.io.cif import CifWriter

    assert count_atoms_cif(str(CifWriter(nacl, symprec=0.01))) is None  # symmetrised: rows != sites
    two_blocks = nacl.to(fmt="cif") + nacl.to(fmt="cif")
    assert count_atoms_cif(two_blocks) is None
    assert count_atoms_cif("data_x\n_cell_length_a 3\n") is None


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # spglib, via CifWriter(symprec)
def test_extraction_and_index(tmp_path, monkeypatch):
    """A synthetic archive: P1 and symmetrised CIFs, a nested path, a hidden file, an unreadable CIF."""
    good = good_structures()
    nacl = rocksalt_cell()
    from pymatgen.io.cif import CifWriter

    members = {
        "CIFs/AAA_clean.cif": good[0].to(fmt="cif"),
        "CIFs/BBB_clean.cif": str(CifWriter(nacl, symprec=0.01)),
        "../CCC_clean.cif": good[3].to(fmt="cif"),
        "CIFs/._AAA_clean.cif": "mac resource fork",
        "CIFs/DDD_clean.cif": "data_junk\n",
    }
    archive = tmp_path / "fake.tar.xz"
    with tarfile.open(archive, "w:xz") as tar:
        for name, text in members.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    monkeypatch.setattr(coremof, "_archive", lambda subset: archive)
    stale = tmp_path / "cache" / "core-mof" / ".fake.partial-999999999"  # an interrupted run's leftovers
    (stale / "cif").mkdir(parents=True)
    root = coremof_dir("fake", tmp_path / "cache", progress=False)
    assert root == tmp_path / "cache" / "core-mof" / "fake"
    assert sorted(p.name for p in (root / "cif").iterdir()) == ["AAA_clean.cif", "BBB_clean.cif",
                                                                  "CCC_clean.cif", "DDD_clean.cif"]
    assert not (tmp_path / "cache" / "core-mof" / "CCC_clean.cif").exists()
    index = (root / "index.csv").read_text().splitlines()
    assert index == ["filename,n_atoms,counted_by", "AAA_clean,2,text", "BBB_clean,8,pymatgen",
                     "CCC_clean,5,text", "DDD_clean,-1,unreadable"]
    assert not list((tmp_path / "cache" / "core-mof").glob(".*partial*"))
    # a second call finds the cache and does not touch the archive
    monkeypatch.setattr(coremof, "_archive", lambda subset: tmp_path / "gone.tar.xz")
    assert coremof_dir("fake", tmp_path / "cache", progress=False) == root


@pytest.mark.slow
def test_load_handful():
    """Five real CoRE MOF 2019-ASR structures (extracts the archive into the user cache on first use, ~10 s)."""
    import CoRE_MOF

    result = load_coremof("LCD", max_atoms=60, limit=5, progress=False)
    assert len(result) == 5
    table = CoRE_MOF.get_properties("2019-ASR").set_index("filename")
    ids = [r.id for r in result.records]
    assert ids == sorted(ids)
    for r in result.records:
        assert isinstance(r.structure, Structure) and r.structure.is_ordered
        assert 1 <= len(r.structure) <= 60
        assert math.isclose(r.targets["LCD"], table.loc[r.id, "LCD"])
        assert Path(r.source).is_file() and r.source.endswith(f"{r.id}.cif")
        assert default_cache_dir() in Path(r.source).parents
    # the second call rebuilds structures from the parse cache: same lattices, species and coordinates
    again = load_coremof("LCD", max_atoms=60, limit=5, progress=False)
    for a, b in zip(result.records, again.records):
        assert a.id == b.id and a.structure.species == b.structure.species
        assert a.structure.lattice == b.structure.lattice
        assert (abs(a.structure.frac_coords - b.structure.frac_coords) < 1e-8).all()
    other = load_coremof("PLD", max_atoms=40, limit=3, progress=False)
    assert all(len(r.structure) <= 40 and set(r.targets) == {"PLD"} for r in other.records)


def test_bad_arguments():
    with pytest.raises(InputError, match="unknown property 'band_gap'.*LCD"):
        load_coremof("band_gap", limit=1, progress=False)
    with pytest.raises(InputError, match="unknown subset '2030'"):
        load_coremof(subset="2030", limit=1, progress=False)
