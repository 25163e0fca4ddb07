"""Line graph over the directed crystal-graph edges (paper 2.1.3).

Crystal-graph edge e = (src[e] -> dst[e]) goes from neighbour src to centre dst, and edge_vec[e] points from
the centre dst[e] to the periodic image of src[e]. The line graph has one node per crystal edge and one
directed line edge (a -> b) for every pair of crystal edges meeting at an atom j:

    a = (k -> j),  b = (j -> i),  i.e.  dst[a] == src[b] == j.

All such pairs are included, also the "backtracking" pair where a's neighbour image k is the very image of i
that b points to (then the bond angle is 0 and cos = 1); and pairs with k = i in a different image.
The count is L = sum_j indeg(j) * outdeg(j) = sum_b indeg(src[b]); with exactly k in-edges per atom, L = k * E.

Line edges are ordered by b (the line-graph target), then by a. Built with CSR pointer arithmetic, no loops:
edges must be sorted by dst (the centre), as `neighbors.knn` returns them.

lg_attr: RBF of cos(angle at j between j->k and j->i) where j->k = edge_vec[a] (centre j of a to the image
of k) and j->i = -edge_vec[b] (b's vector points from i to j's image; reversed, from j to i).
"""

from __future__ import annotations

import numpy as np
import torch

from crystograph.graphs.features import gaussian_rbf


def _np(x) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def line_graph_index(edge_index, num_nodes: int) -> torch.Tensor:
    """[2, L] long: row 0 = edge a = (k -> j), row 1 = edge b = (j -> i), for all pairs with dst[a] == src[b].

    edge_index: [2, E] (row 0 = source, row 1 = target), sorted by target; torch or numpy.
    """
    ei = _np(edge_index).astype(np.int64, copy=False)
    src, dst = ei[0], ei[1]  # [E], [E]
    n_edges = src.size
    if n_edges == 0:
        return torch.zeros((2, 0), dtype=torch.long)
    if np.any(dst[1:] < dst[:-1]):
        raise ValueError("line_graph_index needs edges sorted by target (row 1)")
    indeg = np.bincount(dst, minlength=num_nodes)  # [n]
    ptr = np.zeros(num_nodes + 1, dtype=np.int64)
    np.cumsum(indeg, out=ptr[1:])  # in-edges of j are ptr[j]:ptr[j+1]
    first = ptr[src]  # [E] first a of each b
    if indeg.min() == indeg.max():  # every atom k in-edges (the kNN graph): L = E * k in an [E, k] grid
        k = int(indeg[0])
        out = np.empty((2, n_edges, k), dtype=np.int64)  # [2, E, k]
        np.add(first[:, None], np.arange(k), out=out[0])
        out[1] = np.arange(n_edges)[:, None]
        return torch.from_numpy(out.reshape(2, n_edges * k))
    per_b = indeg[src]  # [E] number of a's for each b
    b = np.repeat(np.arange(n_edges), per_b)  # [L]
    start = np.cumsum(per_b) - per_b  # [E] first line edge of each b
    a = np.arange(b.size) + np.repeat(first - start, per_b)  # [L] first[b] + position of the pair within b
    return torch.from_numpy(np.stack([a, b]))


def bond_angle_cos(edge_vec, lg_edge_index) -> torch.Tensor:
    """[L] float64 cos of the angle at j between j->k (edge_vec[a]) and j->i (-edge_vec[b])."""
    vec = _np(edge_vec).astype(np.float64, copy=False)
    lg = _np(lg_edge_index)
    norm = np.sqrt(np.einsum("ij,ij->i", vec, vec))  # [E]
    unit = vec / np.maximum(norm, 1e-12)[:, None]  # [E, 3]
    cos = -np.einsum("ij,ij->i", unit[lg[0]], unit[lg[1]])  # [L]
    return torch.from_numpy(np.clip(cos, -1.0, 1.0))


def line_graph_features(edge_vec, lg_edge_index, n_rbf: int) -> torch.Tensor:
    """lg_attr [L, n_rbf] float32: Gaussian RBF of the bond-angle cosine on [-1, 1]."""
    cos = bond_angle_cos(edge_vec, lg_edge_index).numpy()
    return torch.from_numpy(gaussian_rbf(cos, -1.0, 1.0, n_rbf))
