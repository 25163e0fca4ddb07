"""The cell a graph is built on (`GraphConfig.cell`).

The kNN graph itself does not depend on the cell a crystal is written in (up to the tie-breaks `frame` fixes),
but the paper's positional encodings are computed on the graph of the cell's atoms, so the conventional cell or a
supercell of a crystal gets other encodings than its primitive cell, and another prediction. With
``cell="primitive"`` every structure is first reduced to its primitive cell by spglib
(``standardize_cell(to_primitive=True, no_idealize=True)``: the lattice and positions are not symmetrised, only
the repeated translations removed), so all cells of one crystal give one graph. ``symprec`` (Å) is spglib's
tolerance for "the same atom after a translation": a cell whose repeats differ by more stays as given.
"""

from __future__ import annotations

import os
import warnings

import numpy as np

from crystograph.config import GraphConfig


def cell_for_graph(lattice: np.ndarray, pos: np.ndarray, z: np.ndarray, pbc: tuple[bool, ...],
                   cfg: GraphConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lattice [3, 3], Cartesian positions [n', 3], Z [n']) of the cell `cfg.cell` asks for.

    "as_given", a crystal not periodic along all three axes, and a cell spglib cannot analyse (it returns
    nothing) come back unchanged; "primitive" returns the primitive cell, n' = n / (number of lattice points)."""
    if cfg.cell == "as_given" or not all(pbc):
        return lattice, pos, z
    frac = np.linalg.solve(lattice.T, pos.T).T  # [n, 3]
    found = spglib_cell(lattice, frac, z, cfg.symprec)
    if found is None or len(found[2]) >= len(z):
        return lattice, pos, z
    prim_lattice, prim_frac, prim_z = (np.asarray(a) for a in found)
    prim_lattice = np.ascontiguousarray(prim_lattice, dtype=np.float64)
    return prim_lattice, np.ascontiguousarray(prim_frac @ prim_lattice), prim_z.astype(np.int64)


def spglib_cell(lattice: np.ndarray, frac: np.ndarray, z: np.ndarray, symprec: float, to_primitive: bool = True):
    """spglib's primitive (or, `to_primitive=False`, conventional standard) cell with every atom where it was
    (``no_idealize``): (lattice, fractional positions, numbers), or None where it finds none. spglib's C-level
    notes on stderr (SPGLIB_WARNING) and its deprecation warning about its error handling are silenced for the
    call; a failure is "no cell found"."""
    import spglib

    previous = os.environ.get("SPGLIB_WARNING")
    os.environ["SPGLIB_WARNING"] = "OFF"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return spglib.standardize_cell((lattice, frac, z), to_primitive=to_primitive, no_idealize=True,
                                           symprec=symprec)
    except Exception:  # spglib.error.SpglibError where its new error handling is on
        return None
    finally:
        if previous is None:
            del os.environ["SPGLIB_WARNING"]
        else:
            os.environ["SPGLIB_WARNING"] = previous
