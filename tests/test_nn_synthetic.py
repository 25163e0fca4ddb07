"""Synthetic crystal graphs with the DESIGN.md field names and shapes, for the nn tests.

`synthetic_graph` builds a periodic k-NN graph (27 neighbouring cell images), its line graph and
geometry-derived features, so moving an atom changes edge features the way the real builder does.
It does not depend on `crystograph.graphs`; `real_or_synthetic_graph` prefers the real builder
when it exists.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch_geometric.data import Batch, Data

from crystograph.config import N_ATOM_FEATURES, GraphConfig


class CrystalGraph(Data):
    """Data with `lg_edge_index` offset by the number of direct edges when batching."""

    def __inc__(self, key, value, *args, **kwargs):
        if key == "lg_edge_index":
            return self.edge_index.size(1)
        return super().__inc__(key, value, *args, **kwargs)


def _rbf(values: torch.Tensor, lo: float, hi: float, n: int) -> torch.Tensor:
    centres = torch.linspace(lo, hi, n)
    width = (hi - lo) / max(n - 1, 1)
    return torch.exp(-(((values[:, None] - centres) / width) ** 2))  # [rows, n]


def synthetic_graph(
    pos: torch.Tensor,
    z: torch.Tensor,
    lattice: torch.Tensor,
    pe: torch.Tensor | None = None,
    cfg: GraphConfig | None = None,
) -> CrystalGraph:
    """pos [n, 3] Cartesian, z [n], lattice [3, 3] (rows = cell vectors) -> CrystalGraph."""
    cfg = cfg or GraphConfig()
    pos, lattice = pos.double(), lattice.double()
    n, k = pos.size(0), cfg.k
    grid = torch.tensor([-1, 0, 1], dtype=torch.double)
    images = torch.cartesian_prod(grid, grid, grid) @ lattice  # [27, 3]
    vec = pos[None, :, None, :] + images[None, None] - pos[:, None, None, :]  # [n_centre, n_nbr, 27, 3]
    dist = vec.norm(dim=-1)  # [n, n, 27]
    dist[dist < 1e-8] = math.inf  # the atom itself
    order = dist.reshape(n, -1).argsort(dim=1)[:, :k]  # [n, k] nearest (neighbour, image) per centre
    centre = torch.arange(n).repeat_interleave(k)  # [E]
    flat = order.reshape(-1)
    nbr, img = flat // 27, flat % 27
    edge_vec = vec[centre, nbr, img]  # [E, 3] centre i -> image of neighbour j
    edge_index = torch.stack([nbr, centre])  # row 0 = neighbour j, row 1 = centre i

    r = edge_vec.norm(dim=-1)
    theta = torch.acos((edge_vec[:, 2] / r).clamp(-1, 1))
    phi = torch.atan2(edge_vec[:, 1], edge_vec[:, 0])
    edge_attr = torch.cat(
        [
            _rbf(r, cfg.r_min, cfg.r_max, cfg.n_rbf_r),
            _rbf(theta, 0.0, math.pi, cfg.n_rbf_theta),
            _rbf(phi, -math.pi, math.pi, cfg.n_rbf_phi),
            (r > cfg.long_bond_cutoff).double()[:, None],
        ],
        dim=1,
    )

    # Line graph: a = (k -> j) ending at atom j, b = (j -> i) leaving it.
    src, dst = edge_index
    pairs = (dst[:, None] == src[None, :]).nonzero().T  # [2, L]: (a, b) with dst[a] == src[b]
    a, b = pairs
    u, w = edge_vec[a], -edge_vec[b]  # j -> k and j -> i
    cos = (u * w).sum(-1) / (u.norm(dim=-1) * w.norm(dim=-1))
    lg_attr = _rbf(cos, -1.0, 1.0, cfg.n_rbf_angle)

    x = torch.zeros(n, N_ATOM_FEATURES)
    x[torch.arange(n), z % N_ATOM_FEATURES] = 1.0
    x[torch.arange(n), (z * 7 + 3) % N_ATOM_FEATURES] += 0.5
    if pe is None:
        pe = torch.randn(n, cfg.pe_dim, generator=torch.Generator().manual_seed(int(z.sum())))
    return CrystalGraph(
        x=x,
        z=z.long(),
        pos=pos.float(),
        edge_index=edge_index,
        edge_vec=edge_vec.float(),
        edge_attr=edge_attr.float(),
        lg_edge_index=pairs,
        lg_attr=lg_attr.float(),
        pe=pe.float(),
        num_nodes=n,
    )


def random_crystal(n_atoms: int, seed: int, cfg: GraphConfig | None = None) -> CrystalGraph:
    g = torch.Generator().manual_seed(seed)
    a = 2.6 * n_atoms ** (1 / 3) + 1.0
    lattice = torch.diag(torch.tensor([a, a * 1.1, a * 0.95])) + 0.2 * torch.rand(3, 3, generator=g)
    frac = torch.rand(n_atoms, 3, generator=g)
    z = torch.randint(1, 95, (n_atoms,), generator=g)
    return synthetic_graph(frac.double() @ lattice.double(), z, lattice, cfg=cfg)


def random_batch(sizes=(3, 5, 2), seed: int = 0, cfg: GraphConfig | None = None) -> Batch:
    return Batch.from_data_list([random_crystal(n, seed + i, cfg) for i, n in enumerate(sizes)])


def small_graph_config(k: int = 4) -> GraphConfig:
    """A narrow graph config so that tests stay fast."""
    return GraphConfig(k=k, n_rbf_r=8, n_rbf_theta=4, n_rbf_phi=4, n_rbf_angle=6, lap_pe_dim=3, rw_pe_dim=3)


# ---------------------------------------------------------------------------- sanity of the fixture
def test_synthetic_graph_contract():
    cfg = small_graph_config(k=5)
    g = random_crystal(4, seed=1, cfg=cfg)
    n, e = 4, 4 * 5
    assert g.x.shape == (n, N_ATOM_FEATURES) and g.pe.shape == (n, cfg.pe_dim)
    assert g.edge_index.shape == (2, e) and g.edge_attr.shape == (e, cfg.edge_dim)
    assert torch.equal(g.edge_index[1], torch.arange(n).repeat_interleave(5))  # k edges per centre, sorted
    assert g.lg_edge_index.size(1) == 5 * e  # L = k * E
    assert g.lg_attr.shape == (5 * e, cfg.line_dim)
    src, dst = g.edge_index
    assert torch.equal(dst[g.lg_edge_index[0]], src[g.lg_edge_index[1]])


def test_batching_offsets_line_graph():
    cfg = small_graph_config()
    g0, g1 = random_crystal(3, 0, cfg), random_crystal(2, 1, cfg)
    batch = Batch.from_data_list([g0, g1])
    e0 = g0.edge_index.size(1)
    assert torch.equal(batch.lg_edge_index[:, g0.lg_edge_index.size(1):], g1.lg_edge_index + e0)
    assert torch.equal(batch.edge_index[:, e0:], g1.edge_index + 3)
    assert batch.num_graphs == 2


@pytest.mark.parametrize("n_atoms", [1, 2])
def test_tiny_cells(n_atoms):
    g = random_crystal(n_atoms, seed=3, cfg=small_graph_config(k=12))
    assert g.edge_index.size(1) == 12 * n_atoms
