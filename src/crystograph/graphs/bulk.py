"""Many structures per call: `build_graph_batch` gives exactly `build_graph`'s graphs, faster.

`build_graph` spends most of its time in the fixed cost of a few hundred numpy calls on small arrays, not in
arithmetic. Here the stages that treat every atom's candidates alike run once over the whole batch, with
atom and edge indices offset per structure (a centre's candidates never mix with another structure's):

  per structure: the site arrays and the neighbour search (`neighbors.shell_candidates`, vesin);
  on stacks of cells that share a lattice-vector search grid: the canonical frames (`frame.canonical_rotations`);
  once per batch: the k-th-shell cut, the tie-broken selection of k neighbours (`neighbors._select` sorts
      within each centre), the line graph (pairs meet at one atom), the atom features and RBF expansions
      (elementwise), and the dense positional encodings of all structures with the same atom count
      (`encodings.dense_pe`: one stacked `eigh` for both parts; cells above `encodings.SPARSE_MIN_ATOMS` and
      the periodic random walk go one by one).

Every per-centre operation sees the same candidates in the same order as in `build_graph`, so the graphs are
identical to the last bit (tests compare them on real and symmetric crystals). A structure that cannot be
built gets its `InputError` in its place in the returned list; the others are built as usual.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from crystograph.config import GraphConfig
from crystograph.errors import InputError
from crystograph.graphs import encodings as enc
from crystograph.graphs.build import CrystalGraph, _structure_arrays
from crystograph.graphs.cell import cell_for_graph
from crystograph.graphs.features import atom_feature_table, edge_features
from crystograph.graphs.frame import canonical_rotations
from crystograph.graphs.line_graph import line_graph_features, line_graph_index
from crystograph.graphs.neighbors import (
    OnIsolated,
    _closed_shells,
    _csr_ptr,
    check_frame,
    select_neighbors,
    shell_candidates,
)


def build_graph_batch(
    structures: Sequence,
    config: GraphConfig | None = None,
    *,
    sources: Sequence[str] | None = None,
    on_isolated_atoms: OnIsolated = "error",
    expand_features: bool = True,
    as_arrays: bool = False,
) -> list[CrystalGraph | dict[str, np.ndarray] | InputError]:
    """`build_graph` of every structure (same options), in order; a structure that cannot be built gives its
    `InputError` in its place. `sources` name the structures in those errors (default "structure i").
    `as_arrays`: each graph as its fields in numpy arrays (`graph_from_arrays` makes the `CrystalGraph`), the form
    in which graphs travel between processes."""
    cfg = config or GraphConfig()
    check_frame(cfg.frame)
    sources = list(sources) if sources is not None else [f"structure {i}" for i in range(len(structures))]
    results: list[CrystalGraph | InputError | None] = [None] * len(structures)
    ok, arrays, cands = [], [], []
    for index, (structure, source) in enumerate(zip(structures, sources)):
        try:
            lattice, pos, z, pbc = _structure_arrays(structure, source)
            lattice, pos, z = cell_for_graph(lattice, pos, z, pbc, cfg)
            cand = shell_candidates(pos, lattice, cfg.k, cfg.max_radius, atomic_numbers=z, periodic=pbc,
                                    on_isolated_atoms=on_isolated_atoms, source=source, closed_shells=False)
        except InputError as err:
            results[index] = err
            continue
        ok.append(index)
        arrays.append((pos, z))
        cands.append(cand)
    if ok:
        for index, fields in zip(ok, _build(arrays, cands, cfg, expand_features)):
            results[index] = fields if as_arrays else graph_from_arrays(fields)
    return results


def graph_from_arrays(fields: dict[str, np.ndarray]) -> CrystalGraph:
    """The `CrystalGraph` of `build_graph_batch(..., as_arrays=True)`'s fields (tensors share their memory)."""
    return CrystalGraph(**{key: torch.from_numpy(value) for key, value in fields.items()},
                        num_nodes=len(fields["z"]))


def arrays_of_graph(graph: CrystalGraph) -> dict[str, np.ndarray]:
    """A graph's tensor fields as numpy arrays (sharing their memory): the inverse of `graph_from_arrays`."""
    return {key: graph[key].numpy() for key in graph.keys() if torch.is_tensor(graph[key])}


