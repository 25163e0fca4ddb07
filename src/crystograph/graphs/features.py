"""Node, edge and line-graph features (paper 2.1.1-2.1.3).

Atom features (`atom_features`)
-------------------------------
A CGCNN-style one-hot vector of 92 entries (`config.N_ATOM_FEATURES`), computed from element data
(pymatgen `Element`, `ase.data.covalent_radii`) for Z = 1..100 once and cached. Blocks, in order:

| block | bins | encoding |
|---|---|---|
| group | 18 | group 1..18 (pymatgen); for the f-series, the column within the f-block (La, Ac = 1 ... Lu = 15) |
| period | 8 | period 1..7 (the 8th bin is never set; the width stays CGCNN's 92) |
| electronegativity | 10 | Pauling X, 10 equal bins on [0.5, 4.0]; He, Ne, Ar (no Pauling value): Allen scale |
| covalent radius | 10 | ase covalent radius in pm, 10 equal bins on [25, 250] |
| valence electrons | 12 | group for groups 1-12, group-10 for groups 13-18, He = 2, f-series = 3 (clipped to 1..12) |
| first ionisation energy | 10 | ln(E / eV), 10 equal bins on [1.3, 3.3] |
| electron affinity | 10 | eV, 10 equal bins on [-3.0, 3.7] |
| block | 4 | s, p, d, f (pymatgen's block) |
| atomic volume | 10 | ln(molar volume / cm^3 mol^-1), 10 equal bins on [1.5, 4.3] |

18 + 8 + 10 + 10 + 12 + 10 + 10 + 4 + 10 = 92. Continuous values outside a range fall into the end bin.
Element data come from pymatgen's periodic table and ase's covalent radii; the only gaps filled by hand are
the electronegativities of He, Ne and Ar, which have no Pauling value: their Allen-scale configuration
energies (4.16, 4.79, 3.24; Mann, Meek & Allen, J. Am. Chem. Soc. 122, 2780 (2000)) are used. Data still
missing (e.g. the molar volume of Fm) give an all-zero block for that property. Because pymatgen puts every
lanthanoid and actinoid in group 3, the f-series use the group block for their f-block column instead, so
every element Z = 1..100 has a distinct row (`atom_feature_table` checks this). Elements outside Z = 1..100
raise `InputError`.

Radial basis (`gaussian_rbf`)
-----------------------------
rbf_c(x) = exp(-((x - mu_c) / sigma)^2), mu = linspace(vmin, vmax, n), sigma = (vmax - vmin) / (n - 1).

Edge features (`edge_features`)
-------------------------------
For the displacement v = (x, y, z) from the centre to the neighbour image: r = |v|,
theta = arccos(z / r) in [0, pi] (polar), phi = atan2(y, x) in [-pi, pi] (azimuth);
edge_attr = RBF(r; r_min..r_max, n_rbf_r) | RBF(theta; 0..pi) | RBF(phi; -pi..pi) | [r > long_bond_cutoff].
"""

from __future__ import annotations

import functools
import math
import warnings

import numpy as np
import torch

from crystograph.config import MAX_Z, N_ATOM_FEATURES, GraphConfig
from crystograph.errors import InputError

SNAP = 1e-6  # Å; displacement components smaller than this are treated as exactly zero for the angles

# (name, number of bins); the order is the order of the feature vector.
ATOM_FEATURE_BLOCKS: tuple[tuple[str, int], ...] = (
    ("group", 18),
    ("period", 8),
    ("electronegativity", 10),
    ("covalent_radius", 10),
    ("valence_electrons", 12),
    ("first_ionization_energy", 10),
    ("electron_affinity", 10),
    ("block", 4),
    ("atomic_volume", 10),
)
assert sum(n for _, n in ATOM_FEATURE_BLOCKS) == N_ATOM_FEATURES

# Equal-width bin ranges of the continuous properties (CGCNN's ranges).
_RANGES = {
    "electronegativity": (0.5, 4.0),
    "covalent_radius": (25.0, 250.0),  # pm
    "first_ionization_energy": (1.3, 3.3),  # ln(eV)
    "electron_affinity": (-3.0, 3.7),  # eV
    "atomic_volume": (1.5, 4.3),  # ln(cm^3/mol)
}
_BLOCKS = {"s": 0, "p": 1, "d": 2, "f": 3}
# Allen-scale electronegativity of the elements without a Pauling value (Mann, Meek & Allen, JACS 2000).
_ALLEN_X = {2: 4.160, 10: 4.787, 18: 3.242}
_F_SERIES = (range(57, 72), range(89, 104))  # La-Lu, Ac-Lr (pymatgen's lanthanoids and actinoids)


