"""Random-walk return probabilities on the infinite periodic k-NN graph (`GraphConfig(pe_mode="periodic_rw")`).

A walk returns only when it is back at the same atom in the same cell image, so the encoding is exactly
invariant under supercell expansion (unlike the cell-graph random walk of `encodings`). Moves follow the
symmetrised k-NN multigraph of `encodings`: centre -> neighbour image (+s) and neighbour -> centre (-s).
"""

from __future__ import annotations

import numpy as np


def periodic_random_walk_pe(src: np.ndarray, dst: np.ndarray, shift: np.ndarray, n: int, steps: int) -> np.ndarray:
    """[n, steps] float64 return probabilities of the random walk on the infinite periodic graph.

    src, dst: [E] k-NN edge ends (neighbour, centre); shift: [E, 3] integer cell shift of the neighbour image.
    States are (cell R, atom y) with R in a box |R_x| <= h * m_x (m = largest |shift| per axis,
    h = ceil(steps / 2)), numbered cell(R) * n + y. T [states, states] is the sparse one-step transition matrix,
    with rows only for cells reachable in h - 1 steps (so every move stays in the box); cell codes are linear,
    cell(R + d) = cell(R) + offset(d), so T is built by broadcasting, already in CSR order. X_h = X_{h-1} T
    [n, states] holds P^h((s, 0) -> (y, R)) for every start atom s (scipy's sparse product expands the walks
    and sums those meeting in a state in one C pass); the meet-in-the-middle sum gives P^t for t <= steps.
    """
    from scipy import sparse

    out = np.zeros((n, steps))
    if steps == 0 or n == 0 or src.size == 0:
        return out
    shift = np.asarray(shift, dtype=np.int64)
    # Moves of the symmetrised graph: centre -> neighbour image (+s) and neighbour -> centre (-s).
    frm = np.concatenate([dst, src])  # [M]
    order = np.argsort(frm, kind="stable")
    frm = frm[order]
    to = np.concatenate([src, dst])[order]  # [M]
    dlt = np.concatenate([shift, -shift])[order]  # [M, 3]
    deg = np.bincount(frm, minlength=n)  # [n]

    half = (steps + 1) // 2
    m = np.abs(dlt).max(0)  # [3]
    span = half * m  # [3] largest |R| per axis reachable in `half` steps
    size = 2 * span + 1
    n_cells = int(np.prod(size))
    stride = np.array([size[1] * size[2], size[2], 1])  # cell(R) = (R + span) . stride
    axes = [np.arange(-span[d], span[d] + 1) for d in range(3)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)  # [n_cells, 3], row = cell code
    inner = np.all(np.abs(grid) <= (half - 1) * m, axis=1)  # [n_cells] cells whose rows T needs
    inner_codes = np.flatnonzero(inner)  # [C_in]

    # CSR rows in order (cell, atom, move): for each inner cell the sorted move list, shifted.
    indices = ((inner_codes[:, None] + (dlt @ stride)[None, :]) * n + to[None, :]).ravel()  # [C_in * M]
    data = np.tile(1.0 / deg[frm], inner_codes.size)
    counts = inner[:, None] * deg[None, :]  # [n_cells, n] moves out of each state
    indptr = np.concatenate([[0], np.cumsum(counts)])
    n_states = n_cells * n
    trans = sparse.csr_matrix((data, indices, indptr), shape=(n_states, n_states))

    origin = n_cells // 2  # the code of R = 0
    x = [sparse.csr_matrix((np.ones(n), origin * n + np.arange(n), np.arange(n + 1)), shape=(n, n_states))]
    for _ in range(half):
        x.append(x[-1] @ trans)
    inv_deg_state = np.tile(1.0 / np.maximum(deg, 1), n_cells)  # [states] 1 / deg(y)
    for t in range(1, steps + 1):
        meet = x[(t + 1) // 2].multiply(x[t // 2])  # P^a(s -> y) P^b(s -> y), [n, states]
        out[:, t - 1] = (meet @ inv_deg_state) * deg
    return out
