"""A cheap structure fingerprint for de-duplicating the pretraining corpus and keeping test structures out of it.

For every atom i: its element Z_i and the multiset of (distance bin, element) of its neighbours out to the k-th
nearest-neighbour distance, whole shells included (every neighbour as close as the k-th one, periodic images
counted), so the choice among equidistant neighbours never matters. Distances are binned at `BIN` = 0.05 Å.
The structure's fingerprint hashes its reduced formula and the multiset of these per-atom environments with
their counts divided by the counts' greatest common divisor.

What it is invariant to: rotation, translation (origin), atom order, choice of cell vectors, and supercells (an
n-fold supercell repeats every environment n times; the gcd division removes that). It separates polymorphs
whose coordination shells differ (rocksalt vs CsCl NaCl), and the same structure type at lattice constants
that differ by more than about one bin. Two structures with the same fingerprint have the same composition and
the same neighbour shells to within the bin width; they need not be identical (it is not `StructureMatcher`).

Two grids: `fingerprints` returns the hash on bins round(d / BIN) and on bins offset by half a bin
(floor(d / BIN)). A distance sitting on a bin edge (e.g. the same crystal relaxed twice, 0.001 Å apart) can
fall into different bins on one grid; the leakage filter therefore removes a corpus structure that matches a
test structure on either grid (for a single distance, values less than half a bin apart share a bin on at
least one grid). De-duplication uses the first grid only.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from dataclasses import dataclass

import numpy as np

from crystograph.graphs.neighbors import _closed_shells, _pairs, density_radius

BIN = 0.05  # Å
K = 12  # neighbours per atom (GraphConfig.k, the paper's maximum coordination)
MAX_RADIUS = 20.0  # Å; atoms with fewer than K neighbours within it keep those they have
GROWTH = 1.5
SEARCH_MARGIN = 1e-3


@dataclass(frozen=True)
class Fingerprint:
    formula: str  # reduced formula
    key: str  # hash on the round(d / BIN) grid (de-duplication and leakage)
    key_shifted: str  # hash on the floor(d / BIN) grid (leakage only)


def neighbour_shells(structure, k: int = K, max_radius: float = MAX_RADIUS):
    """(centre [C], neighbour [C], distance [C]): every atom's neighbours out to its k-th distance, ties kept."""
    points = np.ascontiguousarray(structure.cart_coords, dtype=np.float64)
    box = np.ascontiguousarray(structure.lattice.matrix, dtype=np.float64)
    periodic = [bool(p) for p in structure.lattice.pbc]
    n = len(structure)
    radius = min(density_radius(abs(structure.volume), n, k), max_radius)
    while True:
        i, j, s, d, v = _pairs(points, box, radius + SEARCH_MARGIN, periodic)
        counts = np.bincount(i[d <= radius], minlength=n)
        if counts.min() >= k or radius >= max_radius:
            break
        radius = min(radius * GROWTH, max_radius)
    keep = d <= radius + SEARCH_MARGIN / 2  # only pairs within the searched radius are complete
    i, j, s, d, v = _closed_shells(i[keep], j[keep], s[keep], d[keep], v[keep], n, k)
    return i, j, d


def _environments(z: np.ndarray, centre: np.ndarray, neighbour: np.ndarray, bins: np.ndarray) -> Counter:
    """Counter of per-atom environments: (Z_i, sorted ((bin, Z_j), ...))."""
    order = np.lexsort((z[neighbour], bins, centre))
    centre, zn, bins = centre[order], z[neighbour][order], bins[order]
    starts = np.searchsorted(centre, np.arange(len(z) + 1))
    envs: Counter = Counter()
    for a in range(len(z)):
        lo, hi = starts[a], starts[a + 1]
        envs[(int(z[a]), tuple(zip(bins[lo:hi].tolist(), zn[lo:hi].tolist())))] += 1
    return envs


def _hash(formula: str, envs: Counter) -> str:
    divisor = math.gcd(*envs.values()) if envs else 1
    items = sorted((env, count // divisor) for env, count in envs.items())
    text = formula + "|" + ";".join(f"{count}x{env}" for env, count in items)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def fingerprints(structure, k: int = K, bin_width: float = BIN) -> Fingerprint:
    """The fingerprint of a pymatgen Structure on both grids (see the module docstring)."""
    z = np.asarray(structure.atomic_numbers, dtype=np.int64)
    centre, neighbour, dist = neighbour_shells(structure, k)
    formula = structure.composition.reduced_formula
    scaled = dist / bin_width
    keys = [_hash(formula, _environments(z, centre, neighbour, bins.astype(np.int64)))
            for bins in (np.rint(scaled), np.floor(scaled))]
    return Fingerprint(formula, keys[0], keys[1])
