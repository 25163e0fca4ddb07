"""A fast reader for plain P1 CIFs (gemmi's CIF tokenizer), giving exactly pymatgen's `Structure`.

Parsing a CIF with pymatgen's `CifParser` costs 3-8 ms per MP structure here, more than building its graph.
Large datasets are mostly *plain* CIFs, such as those written by pymatgen's `CifWriter`: one data block, the
identity as the only symmetry operation, every site fully occupied by one element. For those,
`parse_plain_cif` reads the tokens with gemmi (`gemmi.cif.read_string`, C++) and rebuilds the structure the way
`CifParser.parse_structures(primitive=False)` does:

* numbers: pymatgen's `str2float` (uncertainty brackets removed, "." is 0);
* lattice: `Lattice.from_parameters(a, b, c, alpha, beta, gamma)`;
* fractional coordinates within 1e-4 (relative) of 1/3 or 2/3 are set to them (`CifParser._sanitize_data`),
  then wrapped into [0, 1) by ``x - floor(x)`` (`CifParser._unique_coords`);
* site order: sorted by the element's electronegativity, then its symbol, file order among equals
  (`Structure.get_sorted_structure`, which `CifParser` applies last); the CIF labels are kept.

The lattice matrix, species, fractional coordinates and labels are identical to pymatgen's, bit for bit
(`tests/test_fast_cif.py` compares them on real datasets). Anything outside that scope returns None, and the
caller parses with pymatgen, which also writes every error message: several data blocks, other symmetry
operations, partial or zero occupancy, oxidation states, symbols that are not plain element symbols (water,
deuterium, labels only), elements without an electronegativity (whose sort order pymatgen leaves to the input
order), sites closer than pymatgen's merge tolerance, magnetic CIFs, missing or unreadable numbers, a degenerate
cell, and a text that gemmi cannot tokenize. gemmi is a dependency of crystograph; where it is missing anyway,
every CIF goes to pymatgen.
"""

from __future__ import annotations

import functools
import math
import re
import warnings

import numpy as np

SITE_TOLERANCE = 1e-4  # CifParser's site_tolerance: sites closer than this (fractional, per axis) merge there
FRAC_TOLERANCE = 1e-4  # CifParser's frac_tolerance for snapping to 1/3 and 2/3
MIN_THICKNESS = 0.01  # Å; CifParser rejects thinner cells
_SYMOP_TAGS = ("_symmetry_equiv_pos_as_xyz", "_space_group_symop_operation_xyz", "_space_group_symop.operation_xyz")
_MAGNETIC = ("_space_group_magn", "_atom_site_moment", "_parent_space_group", "_space_group_symop_magn")
_OXIDATION = "_atom_type_oxidation_number"  # pymatgen then makes Species with oxidation states
_PLAIN_SYMBOL = re.compile(r"[A-Z][a-z]?")
_BRACKETS = re.compile(r"\(.+\)*")  # pymatgen's str2float


@functools.cache
def _gemmi_cif():
    try:
        from gemmi import cif
    except ImportError:
        return None
    return cif


@functools.cache
def _electronegativity(symbol: str) -> float | None:
    """Pauling electronegativity of a plain element symbol; None if not an element or it has none."""
    from pymatgen.core import Element

    if not Element.is_valid_symbol(symbol):
        return None
    with warnings.catch_warnings():  # pymatgen warns where it has no value (noble gases)
        warnings.simplefilter("ignore")
        x = Element(symbol).X
    return None if math.isnan(x) else float(x)


def _number(text: str) -> float:
    """pymatgen's `str2float`; raises ValueError for '?' and other non-numbers."""
    if "(" in text:
        text = _BRACKETS.sub("", text)
    if text.strip() == ".":
        return 0.0
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


def _only_identity(block, cif) -> bool:
    found = [tag for tag in _SYMOP_TAGS if block.find_values(tag)]
    if len(found) != 1:
        return False
    ops = [cif.as_string(v) for v in block.find_values(found[0])]
    return len(ops) == 1 and ops[0].replace(" ", "").lower() == "x,y,z"


def _coincident(frac: np.ndarray, chunk: int = 256) -> bool:
    """Whether two sites are within SITE_TOLERANCE on every axis, across cell boundaries."""
    for start in range(0, len(frac), chunk):
        d = frac[start:start + chunk, None, :] - frac[None, :, :]  # [c, n, 3]
        d -= np.round(d)
        close = (np.abs(d) < SITE_TOLERANCE).all(-1)  # [c, n]
        close[np.arange(close.shape[0]), np.arange(start, start + close.shape[0])] = False
        if close.any():
            return True
    return False


def _snap(values: np.ndarray) -> np.ndarray:
    """CifParser._sanitize_data: values within FRAC_TOLERANCE (relative) of 1/3 or 2/3 become them."""
    out = values.copy()
    for ideal in (1 / 3, 2 / 3):
        out[np.abs(values / ideal - 1) <= FRAC_TOLERANCE] = ideal
    return out


def _sites(block, cif) -> tuple[list[str], list[str], np.ndarray] | None:
    """(labels, element symbols, fractional coordinates [n, 3]) of a plain block, or None."""
    table = block.find("_atom_site_", ["label", "type_symbol", "fract_x", "fract_y", "fract_z", "?occupancy"])
    if not table or len(table) == 0:
        return None
    symbols = [cif.as_string(v) for v in table.column(1)]
    if not all(_PLAIN_SYMBOL.fullmatch(s) and _electronegativity(s) is not None for s in symbols):
        return None
    try:
        frac = np.array([[_number(v) for v in table.column(c)] for c in (2, 3, 4)], dtype=np.float64).T  # [n, 3]
        if table.has_column(5) and any(_number(v) != 1.0 for v in table.column(5)):
            return None
    except ValueError:
        return None
    return [cif.as_string(v) for v in table.column(0)], symbols, frac


def parse_plain_cif(text: str):
    """The pymatgen `Structure` of a plain P1 CIF (see the module docstring), or None to use pymatgen."""
    cif = _gemmi_cif()
    if cif is None:
        return None
    try:
        doc = cif.read_string(text)
    except Exception:  # gemmi raises RuntimeError/ValueError on syntax errors; pymatgen then explains
        return None
    if len(doc) != 1:
        return None
    block = doc[0]
    if _OXIDATION in text or any(tag in text for tag in _MAGNETIC) or not _only_identity(block, cif):
        return None
    try:
        params = [_number(block.find_value(f"_cell_{kind}_{axis}") or "?")
                  for kind, axes in (("length", "abc"), ("angle", ("alpha", "beta", "gamma"))) for axis in axes]
    except ValueError:
        return None
    sites = _sites(block, cif)
    if sites is None:
        return None
    labels, symbols, frac = sites
    frac = _snap(frac)
    frac = frac - np.floor(frac)
    if _coincident(frac):
        return None
    return _structure(params, labels, symbols, frac)


def _structure(params: list[float], labels: list[str], symbols: list[str], frac: np.ndarray):
    from pymatgen.core import Lattice, Structure

    lattice = Lattice.from_parameters(*params)
    if not np.isfinite(lattice.matrix).all():
        return None
    try:
        thickness = min(lattice.d_hkl(hkl) for hkl in ((1, 0, 0), (0, 1, 0), (0, 0, 1)))
    except np.linalg.LinAlgError:  # a singular cell
        return None
    if not thickness >= MIN_THICKNESS:
        return None
    order = sorted(range(len(symbols)), key=lambda i: (_electronegativity(symbols[i]), symbols[i]))
    return Structure(lattice, [symbols[i] for i in order], frac[order], labels=[labels[i] for i in order])
