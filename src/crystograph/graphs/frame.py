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
   symmetry of its own. The frame with the lowest score is used. The weight is a sum of a term of the centre's
   element and one of the neighbour's, so where the shells without species are more symmetric than the crystal
   (a half-Heusler: 4 atoms of one element at +t and 4 of another at -t, the corners of a cube) frames that only
   that bare geometry maps onto each other tie; a second score, whose weight is the product of the two terms,
   decides among tied frames (`frame_tiebreak_score`). Frames tied on both are related by a symmetry
   operation of the crystal; then either gives the same graph up to atom order, hence the same prediction;
   among them the first in enumeration order is taken, so atom order and origin (which leave the enumeration
   alone) give exactly the same graph.
3. Vectors are rotated as v_canon = v @ Q (Q [3, 3], columns e1, e2, e3): a proper rotation, so lengths and
   bond angles are unchanged.

Reflections: Q is always a proper rotation, so a crystal and its mirror image get mirrored angle features. A
crystal with a mirror or inversion symmetry is its own mirror image up to a rotation, so its prediction is
reflection-invariant; a chiral crystal and its enantiomer may be predicted differently (as different
crystals; scalar properties of enantiomers are equal, so such a model's two answers bound its error).

Near-symmetric crystals: scores that differ by more than round-off (`SCORE_TIE`, 1e-11 relative) pick one
frame, so a crystal a hair away from a higher symmetry (as CIFs written to 6 decimals often are) still gets one
frame for any rotation or cell choice of the same coordinates. Two files whose coordinates differ by more than
that may pick near-equivalent frames; the features then agree except where an angle sits on the RBF range's
edge (φ = ±π), which is the paper's non-periodic φ encoding.

Tolerances and degenerate cases: lengths within `FRAME_TOL` (1e-3 Å) count as equal when the candidate set
is formed (a larger set is harmless: the score decides). A structure with fewer than two periodic directions
(`pbc`) takes its candidate vectors from the neighbour displacements instead of the lattice. When every
vector is collinear, e2 and e3 are any fixed perpendicular pair (angles of collinear vectors do not depend on
that choice). `frame="lab"` keeps the file's frame: the paper's literal behaviour, for reproduction.
"""

from __future__ import annotations

import functools
from typing import Literal

import numpy as np

Frame = Literal["canonical", "lab"]

FRAME_TOL = 1e-3  # Å: lattice-vector lengths this close count as equal when candidate frames are formed
SCORE_TIE = 1e-11  # relative: scores closer than this are equal up to round-off (a symmetry of the crystal)
PARALLEL_TOL = 1e-6  # |u x w| / (|u| |w|) below this: u and w are parallel
# Fixed generic directions, weights and sharpness of the score function f (no symmetry among them).
_PROBES = np.array([[0.8017, 0.1243, 0.5847], [-0.2674, 0.9123, 0.3101], [0.3366, -0.4425, 0.8313]])
_PROBE_WEIGHTS = np.array([1.0, 0.618, 0.381])
_SHARPNESS = 2.3


def _coefficient_bounds(basis: np.ndarray, radius: float) -> np.ndarray:
    """[p] bounds |n_i| <= radius * |dual_i| on the coefficients of lattice vectors of length <= radius."""
    dual = np.linalg.inv(basis) if basis.shape[0] == 3 else np.linalg.pinv(basis)  # [3, p]: v @ dual = coefficients
    return np.floor(radius * np.sqrt((dual * dual).sum(0)) + 1e-9).astype(int)


@functools.lru_cache(maxsize=256)
def _coefficients(nmax: tuple[int, ...]) -> np.ndarray:
    """[c, p] all integer coefficient vectors with |n_i| <= nmax_i (read-only, cached)."""
    coeffs = np.indices(tuple(2 * m + 1 for m in nmax)).reshape(len(nmax), -1).T - np.asarray(nmax)
    coeffs.flags.writeable = False
    return coeffs


def lattice_vectors(basis: np.ndarray, radius: float, nmax: np.ndarray | None = None) -> np.ndarray:
    """All non-zero vectors [m, 3] of length <= radius of the lattice spanned by the rows of basis [p, 3]
    (nmax: `_coefficient_bounds(basis, radius)` when the caller has it)."""
    nmax = _coefficient_bounds(basis, radius) if nmax is None else nmax
    vecs = _coefficients(tuple(int(m) for m in nmax)) @ basis  # [c, 3]
    norm = np.sqrt((vecs * vecs).sum(1))
    return vecs[(norm > 1e-8) & (norm <= radius)]


def _short_vectors(lattice: np.ndarray, periodic: np.ndarray) -> np.ndarray:
    """The lattice vectors up to the second basis length (+ tol) of a reduced basis of the periodic rows.

    The given rows are used when they bound the search to a few hundred coefficient triples; otherwise they
    are LLL-reduced first (pymatgen), which keeps the search small for skewed cells.
    """
    basis = lattice[periodic]  # [p, 3]
    radius = np.sort(np.sqrt((basis * basis).sum(1)))[1] + 2 * FRAME_TOL
    nmax = _coefficient_bounds(basis, radius)
    if np.prod(2 * nmax + 1) > 343 and periodic.all():
        from pymatgen.core import Lattice

        basis = np.asarray(Lattice(basis).get_lll_reduced_lattice().matrix)
        radius = np.sort(np.sqrt((basis * basis).sum(1)))[1] + 2 * FRAME_TOL
        nmax = None
    return lattice_vectors(basis, radius, nmax)


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a x b over the last axis (broadcasting; numpy's cross is slow for small arrays)."""
    return np.stack([a[..., 1] * b[..., 2] - a[..., 2] * b[..., 1], a[..., 2] * b[..., 0] - a[..., 0] * b[..., 2],
                     a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]], axis=-1)