def _bin(value: float | None, lo: float, hi: float, n: int) -> int | None:
    if value is None or not math.isfinite(value):
        return None
    idx = int(math.floor((value - lo) / (hi - lo) * n))
    return min(max(idx, 0), n - 1)


def _safe(fn):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value = fn()
        return None if value is None else float(value)
    except Exception:  # pymatgen raises on some missing data
        return None


def _element_bins(z: int) -> dict[str, int | None]:
    """Bin index of every feature block for element z (None = missing data, all-zero block)."""
    from ase.data import covalent_radii
    from pymatgen.core import Element

    el = Element.from_Z(z)
    column = next((z - series.start for series in _F_SERIES if z in series), None)  # f-block column, 0-based
    f_series = column is not None
    group = int(el.group)
    if z == 2:
        valence = 2
    elif f_series:
        valence = 3
    else:
        valence = group if group <= 12 else group - 10
    ion = _safe(lambda: el.ionization_energy)
    vol = _safe(lambda: el.molar_volume)
    block = _BLOCKS.get(str(el.block).lower())
    x = _ALLEN_X.get(z) or _safe(lambda: el.X)
    return {
        "group": column if f_series else group - 1,
        "period": _period(z),
        "electronegativity": _bin(x, *_RANGES["electronegativity"], 10),
        "covalent_radius": _bin(float(covalent_radii[z]) * 100.0, *_RANGES["covalent_radius"], 10),
        "valence_electrons": min(max(valence, 1), 12) - 1,
        "first_ionization_energy": _bin(
            math.log(ion) if ion and ion > 0 else None, *_RANGES["first_ionization_energy"], 10
        ),
        "electron_affinity": _bin(_safe(lambda: el.electron_affinity), *_RANGES["electron_affinity"], 10),
        "block": block,
        "atomic_volume": _bin(math.log(vol) if vol and vol > 0 else None, *_RANGES["atomic_volume"], 10),
    }


def _period(z: int) -> int:
    """Period bin 0..6 (pymatgen's `row` puts the f-series in extra rows 8 and 9)."""
    for bin_, last in enumerate((2, 10, 18, 36, 54, 86)):
        if z <= last:
            return bin_
    return 6


@functools.lru_cache(maxsize=1)
def atom_feature_table() -> np.ndarray:
    """[MAX_Z + 1, 92] float32 table; row z holds element z's one-hot features (row 0 unused, zero)."""
    table = np.zeros((MAX_Z + 1, N_ATOM_FEATURES), dtype=np.float32)
    for z in range(1, MAX_Z + 1):
        bins = _element_bins(z)
        offset = 0
        for name, n in ATOM_FEATURE_BLOCKS:
            idx = bins[name]
            if idx is not None:
                table[z, offset + idx] = 1.0
            offset += n
    _, first = np.unique(table[1:], axis=0, return_index=True)
    if first.size != MAX_Z:  # every element must be told apart
        dup = sorted(set(range(1, MAX_Z + 1)) - set(first + 1))
        raise RuntimeError(f"atom feature rows of Z = {dup} repeat another element's row")
    table.setflags(write=False)
    return table


def check_atomic_numbers(z: np.ndarray, source: str = "structure") -> None:
    """Raise InputError naming the first site whose element is outside Z = 1..MAX_Z."""
    bad = np.flatnonzero((z < 1) | (z > MAX_Z))
    if bad.size:
        i = int(bad[0])
        raise InputError(source, f"site {i} has atomic number {int(z[i])}; supported elements are Z = 1..{MAX_Z}")


def atom_features(z, source: str = "structure") -> np.ndarray:
    """CGCNN-style one-hot atom features, [n, 92] float32, for atomic numbers z [n]."""
    z = np.asarray(z, dtype=np.int64).reshape(-1)
    check_atomic_numbers(z, source)
    return atom_feature_table()[z]


RBF_FLOOR = float(np.finfo(np.float32).tiny)  # 1.18e-38: RBF values below it are set to 0 (see gaussian_rbf)
_LOG_RBF_FLOOR = float(np.log(np.float32(RBF_FLOOR)))  # -87.34


