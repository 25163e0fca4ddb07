"""build_graph: the DESIGN.md contract, line graph, batching, invariances, property test, real structures."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pymatgen.core import Lattice, Structure
from torch_geometric.data import Batch

from crystograph.config import GraphConfig
from crystograph.errors import InputError
from crystograph.graphs import CrystalGraph, build_graph, graph_summary
from crystograph.graphs.line_graph import bond_angle_cos, line_graph_index

FLOAT_FIELDS = ("x", "pos", "edge_vec", "edge_attr", "lg_attr", "pe")
INVARIANT_FIELDS = ("x", "z", "edge_index", "edge_vec", "edge_attr", "lg_edge_index", "lg_attr", "pe")


def random_structure(seed: int, n: int = 5) -> Structure:
    rng = np.random.default_rng(seed)
    lat = Lattice.from_parameters(*rng.uniform(3.0, 7.0, 3), *rng.uniform(75, 105, 3))
    while True:
        s = Structure(lat, rng.choice(["Si", "O", "Fe", "Li", "N"], n), rng.random((n, 3)))
        if n == 1 or s.distance_matrix[np.triu_indices(n, 1)].min() > 1.0:
            return s


def _assert_same(g1, g2, fields=INVARIANT_FIELDS, atol=1e-5):
    for f in fields:
        a, b = getattr(g1, f), getattr(g2, f)
        assert a.shape == b.shape, f
        if a.dtype.is_floating_point:
            torch.testing.assert_close(a, b, atol=atol, rtol=0, msg=f)
        else:
            assert torch.equal(a, b), f


def test_contract_fields_shapes_dtypes(rocksalt):
    cfg = GraphConfig()
    g = build_graph(rocksalt)
    n, e = 8, 8 * cfg.k
    assert isinstance(g, CrystalGraph)
    shapes = {
        "x": (n, 92),
        "z": (n,),
        "pos": (n, 3),
        "edge_index": (2, e),
        "edge_vec": (e, 3),
        "edge_attr": (e, cfg.edge_dim),
        "lg_edge_index": (2, cfg.k * e),
        "lg_attr": (cfg.k * e, cfg.line_dim),
        "pe": (n, cfg.pe_dim),
    }
    for f, shape in shapes.items():
        assert tuple(getattr(g, f).shape) == shape, f
    for f in FLOAT_FIELDS:
        assert getattr(g, f).dtype == torch.float32, f
    for f in ("z", "edge_index", "lg_edge_index"):
        assert getattr(g, f).dtype == torch.long, f
    assert g.num_nodes == n and g.z.tolist() == [11] * 4 + [17] * 4
    # row 1 = centre, sorted, k per centre; edge_vec = centre -> neighbour image
    dst = g.edge_index[1]
    assert torch.all(dst[1:] >= dst[:-1]) and torch.bincount(dst).tolist() == [cfg.k] * n
    d = g.edge_vec.norm(dim=1)
    torch.testing.assert_close(d[:6], torch.full((6,), 2.82))
    assert g.lg_edge_index.max() < e


def test_line_graph_counts_and_meeting_atom():
    g = build_graph(random_structure(3, 4))
    src, dst = g.edge_index
    n = g.num_nodes
    indeg, outdeg = torch.bincount(dst, minlength=n), torch.bincount(src, minlength=n)
    assert g.lg_edge_index.size(1) == int((indeg * outdeg).sum()) == 12 * g.edge_index.size(1)
    a, b = g.lg_edge_index
    assert torch.equal(dst[a], src[b])  # a = (k -> j), b = (j -> i)
    # every (a, b) pair meeting at an atom appears exactly once
    pairs = {(int(x), int(y)) for x, y in zip(a, b)}
    assert len(pairs) == a.numel()
    brute = {(x, y) for y in range(src.numel()) for x in torch.nonzero(dst == src[y]).flatten().tolist()}
    assert pairs == brute


@pytest.mark.parametrize("uniform", [True, False])
def test_line_graph_index_matches_literal_pairs(uniform):
    # every b = (j -> i) in order, then every a = (k -> j) in order: both the k-in-edges grid and the general
    # CSR path (atoms with 0..4 in-edges) against the double loop
    rng = np.random.default_rng(3)
    n = 7
    indeg = np.full(n, 3) if uniform else rng.integers(0, 5, n)
    dst = np.repeat(np.arange(n), indeg)
    src = rng.integers(0, n, dst.size)
    lg = line_graph_index(np.stack([src, dst]), n)
    literal = [(a, b) for b in range(dst.size) for a in range(dst.size) if dst[a] == src[b]]
    assert [tuple(p) for p in lg.t().tolist()] == literal and lg.dtype == torch.long


def test_line_graph_hand_checked_angles():
    # atom 0 at the origin; edge 0 = (1 -> 0) points from 0 to atom 1 at (1,0,0); edge 1 = (0 -> 2) has its
    # vector from atom 2 to atom 0, so -edge_vec[1] points from 0 to atom 2.
    for deg in (90.0, 120.0, 45.0):
        t = math.radians(deg)
        edge_index = torch.tensor([[1, 0], [0, 2]])
        edge_vec = torch.tensor([[1.0, 0, 0], [-2 * math.cos(t), -2 * math.sin(t), 0]], dtype=torch.float64)
        lg = line_graph_index(edge_index, 3)
        assert lg.tolist() == [[0], [1]]
        assert bond_angle_cos(edge_vec, lg).item() == pytest.approx(math.cos(t), abs=1e-12)


def test_simple_cubic_bond_angles(simple_cubic):
    g = build_graph(simple_cubic)
    cos = bond_angle_cos(g.edge_vec.double(), g.lg_edge_index)
    allowed = torch.tensor([-1, -1 / math.sqrt(2), -0.5, 0, 0.5, 1 / math.sqrt(2), 1], dtype=torch.float64)
    assert torch.all((cos[:, None] - allowed).abs().min(1).values < 1e-6)
    a, b = g.lg_edge_index
    backtrack = (g.edge_vec[a] + g.edge_vec[b]).norm(dim=1) < 1e-5  # k's image is the image of i
    assert torch.all(cos[backtrack] > 1 - 1e-9) and int(backtrack.sum()) == 6  # the 6 axis bonds
    centre = (g.lg_attr.shape[1] - 1) / 2  # cos = 0 peaks midway in [-1, 1]
    perp = (cos.abs() < 1e-6).nonzero().flatten()
    assert abs(g.lg_attr[perp[0]].argmax().item() - centre) <= 0.5


def test_batching_offsets_line_graph_by_edges(rocksalt, simple_cubic, fcc_primitive):
    graphs = [build_graph(s) for s in (simple_cubic, rocksalt, fcc_primitive)]
    batch = Batch.from_data_list(graphs)
    e = [g.edge_index.size(1) for g in graphs]
    assert batch.lg_edge_index.size(1) == sum(g.lg_edge_index.size(1) for g in graphs)
    lg1 = batch.lg_edge_index[:, graphs[0].lg_edge_index.size(1) :][:, : graphs[1].lg_edge_index.size(1)]
    assert torch.equal(lg1, graphs[1].lg_edge_index + e[0])
    a, b = batch.lg_edge_index
    assert torch.equal(batch.edge_index[1, a], batch.edge_index[0, b])
    assert batch.batch.tolist() == [0] + [1] * 8 + [2]
    assert torch.equal(batch.batch[batch.edge_index[0, a]], batch.batch[batch.edge_index[1, b]])


def _translated(s: Structure, vec) -> Structure:
    t = s.copy()
    t.translate_sites(list(range(len(t))), vec, frac_coords=True, to_unit_cell=True)
    return t


@pytest.mark.parametrize("mode", ["laplacian+rw", "periodic_rw"])
def test_translation_invariance(mode):
    cfg = GraphConfig(pe_mode=mode)
    for s in (random_structure(11, 6), random_structure(12, 1)):
        g1 = build_graph(s, cfg)
        g2 = build_graph(_translated(s, [0.31, -0.77, 0.45]), cfg)
        _assert_same(g1, g2)


def _permuted(s: Structure, perm) -> Structure:
    return Structure(s.lattice, [s.species[i] for i in perm], s.frac_coords[perm])


def _assert_permuted(g, gp, perm):
    """gp is the graph of the structure whose atom i' is atom perm[i'] of g's structure."""
    ptr = torch.zeros(g.num_nodes + 1, dtype=torch.long)
    ptr[1:] = torch.cumsum(torch.bincount(g.edge_index[1], minlength=g.num_nodes), 0)
    perm_t = torch.as_tensor(perm)
    for f in ("x", "z", "pos", "pe"):
        torch.testing.assert_close(getattr(gp, f), getattr(g, f)[perm_t], atol=1e-5, rtol=0, msg=f)
    cp = gp.edge_index[1]
    emap = ptr[perm_t[cp]] + (torch.arange(cp.numel()) - ptr[cp])  # edge e' of gp is edge emap[e'] of g
    assert torch.equal(perm_t[gp.edge_index], g.edge_index[:, emap])
    for f in ("edge_vec", "edge_attr"):
        torch.testing.assert_close(getattr(gp, f), getattr(g, f)[emap], atol=1e-5, rtol=0, msg=f)
    # line graph: the same set of (a, b) pairs with the same features
    key = lambda lg, m: (m[lg[0]] * 10**6 + m[lg[1]])  # noqa: E731
    kp = key(gp.lg_edge_index, emap)
    k0 = key(g.lg_edge_index, torch.arange(g.edge_index.size(1)))
    op, o0 = torch.argsort(kp), torch.argsort(k0)
    assert torch.equal(kp[op], k0[o0])
    torch.testing.assert_close(gp.lg_attr[op], g.lg_attr[o0], atol=1e-5, rtol=0)