def _frames(e1: np.ndarray, normal: np.ndarray) -> np.ndarray:
    """[C, 3, 3] rotations with columns e1, e2 = e3 x e1, e3 = normal / |normal| (e1 unit, normal ⟂ e1)."""
    e3 = normal / np.linalg.norm(normal, axis=-1, keepdims=True)
    return np.stack([e1, _cross(e3, e1), e3], axis=-1)


def _any_normal(e1: np.ndarray) -> np.ndarray:
    """A fixed unit vector perpendicular to each row of e1 [C, 3] (for collinear point sets)."""
    helper = np.eye(3)[np.argmin(np.abs(e1), axis=-1)]  # the axis least along e1
    return _cross(e1, helper)


def candidate_frames(vectors: np.ndarray, tol: float = FRAME_TOL) -> np.ndarray:
    """Candidate rotations [C, 3, 3] from a point set of vectors [m, 3] (see the module docstring)."""
    return _frames_of_stack(np.asarray(vectors, dtype=np.float64)[None], np.array([np.inf]), tol)[0]


def frame_score(frames: np.ndarray, vec: np.ndarray, z_centre: np.ndarray, z_neighbor: np.ndarray) -> np.ndarray:
    """Score [C] of each candidate frame: Σ_e c_e Σ_m a_m exp(κ û_e·p_m), û_e = v_e Q / |v_e|, with
    c_e = (1 + 0.137 √Z_centre + 0.0291 Z_neighbour^0.71) e^(-r/3.1)."""
    r = np.sqrt((vec * vec).sum(1))  # [E]
    weight = (1.0 + 0.137 * np.sqrt(z_centre) + 0.0291 * z_neighbor ** 0.71) * np.exp(-r / 3.1)  # [E]
    return _weighted_score(frames, vec / r[:, None], weight)


