"""Positional encodings of atoms (paper 2.2): pe = Laplacian part [lap_pe_dim] | random-walk part [rw_pe_dim].

All parts are computed on the *symmetrised* k-NN multigraph: every directed k-NN edge (j -> i, image shift s)
is an undirected edge, so atom i in cell R is linked to atom j in cell R + s, and W = A + A^T counts the
edges between two atoms (multi-edges as weights). An edge from an atom to one of its own images is a
self-loop counted twice (it can be walked in the +s and -s directions), so deg(i) = indeg(i) + outdeg(i).

pe_mode="laplacian+rw" (the paper's PE on the cell's graph; it changes under supercell expansion):
  * Laplacian: self-loops dropped, L = D^-1/2 (D - W) D^-1/2 (isolated atoms: zero rows), dense
    `torch.linalg.eigh` in float64. Eigenvalues are grouped into eigenspaces (|gap| <= 1e-6); the trivial
    eigenspace(s) (lambda <= 1e-6) is skipped.
    - lap_pe_form="projector": per atom, the diagonal of the projector U_g U_g^T of each of the first
      lap_pe_dim eigenspaces, sum_{u in g} u_i^2. Sign- and basis-invariant, hence exactly atom-order
      invariant even with degenerate eigenvalues (symmetric crystals).
    - lap_pe_form="eigvec": the first lap_pe_dim non-trivial eigenvectors, each with its largest-|value| entry
      made positive (the paper's literal form; arbitrary within degenerate eigenspaces).
    Zero-padded when there are fewer eigenspaces/eigenvectors.
  * Random walk: return probabilities diag(P^t), t = 1..rw_pe_dim, with P = D^-1 W on the cell's multigraph
    (self-loops from own images count). Computed as diag(N^a N^b) with N = D^-1/2 W D^-1/2 symmetric,
    a = ceil(t/2), b = floor(t/2).
pe_mode="periodic_rw": the random walk on the *infinite* periodic graph: a walk returns only when it is back
  at the same atom in the same cell image. The Laplacian part is zero. Exactly invariant under supercell
  expansion. Computed in real space over (atom, integer cell shift) states with sparse frontier expansion up to
  ceil(T/2) steps and a meet-in-the-middle sum using reversibility (deg(s) P^b(s->y) = deg(y) P^b(y->s)):
      P^t((s,0) -> (s,0)) = sum_y P^a((s,0) -> y) P^b((s,0) -> y) deg(s) / deg(y).
pe_mode="none": zeros. The width lap_pe_dim + rw_pe_dim is the same in every mode.

PyG's AddLaplacianEigenvectorPE / AddRandomWalkPE are not used: the former returns random signs, no
eigenspace projectors and fails on graphs with fewer nodes than requested vectors; neither has the
symmetrised-multigraph conventions above nor a periodic variant.
"""

from __future__ import annotations

import numpy as np
import torch

from crystograph.config import GraphConfig

EIG_TOL = 1e-6


def _weights(src: torch.Tensor, dst: torch.Tensor, n: int) -> torch.Tensor:
    """W = A + A^T [n, n] float64, A[i, j] = number of k-NN edges j -> i (self-loops kept)."""
    a = torch.zeros((n, n), dtype=torch.float64)
    a.index_put_((dst, src), torch.ones(dst.numel(), dtype=torch.float64), accumulate=True)
    return a + a.T


def _inv_sqrt(deg: torch.Tensor) -> torch.Tensor:
    return torch.where(deg > 0, deg.clamp_min(1e-300).rsqrt(), torch.zeros_like(deg))


def laplacian_pe(w: torch.Tensor, dim: int, form: str = "projector") -> torch.Tensor:
    """[n, dim] float64 Laplacian PE from the symmetric weight matrix w [n, n] (its diagonal is ignored)."""
    n = w.shape[0]
    out = torch.zeros((n, dim), dtype=torch.float64)
    if dim == 0 or n == 0:
        return out
    w = w.clone()
    w.fill_diagonal_(0.0)
    deg = w.sum(1)  # [n]
    dis = _inv_sqrt(deg)
    lap = torch.diag((deg > 0).to(w.dtype)) - dis[:, None] * w * dis[None, :]  # [n, n]
    evals, evecs = torch.linalg.eigh(lap)  # ascending; evecs [n, n] columns
    nontrivial = evals > EIG_TOL
    evals, evecs = evals[nontrivial], evecs[:, nontrivial]
    if evals.numel() == 0:
        return out
    if form == "projector":
        gid = torch.cumsum(torch.cat([torch.zeros(1), (evals[1:] - evals[:-1] > EIG_TOL).double()]), 0).long()
        keep = gid < dim
        out.T.index_add_(0, gid[keep], (evecs[:, keep] ** 2).T)
    elif form == "eigvec":
        vecs = evecs[:, :dim]  # [n, <=dim]
        idx = vecs.abs().argmax(0)  # [<=dim]
        sign = torch.sign(vecs[idx, torch.arange(vecs.shape[1])])
        out[:, : vecs.shape[1]] = vecs * torch.where(sign == 0, torch.ones_like(sign), sign)
    else:
        raise ValueError(f"unknown lap_pe_form {form!r}; choose 'projector' or 'eigvec'")
    return out


