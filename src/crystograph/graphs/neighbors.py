"""Periodic k-nearest-neighbour search (paper 2.1.2) with `vesin`.

Every atom (centre i) gets exactly k neighbours j, counting periodic images (a 1-atom cell gets k edges to
its own images). The search radius is adaptive: it starts at the radius of a sphere expected to hold ~2k
atoms, r0 = (3 * 2k * V / (4 pi n))^(1/3), and grows by x1.5 until every atom has >= k candidates, capped
at `max_radius`. Candidates are searched out to radius + 1e-3 Å, so that every member of the k-th shell
(ties included) is present before the selection.

Ties at the k-th shell are broken in the crystal's canonical frame (`graphs.frame`), so the choice does not
depend on the file's orientation, origin, atom order or cell vectors: each centre's candidates are sorted by
distance, then by the x, y, z components of the displacement in that frame, where values within 1e-5 Å count
as equal (chained-gap clustering, see `_refine`; more robust than rounding to a 1e-5 grid, where round-off
decides on which side of a grid boundary a "nice" value such as a/2 falls), never by neighbour index. A cut
shell (bcc with k = 12 keeps 8 + 4 of the 6 second-shell neighbours) therefore keeps the members that come
first in that order: in a crystal whose symmetry makes several canonical frames equivalent, the kept members
differ between them only by a symmetry operation of the crystal. With frame="lab" the file's own frame is
used instead (the paper's behaviour). Zero-distance pairs (an atom with itself, or two coincident atoms) are
excluded.

Atoms with fewer than k neighbours within `max_radius` are handled by `on_isolated_atoms`: "error"
(default) raises `InputError` naming the atom index and element, "warn" warns and keeps the fewer edges,
"ignore" keeps them silently.
"""

from __future__ import annotations

import math
import threading
import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
import vesin

from crystograph.errors import ConfigError, InputError
from crystograph.graphs.frame import Frame, canonical_rotation
from crystograph.graphs.vesin_views import install as _install_vesin_views

_install_vesin_views()  # vesin's outputs as plain numpy views (see graphs.vesin_views)

OnIsolated = Literal["error", "warn", "ignore"]

SEARCH_MARGIN = 1e-3  # Å searched beyond the trusted radius
TIE_TOL = 1e-5  # Å: distances / displacement components closer than this are ties
GROWTH = 1.5
SELF_PAIR_DISTANCE = 1e-8  # Å; pairs closer than this are an atom with itself (or a coincident copy): dropped


@dataclass
class Neighbors:
    """k-NN edges sorted by centre, then (rounded) distance, then displacement.

    `centre` [E] and `neighbor` [E] are atom indices; `vec` [E, 3] (float64) points from the centre to the
    periodic image of the neighbour, in the frame given by `rotation`, `dist` [E] is its length, `shift`
    [E, 3] (int) is the image's cell shift: vec = (pos[neighbor] - pos[centre] + shift @ lattice) @ rotation.
    `ptr` [n + 1] is the CSR pointer by centre; `rotation` [3, 3] maps the input frame to the one used.
    """

    centre: np.ndarray
    neighbor: np.ndarray
    vec: np.ndarray
    dist: np.ndarray
    shift: np.ndarray
    ptr: np.ndarray
    radius: float  # the trusted search radius used
    rotation: np.ndarray  # [3, 3] v_used = v_input @ rotation (identity for frame="lab")


def density_radius(volume: float, n_atoms: int, k: int) -> float:
    """Radius of a sphere expected to hold ~2k atoms at the cell's mean atomic density."""
    return (3.0 * 2 * k * volume / (4.0 * math.pi * max(n_atoms, 1))) ** (1.0 / 3.0)


_LOCAL = threading.local()  # one reusable vesin.NeighborList per thread (creating one costs ~60 us)


def _pairs(points: np.ndarray, box: np.ndarray, cutoff: float, periodic):
    nl = getattr(_LOCAL, "nl", None)
    if nl is None:
        nl = _LOCAL.nl = vesin.NeighborList(cutoff=cutoff, full_list=True, n_threads=1)  # skin 0: no caching
    nl.cutoff = float(cutoff)
    # copy=False: views of vesin's buffers, valid until its next call; every array returned below is a copy
    # (vesin's own copies cost more than these, mostly in its ctypes wrapping)
    i, j, s, d, v = nl.compute(points=points, box=box, periodic=periodic, quantities="ijSdD", copy=False)
    keep = d > SELF_PAIR_DISTANCE
    if not keep.all():
        return i[keep].astype(np.int64), j[keep].astype(np.int64), s[keep], d[keep], v[keep]
    return i.astype(np.int64), j.astype(np.int64), s.copy(), d.copy(), v.copy()


