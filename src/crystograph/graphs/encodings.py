"""Positional encodings of atoms (paper 2.2): pe = Laplacian part [lap_pe_dim] | random-walk part [rw_pe_dim].

All parts are computed on the *symmetrised* k-NN multigraph: every directed k-NN edge (j -> i, image shift s)
is an undirected edge, so atom i in cell R is linked to atom j in cell R + s, and W = A + A^T counts the
edges between two atoms (multi-edges as weights). An edge from an atom to one of its own images is a
self-loop counted twice (it can be walked in the +s and -s directions), so deg(i) = indeg(i) + outdeg(i).

pe_mode="laplacian+rw" (the paper's PE on the cell's graph; it changes under supercell expansion):
  * Laplacian: self-loops dropped, L = D^-1/2 (D - W) D^-1/2 (isolated atoms: zero rows), in float64.
    Eigenvalues are grouped into eigenspaces (|gap| <= 1e-6); the trivial eigenspace(s) (lambda <= 1e-6) is
    skipped. Cells of n <= SPARSE_MIN_ATOMS atoms: dense `np.linalg.eigh` of all n eigenpairs. Larger cells:
    only the few smallest eigenpairs, from the sparse L (see `_sparse_smallest_eigs`), with a dense fallback.
    - lap_pe_form="projector": per atom, the diagonal of the projector U_g U_g^T of each of the first
      lap_pe_dim eigenspaces, sum_{u in g} u_i^2. Sign- and basis-invariant, hence exactly atom-order
      invariant even with degenerate eigenvalues (symmetric crystals).
    - lap_pe_form="eigvec": the first lap_pe_dim non-trivial eigenvectors, each with its largest-|value| entry
      made positive (the paper's literal form; arbitrary within degenerate eigenspaces).
    Zero-padded when there are fewer eigenspaces/eigenvectors.
  * Random walk: return probabilities diag(P^t), t = 1..rw_pe_dim, with P = D^-1 W on the cell's multigraph
    (self-loops from own images count). Computed as diag(N^a N^b) with N = D^-1/2 W D^-1/2 symmetric,
    a = ceil(t/2), b = floor(t/2): sparse products for n > SPARSE_MIN_ATOMS; dense matrix powers for smaller
    cells whose W has self-loops. Smaller cells without self-loops (most of them: N = I - L on atoms with
    edges) take it from the Laplacian's eigenpairs, diag(N^t)_i = sum_k (1 - lambda_k)^t U_ik^2 (`dense_pe`).
    All routes give the same numbers up to float round-off (~1e-15).
pe_mode="periodic_rw" (`periodic_walk`): the random walk on the *infinite* periodic graph: a walk returns only
  when it is back at the same atom in the same cell image. The Laplacian part is zero. Exactly invariant under supercell
  expansion. Computed in real space over (integer cell shift, atom) states with sparse transition-matrix
  products up to ceil(T/2) steps and a meet-in-the-middle sum using reversibility
  (deg(s) P^b(s->y) = deg(y) P^b(y->s)):
      P^t((s,0) -> (s,0)) = sum_y P^a((s,0) -> y) P^b((s,0) -> y) deg(s) / deg(y).
pe_mode="laplacian" / "rw": only the Laplacian / only the random-walk part of "laplacian+rw", the other part
  zero (the paper's PE ablation, Fig. A9).
pe_mode="none": zeros. The width lap_pe_dim + rw_pe_dim is the same in every mode.

PyG's AddLaplacianEigenvectorPE / AddRandomWalkPE are not used: the former returns random signs, no
eigenspace projectors and fails on graphs with fewer nodes than requested vectors; neither has the
symmetrised-multigraph conventions above nor a periodic variant.
"""

from __future__ import annotations

import numpy as np
import torch

from crystograph.config import GraphConfig
from crystograph.errors import ConfigError
from crystograph.graphs.periodic_walk import periodic_random_walk_pe