def _weighted_score(frames: np.ndarray, unit: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Σ_e weight_e Σ_m a_m exp(κ û_e·(Q p_m)) [C] for unit vectors û [E, 3] and frames Q [C, 3, 3]."""
    n_frames, n_probes = len(frames), len(_PROBES)
    probes = (frames @ _PROBES.T).transpose(1, 0, 2).reshape(3, -1)  # [3, C * m]: Q p_m, as (û Q)·p = û·(Q p)
    f = np.exp(_SHARPNESS * (unit @ probes)).reshape(-1, n_frames, n_probes) @ _PROBE_WEIGHTS  # [E, C]
    return weight @ f  # [C]


def canonical_rotation(lattice: np.ndarray, periodic, vec: np.ndarray, z_centre: np.ndarray,
                       z_neighbor: np.ndarray) -> np.ndarray:
    """Q [3, 3] (v_canon = v @ Q) of the crystal's canonical frame.

    lattice: [3, 3] rows; periodic: [3] bools; vec [E, 3], z_centre [E], z_neighbor [E]: the neighbour
    candidates (whole k-th shells) and the elements at both ends.
    """
    periodic = np.broadcast_to(np.asarray(periodic, dtype=bool), (3,))
    if periodic.sum() >= 2:
        vectors = _short_vectors(np.asarray(lattice, dtype=np.float64), periodic)
    else:
        vectors = np.asarray(vec, dtype=np.float64)
    return _pick(candidate_frames(vectors), vec, z_centre, z_neighbor)


def frame_tiebreak_score(frames: np.ndarray, vec: np.ndarray, z_centre: np.ndarray,
                         z_neighbor: np.ndarray) -> np.ndarray:
    """Score [C] that separates frames `frame_score` ties: the same sum with a weight that couples the two
    elements, c_e = (1 + 0.137 √Z_centre)(1 + 0.0291 Z_neighbour^0.71) e^(-r/3.1). The sum of the additive weight
    splits into one term per centre (its shells, whatever sits on them) and one per neighbour, so it sees the
    geometry without species where the shells are symmetric: a half-Heusler's first shell is the 8 corners of a
    cube (4 atoms of one element at +t, 4 of another at -t), and its frames related by inversion tie. The
    product sees which element sits where."""
    r = np.sqrt((vec * vec).sum(1))  # [E]
    weight = (1.0 + 0.137 * np.sqrt(z_centre)) * (1.0 + 0.0291 * z_neighbor ** 0.71) * np.exp(-r / 3.1)  # [E]
    return _weighted_score(frames, vec / r[:, None], weight)


def _lowest(score: np.ndarray) -> np.ndarray:
    """Indices of the scores equal to the lowest up to round-off (`SCORE_TIE`), in order."""
    return np.flatnonzero(score <= score.min() + SCORE_TIE * max(1.0, abs(float(score.min()))))


def tied_frames(frames: np.ndarray, vec: np.ndarray, z_centre: np.ndarray,
                z_neighbor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the frames with the lowest score, and of those among them with the lowest tie-break score."""
    if len(frames) == 1:
        return np.zeros(1, dtype=np.intp), np.zeros(1, dtype=np.intp)
    tied = _lowest(frame_score(frames, vec, z_centre, z_neighbor))
    if len(tied) == 1:
        return tied, tied
    return tied, tied[_lowest(frame_tiebreak_score(frames[tied], vec, z_centre, z_neighbor))]


def _pick(frames: np.ndarray, vec: np.ndarray, z_centre: np.ndarray, z_neighbor: np.ndarray) -> np.ndarray:
    """The candidate frame with the lowest score; among tied ones, the lowest tie-break score (the first of
    frames tied on both)."""
    after = tied_frames(frames, vec, z_centre, z_neighbor)[1]
    return frames[int(after[0])]  # the first in enumeration order: the same for any atom order or origin


def canonical_rotations(lattices, periodics, vecs, z_centres, z_neighbors) -> list[np.ndarray]:
    """`canonical_rotation` of many crystals (the same matrices): for fully periodic cells the lattice-vector
    search and the candidate frames run on stacks of cells that share a coefficient grid; the others (cells
    that need a reduced basis, fewer than 3 periodic directions) go one by one."""
    frames = _stacked_candidate_frames(lattices, periodics)
    return [canonical_rotation(lattices[b], periodics[b], vecs[b], z_centres[b], z_neighbors[b])
            if frames[b] is None else _pick(frames[b], vecs[b], z_centres[b], z_neighbors[b])
            for b in range(len(lattices))]


def _stacked_candidate_frames(lattices, periodics, chunk: int = 16) -> list[np.ndarray | None]:
    """`candidate_frames(_short_vectors(lattice))` per fully periodic cell whose search grid is small (else
    None), computed on stacks; every value is the one-cell computation's, element for element."""
    out: list[np.ndarray | None] = [None] * len(lattices)
    cells = [b for b in range(len(lattices)) if np.all(periodics[b])]
    if not cells:
        return out
    bases = np.stack([np.asarray(lattices[b], dtype=np.float64) for b in cells])  # [B, 3, 3]
    radius = np.sort(np.sqrt((bases * bases).sum(2)), axis=1)[:, 1] + 2 * FRAME_TOL  # [B]
    dual = np.linalg.inv(bases)  # [B, 3, 3]
    nmax = np.floor(radius[:, None] * np.sqrt((dual * dual).sum(1)) + 1e-9).astype(int)  # [B, 3]
    groups: dict[tuple[int, ...], list[int]] = {}
    for k, b in enumerate(cells):
        if np.prod(2 * nmax[k] + 1) <= 343:  # larger grids take the reduced basis, one by one
            groups.setdefault(tuple(int(m) for m in nmax[k]), []).append(k)
    for grid, members in groups.items():
        for start in range(0, len(members), chunk):
            part = members[start:start + chunk]
            found = _frames_of_stack(_coefficients(grid) @ bases[part], radius[part])
            for k, frames in zip(part, found):
                out[cells[k]] = frames
    return out


def _frames_of_stack(vecs: np.ndarray, radius: np.ndarray, tol: float = FRAME_TOL) -> list[np.ndarray]:
    """Candidate frames of each cell's vector set: vecs [G, c, 3], of which the vectors with 0 < |v| <= radius [G]
    count (`lattice_vectors` on a shared coefficient grid; radius inf: all given vectors). Per cell, the frames
    "u along x, w in the xy-plane" for every shortest u and its shortest non-parallel w, then for each u with
    every vector collinear to it a frame about a fixed normal."""
    norm = np.sqrt((vecs * vecs).sum(2))  # [G, c]
    valid = (norm > 1e-8) & (norm <= radius[:, None])
    norm = np.linalg.norm(vecs, axis=2)
    first = valid & (norm <= np.where(valid, norm, np.inf).min(1)[:, None] + tol)  # [G, c]
    slots = np.argsort(~first, axis=1, kind="stable")[:, :int(first.sum(1).max())]  # [G, S] the u's, in order
    u_ok = np.take_along_axis(first, slots, 1)  # [G, S]
    u = np.take_along_axis(vecs, slots[..., None], 1)  # [G, S, 3]
    u_norm = np.take_along_axis(norm, slots, 1)  # [G, S]
    cross = _cross(u[:, :, None, :], vecs[:, None, :, :])  # [G, S, c, 3]
    cross_norm = np.linalg.norm(cross, axis=-1)  # [G, S, c]
    apart = (cross_norm > PARALLEL_TOL * u_norm[:, :, None] * norm[:, None, :]) & valid[:, None, :]
    second = np.where(apart, norm[:, None, :], np.inf).min(axis=2)  # [G, S] λ2(u)
    g, su, sw = np.nonzero(u_ok[:, :, None] & apart & (norm[:, None, :] <= second[:, :, None] + tol))
    e1 = u / np.where(u_ok, u_norm, 1.0)[..., None]  # [G, S, 3]
    frames = _frames(e1[g, su], cross[g, su, sw])  # [C, 3, 3], by cell, then u, then w
    lg, ls = np.nonzero(u_ok & ~np.isfinite(second))  # u with every vector collinear to it
    lonely = _frames(e1[lg, ls], _any_normal(e1[lg, ls]))
    ends = np.concatenate([[0], np.cumsum(np.bincount(g, minlength=len(vecs)))])
    return [np.concatenate([frames[ends[k]:ends[k + 1]], lonely[lg == k]]) for k in range(len(vecs))]
