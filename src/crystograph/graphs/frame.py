"""The crystal's own Cartesian frame, in which the edge angles θ and φ are measured (paper 2.1.2).

The paper measures θ, φ of each displacement in the frame the file happens to be written in, so the same
crystal written in another orientation or with another (equivalent) choice of cell vectors gets other edge
features. `frame="canonical"` (the default) measures them in a frame defined by the crystal itself:

1. **Candidate frames from the lattice.** Let λ1 be the length of the shortest lattice vector. For every
   lattice vector u with |u| <= λ1 + tol, and every lattice vector w not parallel to u with
   |w| <= λ2(u) + tol (λ2(u) = the shortest such length), the frame (e1, e2, e3) = (u/|u|, e3 × e1,
   u × w / |u × w|) is a candidate: "u along x, w in the xy-plane, on the +y side". The set of candidates
   depends only on the lattice as a point set, so it is the same for any choice of cell vectors (any
   unimodular basis change), any rotation (the frames rotate with the crystal) and any origin. In a
   lattice with symmetry (cubic: 24+ candidates) the lattice alone cannot pick one.
2. **The atoms pick one.** Each candidate Q gets a score s(Q) = Σ_e c_e f(v_e Q / r_e) over the neighbour
   candidates of every atom up to and including its whole k-th shell (a set that does not depend on the
   frame), with a weight c_e of the two elements and the distance, and f a fixed smooth function with no
   symmetry of its own. The frame with the lowest score is used. Two frames score the same (to float
   error) only when a symmetry operation of the crystal maps one onto the other; then either gives the
   same graph up to atom order, hence the same prediction; among tied frames the first in enumeration order
   is taken, so atom order and origin (which leave the enumeration alone) give exactly the same graph.
3. Vectors are rotated as v_canon = v @ Q (Q [3, 3], columns e1, e2, e3): a proper rotation, so lengths and
   bond angles are unchanged.

Reflections: Q is always a proper rotation, so a crystal and its mirror image get mirrored angle features. A
crystal with a mirror or inversion symmetry is its own mirror image up to a rotation, so its prediction is
reflection-invariant; a chiral crystal and its enantiomer may be predicted differently (as different
crystals; scalar properties of enantiomers are equal, so such a model's two answers bound its error).

Tolerances and degenerate cases: lengths within `FRAME_TOL` (1e-3 Å) count as equal when the candidate set
is formed (a larger set is harmless: the score decides). A structure with fewer than two periodic directions
(`pbc`) takes its candidate vectors from the neighbour displacements instead of the lattice. When every
vector is collinear, e2 and e3 are any fixed perpendicular pair (angles of collinear vectors do not depend on
that choice). `frame="lab"` keeps the file's frame: the paper's literal behaviour, for reproduction.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

Frame = Literal["canonical", "lab"]

FRAME_TOL = 1e-3  # Å: lattice-vector lengths this close count as equal when candidate frames are formed
SCORE_TIE = 1e-9  # relative: frames whose scores differ by less are related by a symmetry of the crystal
PARALLEL_TOL = 1e-6  # |u x w| / (|u| |w|) below this: u and w are parallel
# Fixed generic directions, weights and sharpness of the score function f (no symmetry among them).
_PROBES = np.array([[0.8017, 0.1243, 0.5847], [-0.2674, 0.9123, 0.3101], [0.3366, -0.4425, 0.8313]])
_PROBE_WEIGHTS = np.array([1.0, 0.618, 0.381])
_SHARPNESS = 2.3


def lattice_vectors(lattice: np.ndarray, periodic, radius: float) -> np.ndarray:
    """All non-zero lattice vectors [m, 3] of length <= radius along the periodic directions.

    Coefficients are bounded exactly, |n_i| <= radius * |dual_i|, with the dual basis of the periodic rows.
    """
    basis = np.asarray(lattice, dtype=np.float64)[np.asarray(periodic, dtype=bool)]  # [p, 3]
    dual = np.linalg.pinv(basis)  # [3, p]: v @ dual = coefficients
    nmax = np.floor(radius * np.linalg.norm(dual, axis=0) + 1e-9).astype(int)  # [p]
    grids = np.meshgrid(*[np.arange(-m, m + 1) for m in nmax], indexing="ij")
    coeffs = np.stack([g.ravel() for g in grids], axis=1)  # [c, p]
    vecs = coeffs @ basis  # [c, 3]
    norm = np.linalg.norm(vecs, axis=1)
    return vecs[(norm > 1e-8) & (norm <= radius)]


def _reduced_basis(lattice: np.ndarray, periodic: np.ndarray) -> np.ndarray:
    """Rows of a reduced basis of the periodic sub-lattice (LLL via pymatgen for 3-D, as given for 2-D)."""
    if periodic.all():
        from pymatgen.core import Lattice

        return np.asarray(Lattice(lattice).get_lll_reduced_lattice().matrix)
    return np.asarray(lattice)[periodic]


def frame_from_pair(u: np.ndarray, w: np.ndarray | None) -> np.ndarray:
    """Q [3, 3] with columns e1 = u/|u|, e2, e3 = u x w / |u x w| (w in the xy-plane, +y side)."""
    e1 = u / np.linalg.norm(u)
    normal = np.cross(u, w) if w is not None else np.zeros(3)
    if np.linalg.norm(normal) < PARALLEL_TOL * np.linalg.norm(u) * (np.linalg.norm(w) if w is not None else 1):
        helper = np.eye(3)[int(np.argmin(np.abs(e1)))]  # any fixed axis not along u
        normal = np.cross(e1, helper)
    e3 = normal / np.linalg.norm(normal)
    e2 = np.cross(e3, e1)
    return np.stack([e1, e2, e3], axis=1)


def candidate_frames(vectors: np.ndarray, tol: float = FRAME_TOL) -> np.ndarray:
    """Candidate rotations [C, 3, 3] from a point set of vectors [m, 3] (see the module docstring)."""
    norm = np.linalg.norm(vectors, axis=1)  # [m]
    shortest = vectors[norm <= norm.min() + tol]  # [s, 3]
    frames = []
    for u in shortest:
        cross = np.linalg.norm(np.cross(u, vectors), axis=1)  # [m]
        apart = cross > PARALLEL_TOL * np.linalg.norm(u) * norm
        if not apart.any():
            frames.append(frame_from_pair(u, None))
            continue
        second = norm[apart].min()
        for w in vectors[apart & (norm <= second + tol)]:
            frames.append(frame_from_pair(u, w))
    return np.stack(frames)


def frame_score(frames: np.ndarray, vec: np.ndarray, z_centre: np.ndarray, z_neighbor: np.ndarray) -> np.ndarray:
    """Score [C] of each candidate frame: Σ_e c_e Σ_m a_m exp(κ û_e·p_m), û_e = v_e Q / |v_e|."""
    r = np.linalg.norm(vec, axis=1)  # [E]
    unit = vec / r[:, None]  # [E, 3]
    weight = (1.0 + 0.137 * np.sqrt(z_centre) + 0.0291 * z_neighbor ** 0.71) * np.exp(-r / 3.1)  # [E]
    rotated = np.einsum("ej,cjk->cek", unit, frames)  # [C, E, 3]
    f = np.exp(_SHARPNESS * rotated @ _PROBES.T) @ _PROBE_WEIGHTS  # [C, E]
    return f @ weight  # [C]


def canonical_rotation(lattice: np.ndarray, periodic, vec: np.ndarray, z_centre: np.ndarray,
                       z_neighbor: np.ndarray) -> np.ndarray:
    """Q [3, 3] (v_canon = v @ Q) of the crystal's canonical frame.

    lattice: [3, 3] rows; periodic: [3] bools; vec [E, 3], z_centre [E], z_neighbor [E]: the neighbour
    candidates (whole k-th shells) and the elements at both ends.
    """
    periodic = np.broadcast_to(np.asarray(periodic, dtype=bool), (3,))
    if periodic.sum() >= 2:
        basis = _reduced_basis(np.asarray(lattice, dtype=np.float64), periodic)
        lengths = np.sort(np.linalg.norm(basis, axis=1))
        vectors = lattice_vectors(basis, np.ones(len(basis), dtype=bool), lengths[1] + 2 * FRAME_TOL)
    else:
        vectors = np.asarray(vec, dtype=np.float64)
    frames = candidate_frames(vectors)
    if len(frames) == 1:
        return frames[0]
    score = frame_score(frames, vec, z_centre, z_neighbor)
    tied = np.flatnonzero(score <= score.min() + SCORE_TIE * max(1.0, abs(float(score.min()))))
    return frames[int(tied[0])]  # the first in enumeration order: the same for any atom order or origin