@pytest.mark.parametrize("mode", ["laplacian+rw", "periodic_rw"])
def test_permutation_invariance(rocksalt, mode):
    cfg = GraphConfig(pe_mode=mode)
    rng = np.random.default_rng(5)
    for s in (rocksalt, random_structure(21, 7)):
        g = build_graph(s, cfg)
        for _ in range(2):
            perm = rng.permutation(len(s))
            _assert_permuted(g, build_graph(_permuted(s, perm), cfg), perm)


def test_supercell_periodic_rw_identical():
    cfg = GraphConfig(pe_mode="periodic_rw")
    s = random_structure(8, 3)
    sc = s.copy()
    sc.make_supercell([[2, 0, 0], [0, 2, 0], [0, 0, 2]])
    g, gs = build_graph(s, cfg), build_graph(sc, cfg)
    frac = (sc.frac_coords * 2) % 1.0
    diff = frac[:, None, :] - s.frac_coords[None] % 1.0
    orig = torch.as_tensor(np.abs(diff - np.round(diff)).max(-1).argmin(1))
    torch.testing.assert_close(gs.pe, g.pe[orig], atol=1e-6, rtol=0)
    assert gs.pe[:, cfg.lap_pe_dim :].abs().sum() > 0 and gs.pe[:, : cfg.lap_pe_dim].abs().sum() == 0
    d, ds = g.edge_vec.norm(dim=1).view(-1, 12), gs.edge_vec.norm(dim=1).view(-1, 12)
    torch.testing.assert_close(ds, d[orig], atol=1e-5, rtol=0)