EIG_TOL = 1e-6
# Cells with more atoms than this take the sparse paths (a few eigenpairs of the sparse Laplacian, sparse
# random-walk products); smaller cells keep the dense ones, which are faster there and whose outputs are
# the reference. Measured (benchmarks/scaling.py, rocksalt supercells = the sparse solver's worst case):
# n = 512 dense PE ~0.06 s; n = 1,000 dense 0.41 s vs sparse 0.40 s; n = 1,728 dense 2.6 s vs sparse 1.0 s.
SPARSE_MIN_ATOMS = 512
# The sparse eigensolver falls back to dense eigh when it would need more than this fraction of all eigenpairs.
SPARSE_MAX_EIG_FRACTION = 0.2
MAX_MISSES = 2  # retries (with doubled k) when the Sylvester count shows that ARPACK missed an eigenvalue


def _weights(src: np.ndarray, dst: np.ndarray, n: int) -> np.ndarray:
    """W = A + A^T [n, n] float64, A[i, j] = number of k-NN edges j -> i (self-loops kept)."""
    return stacked_weights(src, dst, np.zeros(len(src), dtype=np.int64), 1, n)[0]


def stacked_weights(src: np.ndarray, dst: np.ndarray, graph: np.ndarray, g_count: int, n: int) -> np.ndarray:
    """`_weights` [G, n, n] of G graphs of n atoms each, in one bincount: edge e (src, dst [E], atom indices
    within its graph) belongs to graph `graph[e]` (0..G-1)."""
    flat = (np.asarray(graph) * n + np.asarray(dst)) * n + np.asarray(src)  # [E] slot in the [G, n, n] stack
    a = np.bincount(flat, minlength=g_count * n * n).reshape(g_count, n, n).astype(np.float64)
    return a + a.transpose(0, 2, 1)


def _sparse_weights(src: np.ndarray, dst: np.ndarray, n: int):
    """The same W as `_weights`, as a scipy.sparse CSR matrix (duplicate edges summed)."""
    from scipy import sparse

    src, dst = np.asarray(src, dtype=np.int64), np.asarray(dst, dtype=np.int64)
    a = sparse.csr_matrix((np.ones(src.size), (dst, src)), shape=(n, n))
    w = (a + a.T).tocsr()
    w.sum_duplicates()
    return w


def _inv_sqrt(deg: np.ndarray) -> np.ndarray:
    out = np.zeros_like(deg)
    np.divide(1.0, np.sqrt(deg), out=out, where=deg > 0)
    return out


def _is_sparse(w) -> bool:
    from scipy import sparse

    return sparse.issparse(w)


def _dense(w) -> np.ndarray:
    return w.toarray() if _is_sparse(w) else np.asarray(w, dtype=np.float64)


def _sparse_laplacian(w):
    """Sparse CSR L = D^-1/2 (D - W) D^-1/2 with W's diagonal (self-loops) dropped; isolated atoms: zero rows."""
    from scipy import sparse

    w = sparse.csr_matrix(w, dtype=np.float64, copy=True)
    w.setdiag(0.0)
    w.eliminate_zeros()
    deg = np.asarray(w.sum(1)).ravel()
    dis = _inv_sqrt(deg)
    norm = sparse.diags(dis) @ w @ sparse.diags(dis)
    return (sparse.diags((deg > 0).astype(np.float64)) - norm).tocsr()


def _count_below(lap, tau: float) -> int:
    """Number of eigenvalues of the symmetric sparse `lap` below tau (Sylvester's law of inertia).

    LU of lap - tau I with symmetric ordering (SuperLU SymmetricMode, diagonal pivots), i.e. P (L - tau) P^T =
    L' D L'^T, so the count is the number of negative pivots in U's diagonal.
    """
    from scipy import sparse
    from scipy.sparse.linalg import splu

    n = lap.shape[0]
    lu = splu((lap - tau * sparse.identity(n, format="csc")).tocsc(), permc_spec="MMD_AT_PLUS_A",
              diag_pivot_thresh=0.0, options=dict(SymmetricMode=True))
    if not np.array_equal(lu.perm_r, lu.perm_c):  # off-diagonal pivoting happened: no inertia
        return -1
    return int((lu.U.diagonal() < 0).sum())