def knn(
    positions: np.ndarray,
    lattice: np.ndarray,
    k: int = 12,
    max_radius: float = 20.0,
    *,
    atomic_numbers: np.ndarray | None = None,
    periodic: bool | tuple[bool, bool, bool] = True,
    on_isolated_atoms: OnIsolated = "error",
    source: str = "structure",
    frame: Frame = "canonical",
) -> Neighbors:
    """Exactly k nearest neighbours (periodic images included) of every atom; see the module docstring.

    positions: [n, 3] Cartesian (Å); lattice: [3, 3], rows are the lattice vectors; periodic: per lattice
    direction (e.g. pymatgen's `lattice.pbc`), images are only searched along periodic directions.
    frame: "canonical" (vectors and tie-breaks in the crystal's own frame, `graphs.frame`) or "lab".
    """
    check_frame(frame)
    cand = shell_candidates(positions, lattice, k, max_radius, atomic_numbers=atomic_numbers, periodic=periodic,
                            on_isolated_atoms=on_isolated_atoms, source=source)
    i, j, v = cand.i, cand.j, cand.v
    rotation = np.eye(3)
    if frame == "canonical":
        z = atomic_numbers if atomic_numbers is not None else np.ones(cand.n, dtype=np.int64)
        rotation = canonical_rotation(cand.box, cand.periodic, v, z[i], z[j])
        v = v @ rotation  # [C, 3] in the canonical frame
    return select_neighbors(i, j, cand.s, cand.d, v, cand.n, k, cand.radius, rotation)


def check_frame(frame: str) -> None:
    if frame not in ("canonical", "lab"):
        raise ConfigError(f"frame must be 'canonical' or 'lab', not {frame!r}")


@dataclass
class Candidates:
    """Every atom's neighbour candidates up to and including its whole k-th shell (`shell_candidates`), in the
    input frame: centre i [C], neighbour j [C], cell shift s [C, 3], distance d [C], vector v [C, 3]."""

    i: np.ndarray
    j: np.ndarray
    s: np.ndarray
    d: np.ndarray
    v: np.ndarray
    n: int
    radius: float
    box: np.ndarray  # [3, 3] the lattice rows
    periodic: bool | list[bool]


def shell_candidates(
    positions: np.ndarray,
    lattice: np.ndarray,
    k: int,
    max_radius: float,
    *,
    atomic_numbers: np.ndarray | None = None,
    periodic: bool | tuple[bool, bool, bool] = True,
    on_isolated_atoms: OnIsolated = "error",
    source: str = "structure",
    closed_shells: bool = True,
) -> Candidates:
    """The frame-free first stage of `knn`: the adaptive-radius search and the isolated-atom check, then (with
    `closed_shells`) each centre's candidates cut after its k-th shell (the bulk builder cuts many at once)."""
    periodic = [bool(p) for p in periodic] if isinstance(periodic, (tuple, list, np.ndarray)) else bool(periodic)
    if on_isolated_atoms not in ("error", "warn", "ignore"):
        raise ConfigError(f"on_isolated_atoms must be 'error', 'warn' or 'ignore', not {on_isolated_atoms!r}")
    points = np.ascontiguousarray(positions, dtype=np.float64).reshape(-1, 3)  # [n, 3]
    box = np.ascontiguousarray(lattice, dtype=np.float64).reshape(3, 3)
    n = points.shape[0]
    if n == 0:
        raise InputError(source, "the structure has no atoms")
    volume = abs(float(np.linalg.det(box)))
    if not volume > 1e-6:
        raise InputError(source, "the lattice is degenerate (zero cell volume)")

    radius = min(density_radius(volume, n, k), max_radius)
    while True:
        i, j, s, d, v = _pairs(points, box, radius + SEARCH_MARGIN, periodic)
        counts = np.bincount(i[d <= radius], minlength=n)  # [n] candidates within the trusted radius
        if counts.min() >= k or radius >= max_radius:
            break
        radius = min(radius * GROWTH, max_radius)

    lacking = np.flatnonzero(counts < k)
    if lacking.size:
        a = int(lacking[0])
        el = _element(atomic_numbers, a)
        msg = (
            f"atom {a} ({el}) has only {int(counts[a])} neighbours within max_radius={max_radius:g} Å "
            f"(k={k} needed; {lacking.size} such atom(s)); the structure may be isolated atoms or mostly vacuum"
        )
        if on_isolated_atoms == "error":
            raise InputError(source, msg)
        if on_isolated_atoms == "warn":
            warnings.warn(f"{source}: {msg}; keeping fewer edges", stacklevel=3)
        keep = d <= radius + TIE_TOL  # never beyond max_radius (up to the tie tolerance)
        i, j, s, d, v = i[keep], j[keep], s[keep], d[keep], v[keep]
    if closed_shells:
        i, j, s, d, v = _closed_shells(i, j, s, d, v, n, k)
    return Candidates(i, j, s, d, v, n, radius, box, periodic)