def test_graph_summary(simple_cubic):
    summ = graph_summary(build_graph(simple_cubic))
    assert summ["atoms"] == 1 and summ["edges"] == 12 and summ["line_edges"] == 144
    assert summ["nearest_neighbor_distance"] == pytest.approx(3.0)
    assert summ["farthest_neighbor_distance"] == pytest.approx(3 * math.sqrt(2), rel=1e-6)


def test_input_errors():
    with pytest.raises(InputError, match=r"atom 0 \(Fe\)"):
        build_graph(Structure(Lattice.cubic(50.0), ["Fe"], [[0, 0, 0]]), source="lonely.cif")
    g = build_graph(Structure(Lattice.cubic(50.0), ["Fe"], [[0, 0, 0]]), on_isolated_atoms="ignore")
    assert g.edge_index.size(1) == 0 and g.lg_edge_index.size(1) == 0 and g.pe.shape == (1, 16)
    assert math.isnan(graph_summary(g)["nearest_neighbor_distance"])
    disordered = Structure(Lattice.cubic(3.0), [{"Fe": 0.5, "Ni": 0.5}], [[0, 0, 0]])
    with pytest.raises(InputError, match="site 0 is disordered") as err:
        build_graph(disordered, source="alloy.cif")
    assert err.value.source == "alloy.cif"
    with pytest.raises(InputError, match="no atoms"):
        build_graph(Structure(Lattice.cubic(3.0), [], []))