def _sparse_smallest_eigs(w, dim: int, form: str):
    """(evals ascending, evecs [n, m]) of the non-trivial eigenpairs needed by `laplacian_pe`, or None.

    Solver: ARPACK Lanczos (`scipy.sparse.linalg.eigsh`, which='SA') using only products L @ v. Not
    shift-invert (sigma): the k-NN graph of a 3-D periodic cell is a 3-D mesh whose LU has large fill-in
    (2.3 M non-zeros for 2,744 atoms, vs 52 k in L), so one solve costs as much as ~50 products and
    shift-invert was 2.5x slower in our measurements; L's spectrum lies in [0, 2] and the wanted eigenvalues
    are its smallest, so 'SA' converges in about a thousand products even for 100+ eigenpairs. The start
    vector is fixed (seeded), so results are reproducible.

    The trivial eigenvectors are known and deflated, since a single-vector Krylov method can miss copies of a
    repeated eigenvalue (it did for 12 zero eigenvalues): isolated atoms (zero rows) are dropped, and each
    connected component's D^1/2 1 is shifted to eigenvalue 3 (above the spectrum) by the operator
    L + 3 U U^T, U the normalised D^1/2 1 of each component (one sparse column per component).

    "projector" needs the *complete* first `dim` non-trivial eigenspaces ("eigvec": those holding the first `dim`
    eigenvectors, so that they are the `dim` smallest): k eigenpairs are requested, and the result is accepted only
    when an eigenvalue of a later eigenspace was also returned (so the last used one is complete unless ARPACK
    missed copies of a repeated eigenvalue) and Sylvester's inertia count of L - tau I, tau between the last used
    and the next eigenspace, equals the number of eigenvalues returned below tau plus the number of components
    (which rules that out; it caught one missed copy in a 2x2x2 supercell of a MOF, 3,072 atoms, k = 20, where k =
    40 found all). Otherwise k is increased: from the multiplicities seen so far, or doubled after a missed copy.
    None (the caller falls back to dense eigh) when eigsh does not converge, the count disagrees more than
    MAX_MISSES times, or k would exceed SPARSE_MAX_EIG_FRACTION of the atoms.
    """
    from scipy import sparse
    from scipy.sparse.csgraph import connected_components
    from scipy.sparse.linalg import ArpackError, ArpackNoConvergence, LinearOperator, eigsh

    lap = _sparse_laplacian(w)
    n = lap.shape[0]
    active = np.flatnonzero(lap.diagonal() > 0)  # atoms with edges to other atoms
    lap = lap[active][:, active].tocsr()
    n_act = active.size
    n_comp, comp = connected_components(lap, directed=False)
    root_deg = np.sqrt(np.asarray(_loopless_degrees(w, active)))  # D^1/2 on the active atoms
    norms = np.sqrt(np.bincount(comp, weights=root_deg**2, minlength=n_comp))
    u = sparse.csr_matrix((root_deg / norms[comp], (np.arange(n_act), comp)), shape=(n_act, n_comp))
    ut = u.T.tocsr()
    op = LinearOperator((n_act, n_act), matvec=lambda v: lap @ v + 3.0 * (u @ (ut @ v)), dtype=np.float64)

    k = 2 * dim + 4 if form == "projector" else dim + 2
    v0 = np.random.default_rng(0).standard_normal(n_act)
    misses = 0
    while k <= SPARSE_MAX_EIG_FRACTION * n_act and k < n_act - 1:
        try:
            evals, vecs = eigsh(op, k, which="SA", v0=v0)
        except (ArpackNoConvergence, ArpackError):
            return None
        order = np.argsort(evals)
        keep = order[evals[order] > EIG_TOL]  # the dense path's filter (drops near-zero non-trivial ones too)
        ev = evals[keep]
        evecs = np.zeros((n, keep.size))
        evecs[active] = vecs[:, keep]
        gid = np.concatenate([[0], np.cumsum(np.diff(ev) > EIG_TOL)]) if ev.size else np.zeros(0, dtype=int)
        # the last eigenspace used: eigvec: the one holding the dim-th eigenvector, projector: the dim-th
        need = (gid[dim - 1] if ev.size >= dim else None) if form == "eigvec" else dim - 1
        if need is not None and ev.size and gid[-1] > need:  # a later eigenspace was reached: 0..need complete
            last = np.flatnonzero(gid == need)[-1]  # last eigenvalue of the last used eigenspace
            tau = 0.5 * (ev[last] + ev[last + 1])
            if _count_below(lap, tau) == int((evals < tau).sum()) + n_comp:
                return ev, evecs
            misses += 1  # ARPACK missed a copy of a repeated eigenvalue: retry with a larger Krylov space
            if misses > MAX_MISSES:
                return None
            k = 2 * k
            continue
        complete = max(int(gid[-1]) if ev.size else 0, 1)  # eigenspaces surely complete so far (all but the last)
        per_space = max(ev.size, 1) / complete
        k = max(2 * k, int(np.ceil(per_space * (dim + 1) * 1.25)) + 2)
    return None