def select_neighbors(i, j, s, d, v, n: int, k: int, radius: float, rotation: np.ndarray) -> Neighbors:
    """The last stage of `knn`: each centre's first k candidates (v already in the frame of `rotation`)."""
    sel = _select(i, d, v, n, k)  # [E]
    centre = i[sel]
    return Neighbors(
        centre=centre,
        neighbor=j[sel],
        vec=v[sel],
        dist=d[sel],
        shift=s[sel].astype(np.int64),
        ptr=_csr_ptr(centre, n),
        radius=radius,
        rotation=rotation,
    )


def _closed_shells(i, j, s, d, v, n: int, k: int):
    """Keep each centre's candidates up to its k-th distance (+ a tie margin): whole shells, frame-free."""
    if d.size == 0:
        return i, j, s, d, v
    order = _sort_by(i, d)
    ptr = _csr_ptr(i, n)
    kth = d[order][np.maximum(np.minimum(ptr[:-1] + k, ptr[1:]) - 1, 0)]  # [n] k-th smallest distance (or the last)
    keep = d <= kth[i] + 10 * TIE_TOL
    return i[keep], j[keep], s[keep], d[keep], v[keep]


def _select(i: np.ndarray, d: np.ndarray, v: np.ndarray, n: int, k: int) -> np.ndarray:
    """Indices of the first k candidates of every centre, sorted by distance, then x, y, z (ties: TIE_TOL)."""
    group = i
    for values in (d, v[:, 0], v[:, 1], v[:, 2]):
        group = _refine(group, values)
        if group.size == 0 or group.max() == group.size:  # every group is one candidate: the order is final
            break
    order = np.argsort(_radix_key(group), kind="stable")
    i_sorted = i[order]
    cand_ptr = _csr_ptr(i_sorted, n)
    rank = np.arange(i_sorted.size) - cand_ptr[i_sorted]  # position within the centre's sorted list
    return order[rank < k]


def _csr_ptr(centre: np.ndarray, n: int) -> np.ndarray:
    """[n + 1] CSR pointer of candidates grouped by centre: centre c owns ptr[c]:ptr[c + 1]."""
    ptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(centre, minlength=n), out=ptr[1:])
    return ptr


def _radix_key(ids: np.ndarray) -> np.ndarray:
    """Non-negative integer ids as uint16 where they fit (numpy's stable sort is then a radix sort), else as is."""
    return ids.astype(np.uint16) if ids.size and 0 <= ids.min() and ids.max() < 1 << 16 else ids


def _sort_by(ids: np.ndarray, values: np.ndarray) -> np.ndarray:
    """An order [C] sorting by (ids, values), ids non-negative integers. Entries equal in both come in no fixed
    order, so only results that do not depend on their order may use it (`np.lexsort` fixes it, ~6x slower)."""
    order = np.argsort(values)
    return order[np.argsort(_radix_key(ids[order]), kind="stable")]


def _refine(group: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Split each group of candidates into runs of `values` that agree within TIE_TOL (chained gaps).

    Returns new group ids [C], increasing in (group, value) order. Unlike rounding to a 1e-5 grid, this does
    not depend on which side of a grid boundary round-off puts a "nice" value such as a/2 = 1.650005 Å: only a
    gap between two distinct values of about TIE_TOL is ambiguous. It uses only the values, never the atom
    index, so the result is independent of atom order.
    """
    order = _sort_by(group, values)
    g, x = group[order], values[order]
    new = np.ones(order.size, dtype=bool)
    new[1:] = (g[1:] != g[:-1]) | (x[1:] - x[:-1] > TIE_TOL)
    out = np.empty(order.size, dtype=np.int64)
    out[order] = np.cumsum(new)
    return out


def _element(atomic_numbers: np.ndarray | None, index: int) -> str:
    if atomic_numbers is None:
        return "element unknown"
    z = int(atomic_numbers[index])
    try:
        from ase.data import chemical_symbols

        return chemical_symbols[z]
    except (IndexError, ImportError):
        return f"Z={z}"