def _build(arrays, cands, cfg: GraphConfig, expand_features: bool) -> list[dict[str, np.ndarray]]:
    """Graph fields of structures whose candidates are found (`cands`), all stages after the search; every array
    owns its memory."""
    n_atoms = np.array([c.n for c in cands])
    owner = np.repeat(np.arange(len(cands)), n_atoms)  # [N] structure of each atom
    atom_off = _csr_ptr(owner, len(cands))  # [B + 1]
    z_all = np.concatenate([z for _, z in arrays])  # [N]
    i, j, s, d, v = (np.concatenate(parts) for parts in zip(*(
        (c.i + atom_off[b], c.j + atom_off[b], c.s, c.d, c.v) for b, c in enumerate(cands))))
    i, j, s, d, v = _closed_shells(i, j, s, d, v, int(atom_off[-1]), cfg.k)
    cand_off = _csr_ptr(owner[i], len(cands))  # candidates stay grouped by structure

    rotations = [np.eye(3)] * len(cands)
    if cfg.frame == "canonical":
        parts = [slice(cand_off[b], cand_off[b + 1]) for b in range(len(cands))]
        rotations = canonical_rotations([c.box for c in cands], [c.periodic for c in cands], [v[p] for p in parts],
                                        [z_all[i[p]] for p in parts], [z_all[j[p]] for p in parts])
        for p, rotation in zip(parts, rotations):
            v[p] = v[p] @ rotation  # [C_b, 3] in the structure's canonical frame
    nb = select_neighbors(i, j, s, d, v, int(atom_off[-1]), cfg.k, 0.0, np.eye(3))  # [E] by global centre
    edge_off = _csr_ptr(owner[nb.centre], len(cands))
    edge_index = np.stack([nb.neighbor, nb.centre])  # [2, E] global atom indices
    lg = line_graph_index(edge_index, int(atom_off[-1])).numpy()  # [2, L] global edge indices, by b
    lg_off = np.searchsorted(lg[1], edge_off)  # line edges of structure b: lg_off[b]:lg_off[b + 1]
    edge_attr = lg_attr = None
    if expand_features:
        edge_attr = edge_features(nb.vec, cfg)  # [E, edge_dim]
        lg_attr = line_graph_features(nb.vec, lg, cfg.n_rbf_angle)  # [L, line_dim]
    local = edge_index - atom_off[owner[nb.centre]]  # [2, E] atom indices within each structure
    pes = _encodings(local, nb.shift, edge_off, n_atoms, cfg)
    table = atom_feature_table()
    vec32 = nb.vec.astype(np.float32)

    graphs = []
    for b, (pos, z) in enumerate(arrays):
        e0, e1, l0, l1 = edge_off[b], edge_off[b + 1], lg_off[b], lg_off[b + 1]
        fields = {
            "x": table[z],  # [n, atom_dim]
            "z": z,  # [n]
            "pos": (pos @ rotations[b]).astype(np.float32),  # [n, 3]
            "edge_index": local[:, e0:e1].copy(),  # [2, E_b]
            "edge_vec": vec32[e0:e1].copy(),  # [E_b, 3]
            "lg_edge_index": lg[:, l0:l1] - e0,  # [2, L_b]
            "pe": pes[b],  # [n, pe_dim]
        }
        if expand_features:
            fields["edge_attr"] = edge_attr[e0:e1].numpy().copy()  # [E_b, edge_dim]
            fields["lg_attr"] = lg_attr[l0:l1].numpy().copy()  # [L_b, line_dim]
        graphs.append(fields)
    return graphs


def _encodings(local: np.ndarray, shift: np.ndarray, edge_off: np.ndarray, n_atoms: np.ndarray,
               cfg: GraphConfig) -> list[np.ndarray]:
    """pe [n_b, pe_dim] float32 of every structure: `encodings.positional_encoding`, the dense Laplacian and
    random-walk parts stacked over structures of equal atom count."""
    out: list[np.ndarray | None] = [None] * len(n_atoms)
    stackable = cfg.pe_mode in ("laplacian+rw", "laplacian", "rw")
    groups: dict[int, list[int]] = {}
    for b, n in enumerate(n_atoms):
        if stackable and n <= enc.SPARSE_MIN_ATOMS:
            groups.setdefault(int(n), []).append(b)
        else:
            e0, e1 = edge_off[b], edge_off[b + 1]
            out[b] = enc.positional_encoding(local[0, e0:e1], local[1, e0:e1], shift[e0:e1], int(n), cfg).numpy()
    for n, members in groups.items():
        pe = enc.dense_pe(_stacked_weights(local, edge_off, members, n), cfg).astype(np.float32)  # [G, n, pe_dim]
        for g, b in enumerate(members):
            out[b] = pe[g].copy()  # its own memory (a view would keep, and a saved graph carry, the whole stack)
    return out


def _stacked_weights(local: np.ndarray, edge_off: np.ndarray, members: list[int], n: int) -> np.ndarray:
    """`encodings.stacked_weights` [G, n, n] of the structures `members` (all of n atoms)."""
    parts = [slice(edge_off[b], edge_off[b + 1]) for b in members]
    graph = np.repeat(np.arange(len(members)), [p.stop - p.start for p in parts])  # [E_G] member of each edge
    src, dst = (np.concatenate([local[r, p] for p in parts]) for r in (0, 1))
    return enc.stacked_weights(src, dst, graph, len(members), n)
