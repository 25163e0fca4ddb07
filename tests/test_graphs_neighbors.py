"""Periodic k-NN search: shells of simple lattices, ties, agreement with pymatgen, isolated atoms."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from crystograph.errors import InputError
from crystograph.graphs.neighbors import knn


def _knn(s: Structure, **kw):
    return knn(s.cart_coords, s.lattice.matrix, kw.pop("k", 12), kw.pop("max_radius", 20.0), **kw)


def random_structure(seed: int, n: int = 5) -> Structure:
    rng = np.random.default_rng(seed)
    lat = Lattice.from_parameters(*rng.uniform(3.0, 7.0, 3), *rng.uniform(75, 105, 3))
    while True:
        frac = rng.random((n, 3))
        s = Structure(lat, rng.choice(["Si", "O", "Fe", "Li", "N"], n), frac)
        if n == 1 or s.distance_matrix[np.triu_indices(n, 1)].min() > 1.0:
            return s


def test_simple_cubic_shells(simple_cubic):
    nb = _knn(simple_cubic)
    assert nb.centre.tolist() == [0] * 12 and nb.neighbor.tolist() == [0] * 12
    np.testing.assert_allclose(nb.dist[:6], 3.0)
    np.testing.assert_allclose(nb.dist[6:], 3.0 * math.sqrt(2))
    np.testing.assert_allclose(np.linalg.norm(nb.vec, axis=1), nb.dist)
    # edge vectors are lattice vectors (images of the atom itself), all distinct
    assert len({tuple(np.round(v, 6)) for v in nb.vec}) == 12


def test_fcc_primitive_shell(fcc_primitive):
    nb = _knn(fcc_primitive)
    np.testing.assert_allclose(nb.dist, 4.05 / math.sqrt(2))
    # all 12 first-shell neighbours are there: the vectors are the 12 <110> directions
    assert len({tuple(np.round(v, 6)) for v in nb.vec}) == 12
    np.testing.assert_allclose(nb.vec.sum(0), 0.0, atol=1e-9)


def test_bcc_shells_deterministic():
    a = 3.3
    lat = Lattice([[-a / 2, a / 2, a / 2], [a / 2, -a / 2, a / 2], [a / 2, a / 2, -a / 2]])
    s = Structure(lat, ["Nb"], [[0, 0, 0]])
    nb = _knn(s)
    np.testing.assert_allclose(nb.dist[:8], a * math.sqrt(3) / 2)
    np.testing.assert_allclose(nb.dist[8:], a)
    # the 4 second-shell members out of 6 are always the same ones, also for an equivalent cell choice
    again = _knn(s)
    np.testing.assert_array_equal(nb.vec, again.vec)
    s2 = Structure(lat, ["Nb"], [[0.37, 0.21, 0.9]])  # translated: same displacements
    np.testing.assert_allclose(_knn(s2).vec, nb.vec, atol=1e-9)


def test_exactly_k_sorted_and_shift_consistent(rocksalt):
    for s in (rocksalt, random_structure(1, 6), random_structure(2, 1)):
        for k in (1, 6, 12, 20):
            nb = _knn(s, k=k)
            n = len(s)
            assert np.bincount(nb.centre, minlength=n).tolist() == [k] * n
            assert np.all(np.diff(nb.centre) >= 0)
            assert np.all(np.diff(nb.ptr) == k)
            same = nb.centre[1:] == nb.centre[:-1]
            assert np.all(np.diff(nb.dist)[same] >= -1e-5)
            pos, lat = s.cart_coords, s.lattice.matrix
            lab_vec = pos[nb.neighbor] - pos[nb.centre] + nb.shift @ lat
            np.testing.assert_allclose(nb.vec, lab_vec @ nb.rotation, atol=1e-9)
            np.testing.assert_allclose(nb.rotation @ nb.rotation.T, np.eye(3), atol=1e-12)
            assert nb.dist.min() > 0


@pytest.mark.parametrize("seed", [0, 3, 4])
def test_agrees_with_pymatgen(seed):
    """Distances of the k nearest (and all pairs out to a cutoff larger than the cell) match pymatgen."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 5))
    s = random_structure(seed, n)
    s = Structure(Lattice.from_parameters(2.6, 3.1, 2.9, 62, 115, 80), s.species, s.frac_coords)
    nb = _knn(s)
    r = float(nb.dist.max()) + 0.5
    centres, _, _, dists = s.get_neighbor_list(r)
    keep = dists > 1e-8
    centres, dists = centres[keep], dists[keep]
    for i in range(len(s)):
        ref = np.sort(dists[centres == i])[:12]
        np.testing.assert_allclose(np.sort(nb.dist[nb.centre == i]), ref, atol=1e-6)
    # the raw candidate search also matches at a radius > 3x the cell size
    import vesin

    cut = 9.0
    i, _, d = vesin.NeighborList(cutoff=cut, full_list=True).compute(
        points=s.cart_coords, box=s.lattice.matrix, periodic=True, quantities="ijd"
    )
    c2, _, _, d2 = s.get_neighbor_list(cut)
    k2 = d2 > 1e-8
    for a in range(len(s)):
        np.testing.assert_allclose(np.sort(d[i == a]), np.sort(d2[k2][c2[k2] == a]), atol=1e-6)