def _loopless_degrees(w, active: np.ndarray) -> np.ndarray:
    """Degrees without self-loops of the `active` atoms, from the sparse W."""
    from scipy import sparse

    w = sparse.csr_matrix(w, dtype=np.float64)
    return (np.asarray(w.sum(1)).ravel() - w.diagonal())[active]


def check_lap_pe_form(form: str) -> None:
    if form not in ("projector", "eigvec"):
        raise ConfigError(f"unknown lap_pe_form {form!r}; choose 'projector' or 'eigvec'")


def laplacian_pe(w, dim: int, form: str = "projector") -> np.ndarray:
    """[n, dim] float64 Laplacian PE from the symmetric weight matrix w [n, n] (its diagonal is ignored).

    w: dense numpy or scipy.sparse. n <= SPARSE_MIN_ATOMS: dense eigh; above: `_sparse_smallest_eigs`
    (falls back to dense eigh if it cannot certify its result).
    """
    check_lap_pe_form(form)
    n = w.shape[0]
    out = np.zeros((n, dim))
    if dim == 0 or n == 0:
        return out
    eigs = _sparse_smallest_eigs(w, dim, form) if n > SPARSE_MIN_ATOMS else None
    if eigs is None:
        evals, evecs = np.linalg.eigh(dense_laplacian(_dense(w)))  # ascending; evecs [n, n] columns
    else:
        evals, evecs = eigs
    return laplacian_pe_from_eigs(evals, evecs, dim, form)


def dense_laplacian(w: np.ndarray) -> np.ndarray:
    """L = D^-1/2 (D - W) D^-1/2 [..., n, n] of dense weights w [..., n, n] (a stack is fine), W's diagonal
    (self-loops) dropped, isolated atoms zero rows."""
    n = w.shape[-1]
    diag = np.arange(n)
    w = w.copy()
    w[..., diag, diag] = 0.0
    deg = w.sum(-1)  # [..., n]
    dis = _inv_sqrt(deg)
    lap = -(dis[..., :, None] * w * dis[..., None, :])  # [..., n, n]
    lap[..., diag, diag] += deg > 0
    return lap


def laplacian_pe_from_eigs(evals: np.ndarray, evecs: np.ndarray, dim: int, form: str) -> np.ndarray:
    """[n, dim] Laplacian PE from all (or the smallest) eigenpairs of L, ascending: the trivial ones
    (eigenvalue <= EIG_TOL) are dropped here."""
    out = np.zeros((evecs.shape[0], dim))
    nontrivial = evals > EIG_TOL
    evals, evecs = evals[nontrivial], evecs[:, nontrivial]
    if evals.size == 0:
        return out
    if form == "projector":
        gid = np.concatenate([[0], np.cumsum(np.diff(evals) > EIG_TOL)])  # eigenspace of each eigenvector
        member = gid[:, None] == np.arange(dim)[None, :]  # [n_eig, dim] eigenvector -> eigenspace indicator
        out = np.square(evecs) @ member  # [n, dim] diagonals of the eigenspace projectors
    else:
        vecs = evecs[:, :dim]  # [n, <=dim]
        cols = np.arange(vecs.shape[1])
        sign = np.sign(vecs[np.abs(vecs).argmax(0), cols])
        out[:, cols] = vecs * np.where(sign == 0, 1.0, sign)
    return out


