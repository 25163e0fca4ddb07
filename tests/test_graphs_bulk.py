"""`build_graph_batch` (many structures per call) gives exactly `build_graph`'s graphs, errors in place."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure

from conftest import rocksalt_cell, rocksalt_primitive
from crystograph.config import GraphConfig
from crystograph.errors import ConfigError, InputError
from crystograph.graphs import build_graph
from crystograph.graphs.bulk import build_graph_batch


def _random_crystal(rng: np.random.Generator, n: int) -> Structure:
    """A random triclinic cell of n atoms (no symmetry, no ties)."""
    a, b, c = rng.uniform(3.0, 7.0, 3)
    alpha, beta, gamma = rng.uniform(70, 110, 3)
    species = rng.choice(["Na", "Cl", "O", "Si", "Fe", "Li"], n)
    return Structure(Lattice.from_parameters(a, b, c, alpha, beta, gamma), list(species), rng.random((n, 3)))


def _crystals() -> list[Structure]:
    """Random cells of 1-40 atoms (atom counts repeat, so the encodings are stacked), symmetric cells with tied
    neighbour shells (bcc, simple cubic, rock salt, a supercell), a 2-D layer (pbc True, True, False) and a
    skewed cell whose lattice search needs a reduced basis."""
    rng = np.random.default_rng(7)
    out = [_random_crystal(rng, int(n)) for n in rng.integers(1, 40, 30)] + [_random_crystal(rng, 6) for _ in range(3)]
    bcc = Structure(Lattice.cubic(3.3), ["W", "W"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    layer = Structure(Lattice([[2.46, 0, 0], [-1.23, 2.13, 0], [0, 0, 20]], pbc=(True, True, False)), ["C", "C"],
                      [[0, 0, 0.5], [1 / 3, 2 / 3, 0.5]])
    skewed = Structure(Lattice([[3, 0, 0], [29.5, 1, 0], [0.3, 0.2, 7]]), ["Si", "O"], [[0, 0, 0], [0.3, 0.2, 0.1]])
    return out + [bcc, Structure(Lattice.cubic(3.0), ["Po"], [[0, 0, 0]]), rocksalt_cell(),
                  rocksalt_primitive(5.64), rocksalt_cell() * (2, 2, 1), layer, skewed]


def _assert_same(expected, got) -> None:
    a = {k: v for k, v in expected.to_dict().items() if torch.is_tensor(v)}
    b = {k: v for k, v in got.to_dict().items() if torch.is_tensor(v)}
    assert a.keys() == b.keys()
    for key in a:
        assert a[key].dtype == b[key].dtype and a[key].shape == b[key].shape, key
        assert torch.equal(a[key], b[key]), key  # to the last bit
    assert expected.num_nodes == got.num_nodes


@pytest.mark.parametrize("cfg", [GraphConfig(), GraphConfig(frame="lab", k=8), GraphConfig(lap_pe_form="eigvec"),
                                 GraphConfig(pe_mode="rw"), GraphConfig(pe_mode="laplacian"),
                                 GraphConfig(pe_mode="periodic_rw"), GraphConfig(pe_mode="none")],
                         ids=["default", "lab-k8", "eigvec", "rw", "laplacian", "periodic_rw", "none"])
def test_batch_equals_one_by_one(cfg):
    crystals = _crystals()
    for expand in (False, True):
        graphs = build_graph_batch(crystals, cfg, expand_features=expand)
        assert len(graphs) == len(crystals)
        for structure, graph in zip(crystals, graphs):
            _assert_same(build_graph(structure, cfg, expand_features=expand), graph)


def test_batch_sparse_encodings_match():
    """A cell above SPARSE_MIN_ATOMS (sparse Laplacian path) next to small ones."""
    big = rocksalt_cell() * (4, 4, 5)  # 640 atoms
    crystals = [rocksalt_cell(), big, rocksalt_primitive(5.64)]
    for structure, graph in zip(crystals, build_graph_batch(crystals, expand_features=False)):
        _assert_same(build_graph(structure, expand_features=False), graph)


def test_batch_errors_stay_in_place():
    good = rocksalt_cell()
    disordered = Structure(Lattice.cubic(4.0), [{"Na": 0.5, "K": 0.5}], [[0, 0, 0]])
    isolated = Structure(Lattice.cubic(60.0), ["Na"], [[0, 0, 0]])  # no neighbour within max_radius
    out = build_graph_batch([good, disordered, good, isolated], sources=["a.cif", "b.cif", "c.cif", "d.cif"])
    assert isinstance(out[1], InputError) and out[1].source == "b.cif" and "disordered" in out[1].reason
    assert isinstance(out[3], InputError) and out[3].source == "d.cif" and "neighbours" in out[3].reason
    for graph in (out[0], out[2]):
        _assert_same(build_graph(good), graph)
    assert build_graph_batch([]) == []


def test_batch_options_checked():
    with pytest.raises(ConfigError, match="frame"):
        build_graph_batch([rocksalt_cell()], GraphConfig(frame="file"))
    with pytest.raises(ConfigError, match="lap_pe_form"):
        build_graph_batch([rocksalt_cell()], GraphConfig(lap_pe_form="signs"))


@pytest.mark.slow
@pytest.mark.shared_data
def test_batch_equals_one_by_one_on_mp():
    """300 random Materials Project crystals (many symmetric, 1-100+ atoms)."""
    import pandas as pd

    from conftest import shared_file
    from crystograph.structures.parsing import parse_cif

    rows = pd.read_csv(shared_file("mp_mtcgcnn/mp_eform_gap.csv.gz")).sample(300, random_state=3)
    crystals = [parse_cif(cif, f"row {i}")[0] for i, cif in enumerate(rows["cif"])]
    for structure, graph in zip(crystals, build_graph_batch(crystals, expand_features=False)):
        _assert_same(build_graph(structure, expand_features=False), graph)


def test_an_unexpected_error_in_a_batch_is_reported_against_its_record(monkeypatch):
    """build_graphs batches records; when the batch raises something other than an InputError, its records are
    built one by one, so the failure names the one record that causes it and the others are built."""
    from crystograph.data import build_graphs
    from crystograph.graphs import frame
    from crystograph.graphs.neighbors import shell_candidates
    from crystograph.structures import StructureRecord

    crystals = [rocksalt_cell(), rocksalt_primitive(5.0), _random_crystal(np.random.default_rng(1), 5),
                rocksalt_primitive(4.2)]
    records = [StructureRecord(id=f"r{i}", structure=s, targets={}, source=f"s{i}.cif") for i, s in enumerate(crystals)]
    expected = [build_graph(s, expand_features=False) for s in crystals]
    sizes = [shell_candidates(s.cart_coords, s.lattice.matrix, 12, 20.0).i.size for s in crystals]
    assert sizes.count(sizes[2]) == 1  # the candidate count singles out crystal 2
    real = frame.frame_score  # both builders score their candidate frames through it

    def fails_on_crystal_2(frames, vec, z_centre, z_neighbor):
        if z_centre.size == sizes[2]:
            raise ValueError("an internal inconsistency")
        return real(frames, vec, z_centre, z_neighbor)

    monkeypatch.setattr(frame, "frame_score", fails_on_crystal_2)
    graphs, skipped = build_graphs(records, progress=False)
    assert [(s.source, s.reason) for s in skipped] == [
        ("s2.cif", "graph construction failed: ValueError: an internal inconsistency")]
    assert [g.sample_id for g in graphs] == ["r0", "r1", "r3"]
    for graph, ref in zip(graphs, [expected[0], expected[1], expected[3]]):
        _assert_same(ref, graph)


def test_collinear_vectors_get_a_frame_about_a_fixed_normal():
    """Every vector on one line (a 1-D chain's neighbours): one proper rotation per shortest vector, x along it."""
    from crystograph.graphs.frame import candidate_frames

    frames = candidate_frames(np.array([[1.0, 0, 0], [-1.0, 0, 0], [2.0, 0, 0]]))
    assert frames.shape == (2, 3, 3)
    for q, x in zip(frames, ([1.0, 0, 0], [-1.0, 0, 0])):
        np.testing.assert_allclose(q[:, 0], x)
        np.testing.assert_allclose(q.T @ q, np.eye(3), atol=1e-12)
        assert np.linalg.det(q) == pytest.approx(1.0)