def test_permutation_ties_do_not_depend_on_atom_order(rocksalt):
    nb = _knn(rocksalt)
    perm = np.random.default_rng(0).permutation(len(rocksalt))
    p = Structure(rocksalt.lattice, [rocksalt.species[i] for i in perm], rocksalt.frac_coords[perm])
    nbp = _knn(p)
    # centre i' of the permuted structure is centre perm[i'] of the original, with the same edge order
    emap = (nb.ptr[perm[nbp.centre]] + (np.arange(nbp.centre.size) - nbp.ptr[nbp.centre])).astype(int)
    np.testing.assert_array_equal(perm[nbp.neighbor], nb.neighbor[emap])
    np.testing.assert_allclose(nbp.vec, nb.vec[emap], atol=1e-9)


def test_supercell_same_distance_multisets():
    s = random_structure(7, 4)
    sc = s.copy()
    sc.make_supercell(2)
    nb, nbs = _knn(s), _knn(sc)
    # map each supercell atom to its original atom by fractional position
    frac = (sc.frac_coords * 2) % 1.0
    diff = frac[:, None, :] - s.frac_coords[None] % 1.0
    diff -= np.round(diff)
    orig = np.abs(diff).max(-1).argmin(1)
    assert np.bincount(orig).tolist() == [8] * len(s)
    for i_sc, i in enumerate(orig):
        np.testing.assert_allclose(nbs.dist[nbs.centre == i_sc], nb.dist[nb.centre == i], atol=1e-9)
        np.testing.assert_allclose(nbs.vec[nbs.centre == i_sc], nb.vec[nb.centre == i], atol=1e-9)


def test_isolated_atom_error_names_atom():
    s = Structure(Lattice.cubic(50.0), ["Fe"], [[0.5, 0.5, 0.5]])
    with pytest.raises(InputError, match=r"atom 0 \(Fe\).*max_radius=20") as err:
        _knn(s, atomic_numbers=np.array([26]), source="x.cif")
    assert err.value.source == "x.cif"
    with pytest.warns(UserWarning, match="atom 0"):
        nb = _knn(s, atomic_numbers=np.array([26]), on_isolated_atoms="warn")
    assert nb.centre.size == 0 and nb.ptr.tolist() == [0, 0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _knn(s, on_isolated_atoms="ignore").centre.size == 0


def test_partially_isolated_keeps_fewer_edges():
    # chains along a (6 Å) 30 Å apart; within max_radius=8 Å each atom has its 2 own images at 6 Å, its
    # partner at 4.24 Å and the partner's 2 images at 7.35 Å: 5 < k neighbours, kept with "ignore"
    s = Structure(Lattice.orthorhombic(6.0, 30.0, 30.0), ["Na", "Cl"], [[0, 0, 0], [0, 0.1, 0.1]])
    nb = _knn(s, max_radius=8.0, on_isolated_atoms="ignore")
    assert nb.dist.max() <= 8.0 + 1e-5
    assert np.bincount(nb.centre, minlength=2).tolist() == [5, 5]
    with pytest.raises(InputError, match=r"atom 0 \(Na\)"):
        _knn(s, max_radius=8.0, atomic_numbers=np.array([11, 17]))


def test_bad_option():
    with pytest.raises(ValueError):
        knn(np.zeros((1, 3)), np.eye(3) * 3, on_isolated_atoms="skip")


def test_ties_robust_to_round_off_at_nice_values():
    from crystograph.graphs.neighbors import _refine

    # 1.650005 sits on a 1e-5 rounding boundary: round-off must not split the tie
    x = np.array([1.650005 - 1e-15, 1.650005 + 1e-15, 1.650005, 1.7])
    g = _refine(np.zeros(4, dtype=np.int64), x)
    assert g[0] == g[1] == g[2] != g[3]
    assert _refine(np.array([1, 1, 0, 0]), np.array([2.0, 1.0, 2.0, 1.0])).tolist() == [4, 3, 2, 1]
    a = 3.30001  # bcc: shells at a*sqrt(3)/2 and a with components +-a/2 = +-1.650005
    lat = Lattice([[-a / 2, a / 2, a / 2], [a / 2, -a / 2, a / 2], [a / 2, a / 2, -a / 2]])
    ref = _knn(Structure(lat, ["Nb"], [[0, 0, 0]])).vec
    for frac in np.random.default_rng(0).random((30, 3)):
        np.testing.assert_allclose(_knn(Structure(lat, ["Nb"], [frac])).vec, ref, atol=1e-9)


def _refine_lexsort(group, values, tol):
    """The literal form of `_refine`: np.lexsort fixes the order, then chained gaps split the groups."""
    order = np.lexsort((values, group))
    g, x = group[order], values[order]
    new = np.ones(order.size, dtype=bool)
    new[1:] = (g[1:] != g[:-1]) | (x[1:] - x[:-1] > tol)
    out = np.empty(order.size, dtype=np.int64)
    out[order] = np.cumsum(new)
    return out


@pytest.mark.parametrize("n_groups", [5, 70_000])  # group ids that fit uint16 (radix sort) and ids that do not
def test_sort_by_and_refine_match_lexsort(n_groups):
    from crystograph.graphs.neighbors import TIE_TOL, _refine, _sort_by

    rng = np.random.default_rng(n_groups)
    group = rng.integers(0, n_groups, 5_000)
    values = np.round(rng.random(5_000) * 3, 2)  # many exact ties, as in symmetric shells
    values[::7] += rng.choice([-1, 1], values[::7].size) * TIE_TOL / 3  # and ties within the tolerance
    order = _sort_by(group, values)
    ref = np.lexsort((values, group))
    np.testing.assert_array_equal(group[order], group[ref])
    np.testing.assert_array_equal(values[order], values[ref])
    np.testing.assert_array_equal(_refine(group, values), _refine_lexsort(group, values, TIE_TOL))
