"""The pretraining corpus: fingerprint invariances, leakage filter, de-duplication, corpus file round trip."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from pymatgen.core import Lattice, Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer
from scipy.spatial.transform import Rotation

from crystograph.pretrain.corpus import build_corpus, load_corpus, read_corpus, source_task, write_corpus
from crystograph.pretrain.fingerprint import fingerprints
from tests.conftest import bench_script


def rocksalt(a: float = 5.64) -> Structure:
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(a), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def cscl_nacl(d: float = 2.82) -> Structure:
    """NaCl in the CsCl structure with the same nearest-neighbour distance as rocksalt."""
    return Structure(Lattice.cubic(2 * d / np.sqrt(3)), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def rotated(s: Structure) -> Structure:
    r = Rotation.from_euler("xyz", [0.3, 1.1, -0.7]).as_matrix()
    return Structure(Lattice(s.lattice.matrix @ r.T), s.species, s.frac_coords)


def shifted(s: Structure) -> Structure:
    out = s.copy()
    out.translate_sites(list(range(len(out))), [0.13, 0.27, 0.41])
    return out


def permuted(s: Structure) -> Structure:
    idx = np.random.default_rng(0).permutation(len(s))
    return Structure(s.lattice, [s.species[i] for i in idx], s.frac_coords[idx])


def supercell(s: Structure) -> Structure:
    out = s.copy()
    out.make_supercell([[2, 1, 0], [0, 1, 0], [0, 0, 3]])  # a skewed 6-fold supercell: other cell vectors too
    return out


# ------------------------------------------------------------------------------------------------ fingerprint
@pytest.mark.parametrize("transform", [rotated, shifted, permuted, supercell,
                                       lambda s: SpacegroupAnalyzer(s).get_primitive_standard_structure()])
def test_fingerprint_is_invariant(transform):
    s = rocksalt()
    assert fingerprints(transform(s)) == fingerprints(s)


def test_fingerprint_separates_polymorphs_and_lattice_constants():
    rs = fingerprints(rocksalt())
    assert rs.formula == "NaCl" and fingerprints(cscl_nacl()).key != rs.key
    assert fingerprints(rocksalt(5.64 * 1.05)).key != rs.key
    kcl = rocksalt()
    kcl.replace_species({"Na": "K"})
    assert fingerprints(kcl).key != rs.key


# ------------------------------------------------------------------------------------------------ corpus
def _write(path, id_column: str, target: str, items: list[tuple[str, Structure]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [{id_column: rid, target: 1.0, "natoms": len(s), "cif": s.to(fmt="cif"), "official_test_fold": 0}
            for rid, s in items]
    pd.DataFrame(rows).to_csv(path, index=False)


@pytest.fixture(scope="module")
def two_sources(tmp_path_factory):
    """An evaluation task (supercon stand-in) and another source (phonons stand-in) that repeats one of its
    structures in another frame and cell, holds a polymorph, a duplicate pair and one oversized cell."""
    data = tmp_path_factory.mktemp("corpus") / "data"
    rs, cs = rocksalt(), cscl_nacl()
    mgo = rocksalt(4.21)
    mgo.replace_species({"Na": "Mg", "Cl": "O"})
    _write(data / "supercon" / "supercon.csv.gz", "material_id", "tc_K", [("sc-1", rs), ("sc-2", mgo)])
    big = rocksalt(5.0)
    big.make_supercell([3, 3, 2])  # 144 atoms
    _write(data / "matbench" / "matbench_phonons.csv.gz", "mbid", "last_phdos_peak",
           [("ph-1", rotated(supercell(rs))), ("ph-2", cs), ("ph-3", shifted(permuted(cs))), ("ph-4", big)])
    return data


def test_leakage_filter_and_dedup(two_sources):
    result = build_corpus(two_sources, eval_tasks=["local_supercon"], max_atoms=64, progress=False,
                          source_names=["local_matbench_phonons", "local_supercon"])
    assert [(r.source, r.id) for r in result.rows] == [("local_matbench_phonons", "ph-2")]
    phonons, supercon = result.counts
    assert (phonons.rows, phonons.too_large, phonons.before_dedup) == (4, 1, 3)
    assert (phonons.leaked, phonons.duplicates, phonons.kept) == (1, 1, 1)  # ph-1 is sc-1; ph-3 repeats ph-2
    assert (supercon.leaked, supercon.kept) == (2, 0)  # every evaluation structure is out
    assert result.eval_counts["local_supercon"]["fingerprinted"] == 2


def test_corpus_file_round_trip(two_sources, tmp_path):
    result = build_corpus(two_sources, eval_tasks=["local_supercon"], progress=False,
                          source_names=["local_matbench_phonons"])
    path = write_corpus(result.rows, tmp_path / "corpus.csv")
    rows = read_corpus(path)
    assert rows[0]["fingerprint"] == result.rows[0].fingerprint and rows[0]["n_atoms"] == "2"
    records, skipped = load_corpus(path, two_sources, progress=False)
    assert not skipped and [r.id for r in records] == ["local_matbench_phonons:ph-2"]
    assert fingerprints(records[0].structure).key == rows[0]["fingerprint"]


def test_source_task_keeps_only_quality_filters():
    from crystograph.bench.registry import TASKS

    task = source_task(TASKS["local_c2db_gap"], max_atoms=10)
    assert task.filters == (("cell_orthogonal", "==", True), ("natoms", "<=", 10))
    assert task.target == "natoms" and task.sample is None
    assert source_task(TASKS["local_2dmatpedia_exf"]).filters == ()  # "has a label" is no corpus filter


def test_script_writes_corpus_and_summary(two_sources, tmp_path):
    script = bench_script("pretrain_corpus")
    out, summary = tmp_path / "corpus", tmp_path / "summary.json"
    assert script.main(["--data-dir", str(two_sources), "--out", str(out), "--summary", str(summary),
                        "--eval-tasks", "local_supercon", "--sources", "local_matbench_phonons", "--no-progress"]) == 0
    doc = json.loads(summary.read_text())
    assert doc == json.loads((out / "summary.json").read_text())
    assert doc["n_structures"] == 1 and doc["sources"][0]["leaked"] == 1 and doc["max_atoms"] == 64
    assert doc["elements"]["present_z"] == [11, 17] and "Mg" in doc["elements"]["absent_symbols"]
    import hashlib

    assert doc["corpus_sha256"] == hashlib.sha256((out / "corpus.csv").read_bytes()).hexdigest()
    assert doc["command"] and "commit" in doc
