"""vesin's outputs through `graphs.vesin_views` equal vesin's own helper's, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from crystograph.graphs import vesin_views


def _search(points, box, cutoff):
    import vesin

    nl = vesin.NeighborList(cutoff=cutoff, full_list=True, n_threads=1)
    return [np.array(a, copy=True) for a in nl.compute(points=points, box=box, periodic=True,
                                                       quantities="ijSdD", copy=False)]


def test_views_equal_vesins_own_arrays(monkeypatch):
    from vesin import _neighbors

    assert vesin_views.install()  # crystograph.graphs.neighbors installs it; a second call is a no-op
    assert vesin_views.install()
    patched = _neighbors._ptr_to_numpy
    assert patched._crystograph_view
    rng = np.random.default_rng(3)
    cases = []
    for n in (1, 5, 24):  # different pair counts: each is a new ctypes type for vesin's helper
        lattice = np.diag(rng.uniform(3, 7, 3)) + rng.normal(0, 0.4, (3, 3))
        cases.append((rng.random((n, 3)) @ lattice, lattice, float(rng.uniform(4, 8))))
    ours = [_search(*case) for case in cases]
    monkeypatch.setattr(_neighbors, "_ptr_to_numpy", patched.original)
    theirs = [_search(*case) for case in cases]
    for a_set, b_set in zip(ours, theirs):
        assert len(a_set[0]) > 0
        for a, b in zip(a_set, b_set):
            assert a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)


def test_views_keep_the_owner_alive_and_see_its_memory():
    import ctypes

    from vesin import _neighbors

    data = (ctypes.c_double * 6)(*range(6))
    view = _neighbors._ptr_to_numpy(ctypes.cast(data, ctypes.POINTER(ctypes.c_double)), (2, 3), ctypes.c_double,
                                    data, _neighbors.VesinDevice(_neighbors.VesinCPU, 0))
    assert view.shape == (2, 3) and view.dtype == np.float64 and view[1, 2] == 5.0
    data[4] = 40.0
    assert view[1, 1] == 40.0  # a view, not a copy
    assert view.base.owner is data


def test_an_unexpected_vesin_helper_is_left_alone(monkeypatch):
    from vesin import _neighbors

    def other(ptr, shape, dtype):  # another signature: another vesin version
        return None

    monkeypatch.setattr(_neighbors, "_ptr_to_numpy", other)
    assert not vesin_views.install()
    assert _neighbors._ptr_to_numpy is other


if __name__ == "__main__":
    pytest.main([__file__])
