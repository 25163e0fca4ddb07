"""`GraphConfig(cell="primitive")`: every cell of a crystal (primitive, conventional, supercell, in any frame, cell
vectors, origin and atom order) gives one graph and one prediction; the default keeps the paper's cell-dependent
encodings; cells that are not repeats within `symprec`, and crystals not periodic along all axes, stay as given."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure

from crystograph.config import GraphConfig, ModelConfig
from crystograph.errors import ConfigError
from crystograph.graphs import build_graph
from crystograph.graphs.bulk import build_graph_batch
from crystograph.nn import CrysToGraph
from tests.test_invariance import _same_crystal

CRYSTALS = {  # conventional cells of real prototypes: KI rock salt (8 atoms), ZnS zinc blende (8), bcc Ta (2)
    "KI": lambda: Structure.from_spacegroup("Fm-3m", Lattice.cubic(7.185), ["K", "I"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
    "ZnS": lambda: Structure.from_spacegroup("F-43m", Lattice.cubic(5.45), ["Zn", "S"], [[0, 0, 0], [0.25] * 3]),
    "Ta": lambda: Structure.from_spacegroup("Im-3m", Lattice.cubic(3.322), ["Ta"], [[0, 0, 0]]),
    "low_symmetry": lambda: Structure(Lattice.from_parameters(4.1, 5.3, 6.2, 82, 97, 104),
                                      ["Li", "Fe", "P", "O", "O", "O"], np.random.default_rng(1).uniform(0, 1, (6, 3))),
}


def _model(cell: str):
    torch.manual_seed(0)
    cfg = ModelConfig.preset("small", graph=GraphConfig(cell=cell))
    return CrysToGraph(cfg).eval(), cfg.graph


def _predict(model, structure, cfg) -> float:
    with torch.no_grad():
        return float(model(build_graph(structure, cfg)).squeeze())


def _writings(structure: Structure, rng) -> list[Structure]:
    """The same crystal as its primitive cell, as given, as two supercells, and rewritten (frame, cell vectors,
    origin, atom order)."""
    primitive = structure.get_primitive_structure()
    return [primitive, structure, primitive * (2, 1, 3), structure * (1, 2, 1), _same_crystal(structure * 2, rng)]


@pytest.mark.parametrize("name", sorted(CRYSTALS))
def test_every_cell_of_a_crystal_gives_one_graph_and_one_prediction(name):
    model, cfg = _model("primitive")
    cells = _writings(CRYSTALS[name](), np.random.default_rng(0))
    graphs = [build_graph(c, cfg) for c in cells]
    n = graphs[0].num_nodes
    assert n == len(cells[0]) and all(g.num_nodes == n for g in graphs)
    for g in graphs[1:]:  # the same encodings up to atom order
        assert np.allclose(np.sort(g.pe.numpy(), axis=0), np.sort(graphs[0].pe.numpy(), axis=0), atol=1e-5)
    reference = _predict(model, cells[0], cfg)
    for c in cells[1:]:
        assert _predict(model, c, cfg) == pytest.approx(reference, abs=1e-5)


def test_the_papers_cell_as_given_moves_a_conventional_cell():
    """The default is the paper's: the conventional KI cell (8 atoms) gets other encodings than its primitive
    cell (2 atoms), and another prediction; `cell="primitive"` is the option that removes this."""
    model, cfg = _model("as_given")
    conventional = CRYSTALS["KI"]()
    assert GraphConfig().cell == "as_given" and build_graph(conventional, cfg).num_nodes == 8
    a = _predict(model, conventional, cfg)
    b = _predict(model, conventional.get_primitive_structure(), cfg)
    assert abs(a - b) > 1e-4


def test_bulk_builder_reduces_the_same_way():
    cfg = GraphConfig(cell="primitive")
    cells = _writings(CRYSTALS["ZnS"](), np.random.default_rng(1))
    for single, bulk in zip((build_graph(c, cfg) for c in cells), build_graph_batch(cells, cfg)):
        assert single.num_nodes == bulk.num_nodes == 2
        assert torch.equal(single.edge_index, bulk.edge_index)
        assert torch.allclose(single.pe, bulk.pe) and torch.allclose(single.edge_vec, bulk.edge_vec)


def test_repeats_farther_apart_than_symprec_stay_as_given():
    rng = np.random.default_rng(2)
    supercell = CRYSTALS["Ta"]().get_primitive_structure() * (2, 2, 2)  # 8 atoms, 8 lattice points
    cfg = GraphConfig(cell="primitive", symprec=0.01)
    assert build_graph(supercell, cfg).num_nodes == 1
    near = supercell.copy()
    near.perturb(0.002, min_distance=0.001)  # displacements below symprec: still one crystal
    assert build_graph(near, cfg).num_nodes == 1
    moved = supercell.copy()
    step = rng.normal(size=3)
    moved.translate_sites([0], 0.05 * step / np.linalg.norm(step), frac_coords=False)  # 0.05 Å off: not a repeat
    assert build_graph(moved, cfg).num_nodes == 8


def test_not_periodic_along_every_axis_stays_as_given():
    slab = CRYSTALS["Ta"]() * (1, 1, 2)
    slab = Structure(Lattice(slab.lattice.matrix, pbc=(True, True, False)), slab.species, slab.frac_coords)
    assert build_graph(slab, GraphConfig(cell="primitive")).num_nodes == len(slab) == 4


def test_bad_cell_options_are_refused():
    with pytest.raises(ConfigError, match="cell"):
        GraphConfig(cell="conventional")
    with pytest.raises(ConfigError, match="symprec"):
        GraphConfig(cell="primitive", symprec=0.0)
