"""Structure -> `CrystalGraph` (paper 2.1-2.2; fields fixed by docs/DESIGN.md).

`build_graph` pipeline, all vectorised (no Python loop over atoms or edges):
  1. lattice, Cartesian positions and Z from the pymatgen Structure (disordered sites are rejected), reduced to
     the primitive cell when `cell="primitive"` (`cell`);
  2. exactly k nearest neighbours per atom, periodic images included (`neighbors.knn`), with displacements in
     the crystal's canonical frame (`frame`; cfg.frame="lab" keeps the file's frame);
  3. x = CGCNN one-hot atom features, edge_attr = RBF(r, theta, phi) | [r > 8 Å] (`features`);
  4. line graph of edge pairs meeting at an atom and RBF(cos bond angle) (`line_graph`);
  5. positional encodings (`encodings`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch_geometric.data import Data

from crystograph.config import GraphConfig
from crystograph.errors import InputError
from crystograph.graphs.cell import cell_for_graph
from crystograph.graphs.encodings import positional_encoding
from crystograph.graphs.features import MAX_Z, SNAP, atom_features, edge_features, gaussian_rbf
from crystograph.graphs.line_graph import line_graph_features, line_graph_index
from crystograph.graphs.neighbors import OnIsolated, knn


class CrystalGraph(Data):
    """A crystal graph plus its line graph; `lg_edge_index` indexes edges, so batching offsets it by E."""

    def __inc__(self, key: str, value: Any, *args: Any, **kwargs: Any) -> Any:
        if key == "lg_edge_index":
            return self.edge_index.size(1)
        return super().__inc__(key, value, *args, **kwargs)


def _structure_arrays(structure, source: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[bool, ...]]:
    """(lattice [3, 3], cart positions [n, 3], Z [n], pbc) of an ordered pymatgen Structure."""
    if not hasattr(structure, "lattice"):
        raise InputError(source, f"expected a periodic pymatgen Structure, got {type(structure).__name__}")
    sites = structure.sites
    if len(sites) == 0:
        raise InputError(source, "the structure has no atoms")
    try:  # one pass: Site.specie raises AttributeError on a disordered site
        z = np.fromiter((s.specie.Z for s in sites), dtype=np.int64, count=len(sites))
    except AttributeError:
        bad = next((i for i, s in enumerate(sites) if not s.is_ordered), None)
        if bad is None:
            raise
        raise InputError(
            source,
            f"site {bad} is disordered (partial occupancy {sites[bad].species}); order the structure first "
            "(e.g. pymatgen OrderDisorderedStructureTransformation)",
        ) from None
    bad = np.flatnonzero((z < 1) | (z > MAX_Z))
    if bad.size:
        i = int(bad[0])
        raise InputError(source, f"site {i} has species {sites[i].specie} (supported elements: Z = 1..{MAX_Z})")
    lattice = structure.lattice
    pbc = tuple(bool(p) for p in getattr(lattice, "pbc", (True, True, True)))
    return np.asarray(lattice.matrix, dtype=np.float64), np.asarray(structure.cart_coords), z, pbc


def build_graph(
    structure,
    config: GraphConfig | None = None,
    *,
    source: str = "structure",
    on_isolated_atoms: OnIsolated = "error",
    expand_features: bool = True,
) -> CrystalGraph:
    """Build the CrysToGraph input graph of an ordered pymatgen `Structure`.

    Raises `InputError(source, reason)` for a non-periodic input (e.g. a Molecule), an empty structure,
    disordered (partially occupied) sites, elements outside Z = 1..100 (also dummy species), a degenerate
    lattice, and (with on_isolated_atoms="error") atoms with fewer than k neighbours within `config.max_radius`.
    Fields: x [n, 92], z [n] long, pos [n, 3], edge_index [2, E] long (row 0 neighbour, row 1 centre; k per
    centre, by centre then distance), edge_vec [E, 3] (centre -> neighbour image), edge_attr [E, edge_dim],
    lg_edge_index [2, L] long, lg_attr [L, line_dim], pe [n, pe_dim]; floats are float32. Periodic images are
    searched along the lattice directions where `structure.lattice.pbc` is True (all three for ordinary crystals).

    `expand_features=False` leaves out `edge_attr` and `lg_attr` (the RBF expansions, ~80 % of a graph's
    memory): datasets and the graph cache store such compact graphs, and `add_edge_features` (called by the
    model when they are missing) expands them batch by batch, identically. `graphs.bulk.build_graph_batch`
    builds many structures per call, with identical results.
    """
    cfg = config or GraphConfig()
    lattice, pos, z, pbc = _structure_arrays(structure, source)
    lattice, pos, z = cell_for_graph(lattice, pos, z, pbc, cfg)  # the primitive cell when cfg.cell asks for it
    x = atom_features(z, source)  # [n, 92]; checks Z first
    nb = knn(
        pos,
        lattice,
        cfg.k,
        cfg.max_radius,
        atomic_numbers=z,
        periodic=pbc,
        on_isolated_atoms=on_isolated_atoms,
        source=source,
        frame=cfg.frame,
    )
    n = z.size
    edge_index = np.stack([nb.neighbor, nb.centre])  # [2, E] row 0 neighbour (source), row 1 centre (target)
    lg_index = line_graph_index(edge_index, n)  # [2, L]
    graph = CrystalGraph(
        x=torch.from_numpy(x),  # fancy-indexed copy of the read-only table
        z=torch.from_numpy(z),
        pos=torch.from_numpy((pos @ nb.rotation).astype(np.float32)),  # [n, 3] in the frame of edge_vec
        edge_index=torch.from_numpy(edge_index),
        edge_vec=torch.from_numpy(nb.vec.astype(np.float32)),  # [E, 3] centre -> neighbour image
        lg_edge_index=lg_index,
        pe=positional_encoding(nb.neighbor, nb.centre, nb.shift, n, cfg),
        num_nodes=n,
    )
    if expand_features:
        graph.edge_attr = edge_features(nb.vec, cfg)  # [E, edge_dim]
        graph.lg_attr = line_graph_features(nb.vec, lg_index, cfg.n_rbf_angle)  # [L, line_dim]
    return graph


def add_edge_features(data: Data, config: GraphConfig | None = None) -> Data:
    """Fill in `edge_attr` and `lg_attr` of a compact graph or batch (see `build_graph`) from `edge_vec`
    and `lg_edge_index`; a no-op when they are present. On the CPU this is the builder's own numpy code;
    on an accelerator the same formulas run in torch on the device (no host round trip)."""
    cfg = config or GraphConfig()
    vec = data.edge_vec  # [E, 3]
    on_cpu = vec.device.type == "cpu"
    lg = getattr(data, "lg_edge_index", None)
    if getattr(data, "edge_attr", None) is None:
        data.edge_attr = edge_features(vec, cfg) if on_cpu else _edge_features_torch(vec, cfg)  # [E, edge_dim]
    if getattr(data, "lg_attr", None) is None and lg is not None:
        data.lg_attr = (line_graph_features(vec, lg, cfg.n_rbf_angle) if on_cpu
                        else _line_features_torch(vec, lg, cfg.n_rbf_angle))  # [L, line_dim]
    return data


def _work_dtype(t: torch.Tensor) -> torch.dtype:
    return torch.float32 if t.device.type == "mps" else torch.float64  # MPS has no float64


def _edge_features_torch(edge_vec: torch.Tensor, cfg: GraphConfig) -> torch.Tensor:
    """Torch twin of `features.edge_features` (same snapping of tiny components before the angles)."""
    v = edge_vec.to(_work_dtype(edge_vec))
    v = torch.where(v.abs() < SNAP, torch.zeros_like(v), v)  # [E, 3]
    r = torch.linalg.vector_norm(v, dim=-1)  # [E]
    cos_t = torch.where(r > 0, v[:, 2] / r.clamp_min(1e-30), torch.ones_like(r))
    theta = torch.arccos(cos_t.clamp(-1.0, 1.0))
    phi = torch.atan2(v[:, 1], v[:, 0])
    parts = [gaussian_rbf(r, cfg.r_min, cfg.r_max, cfg.n_rbf_r), gaussian_rbf(theta, 0.0, math.pi, cfg.n_rbf_theta),
             gaussian_rbf(phi, -math.pi, math.pi, cfg.n_rbf_phi), (r > cfg.long_bond_cutoff).unsqueeze(-1).to(v.dtype)]
    return torch.cat(parts, dim=-1).float()  # [E, edge_dim]


def _line_features_torch(edge_vec: torch.Tensor, lg_edge_index: torch.Tensor, n_rbf: int) -> torch.Tensor:
    """Torch twin of `line_graph.line_graph_features`: RBF of cos(angle at j between j->k and j->i)."""
    v = edge_vec.to(_work_dtype(edge_vec))
    unit = v / torch.linalg.vector_norm(v, dim=-1, keepdim=True).clamp_min(1e-12)  # [E, 3]
    cos = -(unit[lg_edge_index[0]] * unit[lg_edge_index[1]]).sum(-1).clamp(-1.0, 1.0)  # [L]
    return gaussian_rbf(cos, -1.0, 1.0, n_rbf).float()  # [L, n_rbf]


def graph_summary(graph: Data) -> dict[str, float | int]:
    """Sizes and neighbour-distance range of a graph (for logs and `crystograph graph` style reports)."""
    dist = torch.linalg.vector_norm(graph.edge_vec.to(torch.float64), dim=-1)
    return {
        "atoms": int(graph.num_nodes),
        "edges": int(graph.edge_index.size(1)),
        "line_edges": int(graph.lg_edge_index.size(1)),
        "nearest_neighbor_distance": float(dist.min()) if dist.numel() else float("nan"),
        "farthest_neighbor_distance": float(dist.max()) if dist.numel() else float("nan"),
    }
