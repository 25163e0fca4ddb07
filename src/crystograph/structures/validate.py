"""``validate_structure``: reject what crystograph cannot featurise, naming the site and the reason."""

from __future__ import annotations

import numpy as np
from pymatgen.core import DummySpecies, Element, Species, Structure

from crystograph.config import MAX_Z
from crystograph.errors import InputError

MIN_DISTANCE = 0.5  # Å; two sites closer than this are "overlapping atoms"


def validate_structure(structure: Structure, source: str) -> Structure:
    """Reject what crystograph cannot featurise; return ``structure`` unchanged otherwise.

    Checks, in order: at least one site; a finite 3-D lattice; no partial occupancy; elements with
    1 <= Z <= MAX_Z (no dummy species); no two sites (or a site and its own periodic image) closer than
    MIN_DISTANCE. The distance check uses a cell-list neighbour search (``get_neighbor_list``), O(n).
    """
    if len(structure) == 0:
        raise InputError(source, "empty structure: no atoms")
    matrix = structure.lattice.matrix
    if not (np.isfinite(matrix).all() and np.isfinite(structure.frac_coords).all()):
        raise InputError(source, "non-finite lattice or coordinates (NaN/inf)")
    if not structure.lattice.volume > 1e-3:
        raise InputError(source, f"degenerate lattice: cell volume {structure.lattice.volume:.3g} Å^3")
    if not structure.is_ordered:
        bad = [i for i, site in enumerate(structure) if not site.is_ordered]
        occ = ", ".join(f"{_symbol(sp)}:{amt:g}" for sp, amt in structure[bad[0]].species.items())
        more = f" ({len(bad)} disordered sites in total)" if len(bad) > 1 else ""
        raise InputError(
            source,
            f"site {bad[0]} has partial occupancy {{{occ}}}{more}; crystograph needs an ordered structure — "
            "order it first, e.g. with pymatgen OrderDisorderedStructureTransformation",
        )
    if any(not _supported(sp) for sp in structure.composition):
        i, sp = next((i, sp) for i, site in enumerate(structure) for sp in site.species if not _supported(sp))
        raise InputError(
            source,
            f"site {i} has species {sp} outside the feature table (supported: elements Z = 1..{MAX_Z}, "
            "no dummy species)",
        )
    centres, others, _, dists = structure.get_neighbor_list(MIN_DISTANCE, exclude_self=True)
    if len(dists):
        k = int(np.argmin(dists))
        i, j, d = int(centres[k]), int(others[k]), float(dists[k])
        n_pairs = max(1, len(dists) // 2)
        more = f" ({n_pairs} such pairs)" if n_pairs > 1 else ""
        if i == j:
            what = f"site {i} ({_symbol(structure[i].specie)}) is {d:.3f} Å from its own periodic image"
        else:
            i, j = min(i, j), max(i, j)
            si, sj = _symbol(structure[i].specie), _symbol(structure[j].specie)
            what = f"sites {i} ({si}) and {j} ({sj}) are {d:.3f} Å apart"
        raise InputError(source, f"overlapping atoms: {what} (minimum {MIN_DISTANCE} Å){more}")
    return structure


def _symbol(sp) -> str:
    return getattr(sp, "symbol", None) or str(sp)


def _supported(sp) -> bool:
    if isinstance(sp, DummySpecies) or not isinstance(sp, (Element, Species)):
        return False
    el = sp if isinstance(sp, Element) else sp.element
    return 1 <= el.Z <= MAX_Z
