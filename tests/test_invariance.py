"""Model-level invariances: the same crystal gives the same prediction whatever its Cartesian frame (rotation),
cell vectors (unimodular basis change), origin and atom order — on random triclinic cells, symmetric crystals
(degenerate Laplacian eigenspaces, cut neighbour shells, a chiral cubic crystal) and real structures, for an
untrained and a trained model; the lab-frame option keeps the paper's frame dependence. Supercells: exact with
`pe_mode="periodic_rw"`, measured (not assumed) under the paper's Laplacian + random-walk PE."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from pymatgen.core import Lattice, Structure

from crystograph.config import GraphConfig, ModelConfig
from crystograph.graphs import build_graph
from crystograph.nn import CrysToGraph


def _predict(model, structure, graph_cfg):
    with torch.no_grad():
        return float(model(build_graph(structure, graph_cfg)).squeeze())


def _model(pe_mode: str, seed: int = 0):
    torch.manual_seed(seed)
    cfg = ModelConfig.preset("small", graph=GraphConfig(pe_mode=pe_mode))
    model = CrysToGraph(cfg).eval()
    # Non-trivial BatchNorm statistics, so eval mode is not an identity there.
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm1d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    return model, cfg.graph


def _low_symmetry() -> Structure:
    rng = np.random.default_rng(1)
    lattice = Lattice.from_parameters(4.1, 5.3, 6.2, 82, 97, 104)
    return Structure(lattice, ["Li", "Fe", "P", "O", "O", "O"], rng.uniform(0, 1, (6, 3)))


@pytest.mark.parametrize("pe_mode", ["laplacian+rw", "periodic_rw"])
@pytest.mark.parametrize("which", ["rocksalt_conventional", "perovskite", "low_symmetry"])
def test_atom_order_and_translation_do_not_change_prediction(pe_mode, which, rocksalt):
    structure = {
        "rocksalt_conventional": rocksalt,  # 8 atoms, cubic: degenerate Laplacian eigenspaces
        "perovskite": Structure(Lattice.cubic(3.9), ["Sr", "Ti", "O", "O", "O"],
                                [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]),
        "low_symmetry": _low_symmetry(),
    }[which]
    model, graph_cfg = _model(pe_mode)
    reference = _predict(model, structure, graph_cfg)
    rng = np.random.default_rng(0)
    for _ in range(3):
        order = rng.permutation(len(structure))
        shuffled = Structure(structure.lattice, [structure[i].specie for i in order],
                             structure.frac_coords[order])
        assert _predict(model, shuffled, graph_cfg) == pytest.approx(reference, rel=1e-4, abs=1e-5)
    moved = structure.copy()
    moved.translate_sites(list(range(len(moved))), [0.123, -0.31, 0.77])
    assert _predict(model, moved, graph_cfg) == pytest.approx(reference, rel=1e-4, abs=1e-5)


@pytest.mark.parametrize("which", ["perovskite", "low_symmetry"])
def test_supercell_exactly_invariant_with_periodic_rw(which):
    structure = (Structure(Lattice.cubic(3.9), ["Sr", "Ti", "O", "O", "O"],
                           [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
                 if which == "perovskite" else _low_symmetry())
    model, graph_cfg = _model("periodic_rw")
    supercell = structure * (2, 2, 2)
    assert _predict(model, supercell, graph_cfg) == pytest.approx(_predict(model, structure, graph_cfg),
                                                                  rel=1e-4, abs=1e-5)


def test_paper_pe_is_not_supercell_invariant_but_the_change_is_measured():
    """The paper's PE is computed on the cell's graph, so a supercell changes it: we measure by how much
    (benchmarks/supercell_pe.py reports it for trained models on real data)."""
    structure = _low_symmetry()
    model, graph_cfg = _model("laplacian+rw")
    a = _predict(model, structure, graph_cfg)
    b = _predict(model, structure * (2, 2, 2), graph_cfg)
    assert np.isfinite(a) and np.isfinite(b)
    assert a != pytest.approx(b, rel=1e-6)  # it does move (if this ever fails, the PE became invariant)


# --- Same crystal, same prediction: frame, cell vectors, origin, atom order ------------------------------

def _rotation(rng) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q  # a proper rotation


def _unimodular(rng) -> np.ndarray:
    while True:
        m = rng.integers(-2, 3, size=(3, 3))
        if round(abs(np.linalg.det(m))) == 1:
            return m


def _same_crystal(structure: Structure, rng) -> Structure:
    """The same crystal, rotated, in other cell vectors, with another origin and atom order."""
    rot, basis = _rotation(rng), _unimodular(rng)
    order = rng.permutation(len(structure))
    lattice = Lattice(basis @ structure.lattice.matrix @ rot.T)
    cart = (structure.cart_coords[order] + rng.normal(size=3)) @ rot.T
    return Structure(lattice, [structure[i].specie for i in order], cart, coords_are_cartesian=True,
                     to_unit_cell=True)


def _random_triclinic(rng) -> Structure:
    lattice = Lattice.from_parameters(*rng.uniform(3.0, 7.0, 3), *rng.uniform(75.0, 105.0, 3))
    n = int(rng.integers(1, 6))
    return Structure(lattice, list(rng.choice(["Li", "O", "Fe", "P", "Cs"], n)), rng.uniform(0, 1, (n, 3)))


SYMMETRIC = {
    "bcc": lambda: Structure(Lattice.cubic(2.87), ["Fe", "Fe"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
    "fcc_primitive": lambda: Structure(Lattice([[0, 2, 2], [2, 0, 2], [2, 2, 0]]), ["Al"], [[0, 0, 0]]),
    "hcp": lambda: Structure.from_spacegroup("P6_3/mmc", Lattice.hexagonal(3.2, 5.2), ["Mg"], [[1 / 3, 2 / 3, 0.25]]),
    "perovskite": lambda: Structure(Lattice.cubic(3.9), ["Sr", "Ti", "O", "O", "O"],
                                    [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]),
    "chiral_cubic_FeSi": lambda: Structure.from_spacegroup("P2_13", Lattice.cubic(4.49), ["Fe", "Si"],
                                                           [[0.137, 0.137, 0.137], [0.842, 0.842, 0.842]]),
    "tetragonal_low_symmetry": lambda: Structure(Lattice.tetragonal(4.0, 6.0), ["Li", "O", "O"],
                                                 [[0, 0, 0], [0.1, 0.23, 0.31], [0.6, 0.2, 0.7]]),
    # F-43m with four elements on the four fcc sublattices (MP's mp-11806): the first shell of every atom is the
    # 8 corners of a cube, 4 of one element at +t and 4 of another at -t, so without species it is centrosymmetric
    "half_heusler_LiMgSnPt": lambda: Structure(Lattice([[0, 3.25, 3.25], [3.25, 0, 3.25], [3.25, 3.25, 0]]),
                                               ["Li", "Mg", "Sn", "Pt"],
                                               [[0, 0, 0], [0.5, 0.5, 0.5], [0.25, 0.25, 0.25], [0.75, 0.75, 0.75]]),
}


@pytest.fixture(scope="module")
def trained_small():
    """A small model after a few optimiser steps on random crystals (weights and BatchNorm statistics moved)."""
    from torch_geometric.data import Batch

    rng = np.random.default_rng(5)
    model, graph_cfg = _model("laplacian+rw", seed=3)
    graphs = [build_graph(_random_triclinic(rng), graph_cfg) for _ in range(16)]
    batch, y = Batch.from_data_list(graphs), torch.from_numpy(rng.normal(size=(16, 1))).float()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(15):
        opt.zero_grad()
        torch.nn.functional.l1_loss(model(batch), y).backward()
        opt.step()
    return model.eval(), graph_cfg


@pytest.mark.parametrize("which", sorted(SYMMETRIC))
def test_symmetric_crystals_same_prediction_in_any_frame_and_cell(which):
    model, graph_cfg = _model("laplacian+rw")
    structure = SYMMETRIC[which]()
    reference = _predict(model, structure, graph_cfg)
    rng = np.random.default_rng(abs(hash(which)) % 2**32)
    for _ in range(4):
        assert _predict(model, _same_crystal(structure, rng), graph_cfg) == pytest.approx(reference, abs=1e-5)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_random_triclinic_same_prediction_untrained_and_trained(seed, trained_small):
    rng = np.random.default_rng(seed)
    structure = _random_triclinic(rng)
    untrained, graph_cfg = _model("laplacian+rw")
    trained, _ = trained_small
    for model in (untrained, trained):
        reference = _predict(model, structure, graph_cfg)
        other = _same_crystal(structure, rng)
        assert _predict(model, other, graph_cfg) == pytest.approx(reference, abs=1e-5)


def test_lab_frame_option_keeps_the_papers_frame_dependence():
    model, graph_cfg = _model("laplacian+rw")
    lab = dataclasses.replace(graph_cfg, frame="lab")
    structure = _low_symmetry()
    rng = np.random.default_rng(2)
    moved = [_predict(model, _same_crystal(structure, rng), lab) for _ in range(3)]
    assert max(abs(m - _predict(model, structure, lab)) for m in moved) > 1e-4


def _labelled_edges(graph) -> np.ndarray:
    """Rows (Z centre, Z neighbour, edge vector in the canonical frame), sorted: the graph up to atom order."""
    centre, neighbour = graph.edge_index[1].numpy(), graph.edge_index[0].numpy()
    z = graph.z.numpy()
    rows = np.column_stack([z[centre], z[neighbour], np.round(graph.edge_vec.numpy(), 4) + 0.0])
    return rows[np.lexsort(rows.T[::-1])]


def test_species_decide_the_frame_where_the_bare_shells_are_more_symmetric():
    """A half-Heusler written with its atoms inverted through an atom (a rotated copy: F-43m has mirror planes)
    and in random cells gets the same labelled graph: frames that tie on the species-blind part of the score
    are told apart by which element sits at +t and which at -t."""
    structure = SYMMETRIC["half_heusler_LiMgSnPt"]()
    inverted = Structure(structure.lattice, structure.species, -structure.frac_coords)
    rng = np.random.default_rng(4)
    reference = _labelled_edges(build_graph(structure))
    for other in [inverted] + [_same_crystal(s, rng) for s in (structure, inverted) for _ in range(3)]:
        np.testing.assert_allclose(_labelled_edges(build_graph(other)), reference, atol=2e-4)


def test_cut_shell_is_frame_free():
    """bcc with k = 12 keeps 8 + 4 of 6 second-shell neighbours: the same 4 (up to symmetry) in any frame."""
    structure = SYMMETRIC["bcc"]()
    rng = np.random.default_rng(11)
    edge_sets = []
    for s in [structure] + [_same_crystal(structure, rng) for _ in range(4)]:
        attr = build_graph(s).edge_attr.numpy()
        edge_sets.append(attr[np.lexsort(np.round(attr, 4).T[::-1])])
    for other in edge_sets[1:]:
        np.testing.assert_allclose(other, edge_sets[0], atol=1e-5)


@pytest.mark.shared_data
def test_real_structures_same_prediction(trained_small):
    import pandas as pd

    from conftest import shared_file
    from crystograph.structures.parsing import parse_cif

    rows = pd.read_csv(shared_file("matbench/matbench_jdft2d.csv.gz")).sample(8, random_state=0)
    model, graph_cfg = trained_small
    rng = np.random.default_rng(0)
    for i, cif in enumerate(rows["cif"]):
        structure = parse_cif(cif, f"row {i}")[0]
        reference = _predict(model, structure, graph_cfg)
        assert _predict(model, _same_crystal(structure, rng), graph_cfg) == pytest.approx(reference, abs=1e-5)