def test_config_sizes_respected(fcc_primitive):
    cfg = GraphConfig(k=6, n_rbf_r=10, n_rbf_theta=4, n_rbf_phi=5, n_rbf_angle=7, lap_pe_dim=3, rw_pe_dim=2)
    g = build_graph(fcc_primitive, cfg)
    assert g.edge_attr.shape == (6, cfg.edge_dim) and g.lg_attr.shape == (36, 7) and g.pe.shape == (1, 5)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    lengths=st.lists(st.floats(2.5, 12.0), min_size=3, max_size=3),
    angles=st.lists(st.floats(60.0, 120.0), min_size=3, max_size=3),
    frac=st.lists(st.lists(st.floats(0.0, 1.0, exclude_max=True), min_size=3, max_size=3), min_size=1, max_size=8),
    shift=st.lists(st.floats(-1.0, 1.0), min_size=3, max_size=3),
)
def test_property_random_cells(lengths, angles, frac, shift):
    lat = Lattice.from_parameters(*lengths, *angles)
    assume(lat.volume > 0.2 * np.prod(lengths))  # skip (nearly) degenerate angle triples
    s = Structure(lat, ["C"] * len(frac), frac)
    if len(s) > 1:
        assume(s.distance_matrix[np.triu_indices(len(s), 1)].min() >= 0.8)
    cfg = GraphConfig(pe_mode="periodic_rw", rw_pe_dim=4)
    g = build_graph(s, cfg)
    assert torch.bincount(g.edge_index[1], minlength=len(s)).tolist() == [12] * len(s)
    assert torch.isfinite(g.pe).all() and torch.isfinite(g.edge_attr).all() and torch.isfinite(g.lg_attr).all()
    _assert_same(g, build_graph(_translated(s, shift), cfg))
    g2 = build_graph(s, dataclasses.replace(cfg, pe_mode="laplacian+rw"))
    assert torch.isfinite(g2.pe).all()


@pytest.mark.shared_data
def test_real_structures():
    import pandas as pd

    from conftest import shared_file

    df = pd.read_csv(shared_file("mp_mtcgcnn/mp_eform_gap.csv.gz"), nrows=30)
    for cif in df["cif"]:
        s = Structure.from_str(cif, fmt="cif")
        g = build_graph(s)
        assert torch.bincount(g.edge_index[1], minlength=len(s)).tolist() == [12] * len(s)
        assert g.lg_edge_index.size(1) == 12 * g.edge_index.size(1)
        assert torch.isfinite(g.pe).all() and g.edge_vec.norm(dim=1).max() <= 20.0


def test_non_periodic_directions_and_bad_species():
    from pymatgen.core import DummySpecies, Molecule

    slab = Structure(Lattice(np.diag([3.0, 3.0, 3.0]), pbc=(True, True, False)), ["C"], [[0, 0, 0]])
    g = build_graph(slab)
    assert g.edge_index.size(1) == 12 and torch.all(g.edge_vec[:, 2].abs() < 1e-9)  # no images along c
    with pytest.raises(InputError, match="site 0 has species X"):
        build_graph(Structure(Lattice.cubic(3.0), [DummySpecies("X")], [[0, 0, 0]]))
    with pytest.raises(InputError, match="periodic pymatgen Structure"):
        build_graph(Molecule(["H", "H"], [[0, 0, 0], [0, 0, 0.74]]))


def test_eigvec_form_permutes_up_to_sign():
    # canonical-sign eigenvectors permute with the atoms up to the sign of eigenvectors whose largest |entries|
    # tie (e.g. (u, -u) on two atoms swapped by a graph automorphism: no sign rule can be equivariant there)
    cfg = GraphConfig(lap_pe_form="eigvec")
    s = random_structure(31, 6)
    g = build_graph(s, cfg)
    perm = np.random.default_rng(1).permutation(6)
    gp = build_graph(_permuted(s, perm), cfg)
    torch.testing.assert_close(gp.pe.abs(), g.pe[torch.as_tensor(perm)].abs(), atol=1e-5, rtol=0)
    torch.testing.assert_close(gp.pe[:, :1], g.pe[torch.as_tensor(perm), :1], atol=1e-5, rtol=0)


def test_torch_feature_path_matches_the_builder(rocksalt):
    """The accelerator path of add_edge_features (torch) gives the builder's numpy features."""
    from crystograph.config import GraphConfig
    from crystograph.graphs import build_graph
    from crystograph.graphs.build import _edge_features_torch, _line_features_torch

    cfg = GraphConfig()
    structure = rocksalt.copy()
    structure.perturb(0.1, seed=3)  # break the symmetry: generic angles
    g = build_graph(structure, cfg)
    torch.testing.assert_close(_edge_features_torch(g.edge_vec, cfg), g.edge_attr, atol=2e-5, rtol=1e-4)
    torch.testing.assert_close(_line_features_torch(g.edge_vec, g.lg_edge_index, cfg.n_rbf_angle), g.lg_attr,
                               atol=2e-5, rtol=1e-4)