def dense_pe(weights: np.ndarray, cfg: GraphConfig) -> np.ndarray:
    """pe [G, n, lap_pe_dim + rw_pe_dim] float64 of a stack of dense weights [G, n, n] (n <= SPARSE_MIN_ATOMS),
    pe_mode "laplacian+rw", "laplacian" or "rw": one stacked `eigh` of the Laplacians serves both parts.

    Random walk without self-loops: N = D^-1/2 W D^-1/2 = A - L (A = diag(deg > 0)), and A commutes with the
    block-diagonal L, so diag(N^t)_i = [deg_i > 0] sum_k (1 - lambda_k)^t U_ik^2: a function of L, whatever
    basis eigh picks within a degenerate eigenspace. Structures whose W has self-loops (an atom linked to its
    own image) take the matrix powers of `dense_random_walk_pe`.
    """
    check_lap_pe_form(cfg.lap_pe_form)
    lap_dim, rw_dim = cfg.lap_pe_dim, cfg.rw_pe_dim
    g_count, n = weights.shape[:2]
    pe = np.zeros((g_count, n, lap_dim + rw_dim))
    evals, evecs = np.linalg.eigh(dense_laplacian(weights))  # [G, n], [G, n, n] ascending
    sq = np.square(evecs)  # [G, n, n] U_ik^2
    if cfg.pe_mode != "rw" and lap_dim:
        if cfg.lap_pe_form == "projector":
            pe[..., :lap_dim] = sq @ _eigenspace_members(evals, lap_dim)
        else:
            for g in range(g_count):
                pe[g, :, :lap_dim] = laplacian_pe_from_eigs(evals[g], evecs[g], lap_dim, cfg.lap_pe_form)
    if cfg.pe_mode != "laplacian" and rw_dim:
        diag = np.arange(n)
        loops = (weights[:, diag, diag] > 0).any(1)  # [G]
        active = (weights.sum(-1) - weights[:, diag, diag]) > 0  # [G, n] deg > 0
        free = ~loops
        decay = (1.0 - evals[free])[..., None] ** np.arange(1, rw_dim + 1)  # [G', n, rw_dim] (1 - lambda_k)^t
        pe[free, :, lap_dim:] = (sq[free] @ decay) * active[free, :, None]
        if loops.any():
            pe[loops, :, lap_dim:] = dense_random_walk_pe(weights[loops], rw_dim)
    return pe


def _eigenspace_members(evals: np.ndarray, dim: int) -> np.ndarray:
    """[G, n, dim] float: 1 where eigenvector k (ascending evals [G, n]) belongs to the d-th non-trivial
    eigenspace (eigenvalues > EIG_TOL, grouped where consecutive gaps are <= EIG_TOL)."""
    nontrivial = evals > EIG_TOL  # [G, n], the trivial ones come first
    jumps = np.zeros(evals.shape, dtype=np.int64)
    jumps[:, 1:] = np.cumsum(np.diff(evals, axis=-1) > EIG_TOL, axis=-1)  # [G, n]
    first = np.minimum((~nontrivial).sum(-1), evals.shape[-1] - 1)  # [G] first non-trivial position
    gid = jumps - np.take_along_axis(jumps, first[:, None], -1)  # [G, n] eigenspace index of each eigenvector
    return (nontrivial[..., None] & (gid[..., None] == np.arange(dim))).astype(np.float64)


def random_walk_pe(w, steps: int) -> np.ndarray:
    """[n, steps] float64 return probabilities diag((D^-1 W)^t), t = 1..steps (rows of isolated atoms are 0).

    w: dense numpy or scipy.sparse [n, n]. n <= SPARSE_MIN_ATOMS: dense matrix powers; above: sparse products.
    """
    n = w.shape[0]
    out = np.zeros((n, steps))
    if steps == 0 or n == 0:
        return out
    if n > SPARSE_MIN_ATOMS:
        return _sparse_random_walk_pe(w, steps)
    return dense_random_walk_pe(_dense(w), steps)