def gaussian_rbf(x, vmin: float, vmax: float, n: int, out: np.ndarray | None = None):
    """Gaussian expansion [*x.shape, n]: exp(-((x - mu) / sigma)^2), mu = linspace(vmin, vmax, n), sigma = spacing.

    Values below `RBF_FLOOR` (the smallest normal float32) are exactly 0: they carry nothing at float32, and as
    subnormal numbers they would slow every CPU matrix product that reads them (the input embeddings' weight
    gradients ran ~60x slower, a third of a training step). A torch tensor gives a tensor of its dtype; anything
    else gives a float32 numpy array (written into `out` when given; numpy's float32 exp is the fastest path on
    CPU for the graph builder).
    """
    width = (vmax - vmin) / (n - 1) if n > 1 else 1.0
    if isinstance(x, torch.Tensor):
        centers = torch.linspace(vmin, vmax, n, dtype=x.dtype, device=x.device)  # [n]
        rbf = torch.exp(-(((x.unsqueeze(-1) - centers) / width) ** 2))
        return rbf.masked_fill(rbf < RBF_FLOOR, 0.0)
    scale, cs = _scaled_centers(float(vmin), float(vmax), int(n))
    xs = np.asarray(x, dtype=np.float32) * scale  # x / sigma
    if out is None:
        out = np.empty(xs.shape + (n,), dtype=np.float32)
    np.subtract(xs[..., None], cs, out=out)
    np.square(out, out=out)
    np.negative(out, out=out)
    np.putmask(out, out <= _LOG_RBF_FLOOR, -np.inf)  # exp(-inf) = 0 instead of a subnormal
    return np.exp(out, out=out)


@functools.lru_cache(maxsize=64)
def _scaled_centers(vmin: float, vmax: float, n: int) -> tuple[np.float32, np.ndarray]:
    """(1 / sigma, mu / sigma [n]) in float32 for the numpy path of `gaussian_rbf` (cached: linspace is slow)."""
    scale = 1.0 / ((vmax - vmin) / (n - 1) if n > 1 else 1.0)
    centers = np.linspace(vmin * scale, vmax * scale, n, dtype=np.float32)
    centers.setflags(write=False)
    return np.float32(scale), centers


def spherical(edge_vec):
    """(r, theta, phi) of displacement vectors [E, 3]; theta in [0, pi] (0 for r = 0), phi in [-pi, pi].

    Components below SNAP (1e-6 Å) are set to +0 first: phi jumps from pi to -pi across y = 0 (x < 0) and is
    arbitrary for x = y = 0, so round-off of +-1e-16 (e.g. after a translation) must not pick the branch.
    numpy in, numpy (float64) out; a torch tensor is converted.
    """
    if isinstance(edge_vec, torch.Tensor):
        edge_vec = edge_vec.detach().cpu().numpy()
    v = np.asarray(edge_vec, dtype=np.float64).reshape(-1, 3)
    v = np.where(np.abs(v) < SNAP, 0.0, v)  # [E, 3]
    r = np.sqrt(np.einsum("ij,ij->i", v, v))  # [E]
    with np.errstate(invalid="ignore", divide="ignore"):
        cos_t = np.where(r > 0, v[:, 2] / r, 1.0)
    theta = np.arccos(np.clip(cos_t, -1.0, 1.0))  # [E]
    phi = np.arctan2(v[:, 1], v[:, 0])  # [E]
    return r, theta, phi


def edge_features(edge_vec, cfg: GraphConfig | None = None) -> torch.Tensor:
    """Edge features [E, cfg.edge_dim] float32: RBF(r) | RBF(theta) | RBF(phi) | [r > long_bond_cutoff]."""
    cfg = cfg or GraphConfig()
    r, theta, phi = spherical(edge_vec)
    out = np.empty((r.size, cfg.edge_dim), dtype=np.float32)  # [E, edge_dim]
    a, b, c = cfg.n_rbf_r, cfg.n_rbf_r + cfg.n_rbf_theta, cfg.edge_dim - 1
    out[:, :a] = gaussian_rbf(r, cfg.r_min, cfg.r_max, cfg.n_rbf_r)
    out[:, a:b] = gaussian_rbf(theta, 0.0, math.pi, cfg.n_rbf_theta)
    out[:, b:c] = gaussian_rbf(phi, -math.pi, math.pi, cfg.n_rbf_phi)
    out[:, c] = r > cfg.long_bond_cutoff
    return torch.from_numpy(out)