def random_walk_pe(w: torch.Tensor, steps: int) -> torch.Tensor:
    """[n, steps] float64 return probabilities diag((D^-1 W)^t), t = 1..steps (rows of isolated atoms are 0)."""
    n = w.shape[0]
    out = torch.zeros((n, steps), dtype=torch.float64)
    if steps == 0 or n == 0:
        return out
    dis = _inv_sqrt(w.sum(1))
    sym = dis[:, None] * w * dis[None, :]  # N = D^-1/2 W D^-1/2, diag(N^t) = diag(P^t)
    powers = [sym]
    for _ in range(1, (steps + 1) // 2):
        powers.append(powers[-1] @ sym)
    for t in range(1, steps + 1):
        a, b = (t + 1) // 2, t // 2
        out[:, t - 1] = torch.diagonal(sym) if b == 0 else (powers[a - 1] * powers[b - 1]).sum(1)
    return out


def periodic_random_walk_pe(src: np.ndarray, dst: np.ndarray, shift: np.ndarray, n: int, steps: int) -> np.ndarray:
    """[n, steps] float64 return probabilities of the random walk on the infinite periodic graph.

    src, dst: [E] k-NN edge ends (neighbour, centre); shift: [E, 3] integer cell shift of the neighbour image.
    """
    out = np.zeros((n, steps))
    if steps == 0 or n == 0 or src.size == 0:
        return out
    shift = np.asarray(shift, dtype=np.int64)
    # Moves of the symmetrised graph: centre -> neighbour image (+s) and neighbour -> centre (-s).
    frm = np.concatenate([dst, src])
    to = np.concatenate([src, dst])
    dlt = np.concatenate([shift, -shift])  # [M, 3]
    order = np.argsort(frm, kind="stable")
    frm, to, dlt = frm[order], to[order], dlt[order]
    deg = np.bincount(frm, minlength=n).astype(np.float64)  # [n]
    mptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(deg.astype(np.int64), out=mptr[1:])
    mw = 1.0 / deg[frm]  # [M] move probabilities

    half = (steps + 1) // 2
    span = half * np.abs(dlt).max(0)  # [3] largest |R| per axis reachable in `half` steps
    size = 2 * span + 1  # [3]

    def encode(start, atom, r):
        cell = ((r[:, 0] + span[0]) * size[1] + (r[:, 1] + span[1])) * size[2] + (r[:, 2] + span[2])
        return (start * n + atom) * int(np.prod(size)) + cell

    # Frontier after h steps: (start s, atom y, cell R, probability), unique by (s, y, R), sorted by key.
    start = np.arange(n)
    atom = np.arange(n)
    cell = np.zeros((n, 3), dtype=np.int64)
    prob = np.ones(n)
    frontiers = [(encode(start, atom, cell), prob, start, atom)]
    for _ in range(half):
        cnt = deg[atom].astype(np.int64)
        rep = np.repeat(np.arange(atom.size), cnt)  # [F'] frontier entry of each expansion
        first = np.cumsum(cnt) - cnt
        mv = mptr[atom[rep]] + (np.arange(rep.size) - first[rep])  # [F'] move index
        s2, a2, r2, p2 = start[rep], to[mv], cell[rep] + dlt[mv], prob[rep] * mw[mv]
        keys, inv = np.unique(encode(s2, a2, r2), return_inverse=True)
        prob = np.bincount(inv, weights=p2, minlength=keys.size)
        first_of = np.zeros(keys.size, dtype=np.int64)
        first_of[inv] = np.arange(inv.size)
        start, atom, cell = s2[first_of], a2[first_of], r2[first_of]
        frontiers.append((keys, prob, start, atom))

    for t in range(1, steps + 1):
        ka, pa, sa, ya = frontiers[(t + 1) // 2]
        kb, pb, _, _ = frontiers[t // 2]
        _, ia, ib = np.intersect1d(ka, kb, assume_unique=True, return_indices=True)
        contrib = pa[ia] * pb[ib] * deg[sa[ia]] / deg[ya[ia]]
        out[:, t - 1] = np.bincount(sa[ia], weights=contrib, minlength=n)
    return out


def positional_encoding(
    src: torch.Tensor, dst: torch.Tensor, shift: np.ndarray | None, n: int, cfg: GraphConfig | None = None
) -> torch.Tensor:
    """pe [n, cfg.lap_pe_dim + cfg.rw_pe_dim] float32 in the mode cfg.pe_mode (see the module docstring)."""
    cfg = cfg or GraphConfig()
    lap_dim, rw_dim = cfg.lap_pe_dim, cfg.rw_pe_dim
    if cfg.pe_mode == "none":
        return torch.zeros((n, lap_dim + rw_dim), dtype=torch.float32)
    if cfg.pe_mode == "periodic_rw":
        if shift is None:
            raise ValueError("pe_mode='periodic_rw' needs the edges' cell shifts")
        rw = periodic_random_walk_pe(src.numpy(), dst.numpy(), np.asarray(shift), n, rw_dim)
        out = torch.zeros((n, lap_dim + rw_dim), dtype=torch.float32)
        out[:, lap_dim:] = torch.from_numpy(rw)
        return out
    if cfg.pe_mode != "laplacian+rw":
        raise ValueError(f"unknown pe_mode {cfg.pe_mode!r}; choose 'laplacian+rw', 'periodic_rw' or 'none'")
    w = _weights(src, dst, n)
    return torch.cat([laplacian_pe(w, lap_dim, cfg.lap_pe_form), random_walk_pe(w, rw_dim)], 1).to(torch.float32)