def dense_random_walk_pe(w: np.ndarray, steps: int) -> np.ndarray:
    """[..., n, steps] return probabilities of dense weights w [..., n, n] (a stack is fine), self-loops kept."""
    n = w.shape[-1]
    dis = _inv_sqrt(w.sum(-1))  # [..., n]
    sym = dis[..., :, None] * w * dis[..., None, :]  # N = D^-1/2 W D^-1/2, diag(N^t) = diag(P^t)
    powers = [np.broadcast_to(np.eye(n), sym.shape), sym]  # N^0, N^1, ..., N^ceil(steps/2)
    for _ in range(1, (steps + 1) // 2):
        powers.append(powers[-1] @ sym)
    powers = np.stack(powers, axis=-3)  # [..., h + 1, n, n]
    t = np.arange(1, steps + 1)
    # diag(N^a N^b) = row sums of N^a * N^b (N symmetric), a = ceil(t/2), b = floor(t/2)
    return np.einsum("...tij,...tij->...it", powers[..., (t + 1) // 2, :, :], powers[..., t // 2, :, :])


def _sparse_random_walk_pe(w, steps: int) -> np.ndarray:
    """`random_walk_pe` by sparse products: N^a (a <= ceil(steps/2)) as CSR, diag(N^a N^b) = row sums of N^a * N^b."""
    from scipy import sparse

    w = sparse.csr_matrix(w, dtype=np.float64)
    n = w.shape[0]
    dis = sparse.diags(_inv_sqrt(np.asarray(w.sum(1)).ravel()))
    sym = (dis @ w @ dis).tocsr()  # N
    powers = [sparse.identity(n, format="csr"), sym]
    for _ in range(1, (steps + 1) // 2):
        powers.append((powers[-1] @ sym).tocsr())
    out = np.zeros((n, steps))
    for t in range(1, steps + 1):
        a, b = (t + 1) // 2, t // 2
        out[:, t - 1] = np.asarray(powers[a].multiply(powers[b]).sum(1)).ravel()
    return out


def positional_encoding(src, dst, shift: np.ndarray | None, n: int, cfg: GraphConfig | None = None) -> torch.Tensor:
    """pe [n, cfg.lap_pe_dim + cfg.rw_pe_dim] float32 in the mode cfg.pe_mode (see the module docstring).

    src, dst: [E] k-NN edge ends (neighbour, centre), numpy or torch; shift: [E, 3] cell shifts (periodic_rw).
    """
    cfg = cfg or GraphConfig()
    lap_dim, rw_dim = cfg.lap_pe_dim, cfg.rw_pe_dim
    src, dst = (np.asarray(x.cpu() if isinstance(x, torch.Tensor) else x, dtype=np.int64) for x in (src, dst))
    out = np.zeros((n, lap_dim + rw_dim), dtype=np.float32)
    if cfg.pe_mode == "none":
        pass
    elif cfg.pe_mode == "periodic_rw":
        if shift is None:
            raise ValueError("pe_mode='periodic_rw' needs the edges' cell shifts")
        out[:, lap_dim:] = periodic_random_walk_pe(src, dst, np.asarray(shift), n, rw_dim)
    elif cfg.pe_mode in ("laplacian+rw", "laplacian", "rw"):
        if 0 < n <= SPARSE_MIN_ATOMS:  # dense: no scipy overhead
            out[:] = dense_pe(_weights(src, dst, n)[None], cfg)[0]
        else:
            w = _sparse_weights(src, dst, n)
            if cfg.pe_mode != "rw":
                out[:, :lap_dim] = laplacian_pe(w, lap_dim, cfg.lap_pe_form)
            if cfg.pe_mode != "laplacian":
                out[:, lap_dim:] = random_walk_pe(w, rw_dim)
    else:
        raise ConfigError(f"unknown pe_mode {cfg.pe_mode!r}; choose 'laplacian+rw', 'laplacian', 'rw', "
                          "'periodic_rw' or 'none'")
    return torch.from_numpy(out)
