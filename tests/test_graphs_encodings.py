"""Positional encodings: Laplacian projectors / eigenvectors, cell random walk, periodic random walk."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure

from crystograph.config import GraphConfig
from crystograph.graphs import build_graph
import crystograph.graphs.encodings as enc
from crystograph.graphs.encodings import _weights, laplacian_pe, positional_encoding, random_walk_pe


def _random_multigraph(n: int, e: int, seed: int):
    rng = np.random.default_rng(seed)
    return rng.integers(0, n, e), rng.integers(0, n, e)


def test_random_walk_matches_matrix_powers():
    src, dst = _random_multigraph(7, 40, 0)  # includes multi-edges and self-loops
    w = _weights(src, dst, 7)
    assert np.array_equal(w, w.T) and w.sum() == 80
    assert w[dst[0], src[0]] >= 1
    p = w / w.sum(1, keepdims=True)
    ref, acc = [], np.eye(7)
    for _ in range(8):
        acc = acc @ p
        ref.append(np.diagonal(acc))
    np.testing.assert_allclose(random_walk_pe(w, 8), np.stack(ref, 1), atol=1e-12)


def test_projector_pe_properties():
    src, dst = _random_multigraph(9, 60, 1)
    w = _weights(src, dst, 9)
    pe = laplacian_pe(w, 20, "projector")
    assert pe.shape == (9, 20) and pe.min() >= -1e-12 and pe.max() <= 1 + 1e-12
    # each column is the diagonal of an eigenspace projector: its trace is the (integer) multiplicity
    trace = pe.sum(0)
    np.testing.assert_allclose(trace, trace.round(), atol=1e-9)
    assert trace[-1] == 0  # at most n - 1 non-trivial eigenspaces: zero-padded
    assert int(trace.sum().round()) == 8  # connected: all but the trivial eigenvector


def test_eigvec_form_sign_and_orthonormality():
    src, dst = _random_multigraph(6, 30, 2)
    w = _weights(src, dst, 6)
    pe = laplacian_pe(w, 8, "eigvec")
    vecs = pe[:, :5]
    np.testing.assert_allclose(vecs.T @ vecs, np.eye(5), atol=1e-9)
    assert np.all(vecs[np.abs(vecs).argmax(0), np.arange(5)] > 0)
    assert np.abs(pe[:, 5:]).max() == 0
    with pytest.raises(ValueError):
        laplacian_pe(w, 2, "bogus")


def test_one_atom_cell(simple_cubic):
    g = build_graph(simple_cubic)
    # the only edges are to the atom's own images: no Laplacian signal; every step returns in the cell
    assert g.pe[0, :8].abs().max() == 0
    torch.testing.assert_close(g.pe[0, 8:], torch.ones(8))
    p = build_graph(simple_cubic, GraphConfig(pe_mode="periodic_rw")).pe[0, 8:]
    # 24 moves: +-x, +-y, +-z twice each, the 12 face diagonals once: P(return at t=2) = 36 / 576
    assert p[0].item() == 0 and p[1].item() == pytest.approx(36 / 576)
    assert (p[2:] > 0).all()


def test_modes_same_width(rocksalt):
    for mode in ("laplacian+rw", "periodic_rw", "none"):
        cfg = GraphConfig(pe_mode=mode)
        pe = build_graph(rocksalt, cfg).pe
        assert pe.shape == (8, cfg.pe_dim) and pe.dtype == torch.float32
        if mode == "none":
            assert pe.abs().max() == 0
        if mode == "periodic_rw":
            assert pe[:, :8].abs().max() == 0
    with pytest.raises(ValueError):
        positional_encoding(torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long), None, 1,
                            GraphConfig(pe_mode="periodic_rw"))


def test_rocksalt_projector_is_symmetric(rocksalt):
    # all atoms of rocksalt are equivalent in the k-NN graph: the basis-invariant PE is the same for all
    pe = build_graph(rocksalt).pe
    torch.testing.assert_close(pe, pe[:1].expand_as(pe), atol=1e-6, rtol=0)
    assert pe[:, :8].abs().sum() > 0


def test_periodic_rw_equals_cell_rw_of_a_large_supercell():
    """A walk of t <= 4 steps cannot wrap around a 5x5x5 supercell (k-NN shifts are within +-1 cell)."""
    rng = np.random.default_rng(4)
    s = Structure(Lattice.from_parameters(3.1, 3.6, 4.2, 80, 95, 110), ["Si", "O"], rng.random((2, 3)))
    cfg = GraphConfig(rw_pe_dim=4)
    periodic = build_graph(s, dataclasses.replace(cfg, pe_mode="periodic_rw")).pe[:, 8:]
    big = s.copy()
    big.make_supercell(5)
    cell_rw = build_graph(big, dataclasses.replace(cfg, lap_pe_dim=0)).pe  # [250, 4]
    frac = (big.frac_coords * 5) % 1.0
    diff = frac[:, None, :] - s.frac_coords[None] % 1.0
    orig = torch.as_tensor(np.abs(diff - np.round(diff)).max(-1).argmin(1))
    torch.testing.assert_close(cell_rw, periodic[orig], atol=1e-6, rtol=0)
    # the unit cell's own random walk differs (walks that wrap around the cell count as returns)
    small = build_graph(s, cfg).pe[:, 8:]
    assert (small - periodic).abs().max() > 1e-2


def test_pe_supercell_changes_only_in_cell_mode():
    s = Structure(Lattice.from_parameters(3.1, 3.6, 4.2, 80, 95, 110), ["Si", "O"], [[0, 0, 0], [0.4, 0.3, 0.6]])
    sc = s.copy()
    sc.make_supercell(2)
    idx = (torch.as_tensor(sc.atomic_numbers) == 8).long()  # supercell atom -> unit-cell atom (Si 0, O 1)
    for mode, same in (("periodic_rw", True), ("laplacian+rw", False)):
        p, ps = build_graph(s, GraphConfig(pe_mode=mode)).pe, build_graph(sc, GraphConfig(pe_mode=mode)).pe
        assert torch.allclose(ps, p[idx], atol=1e-6) == same, mode


# --- sparse paths for large cells (n > SPARSE_MIN_ATOMS) vs the dense reference ---------------------------------


def _rocksalt_supercell_edges(m: int):
    from crystograph.graphs.neighbors import knn

    s = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    s = s * (m, m, m)
    cfg = GraphConfig()
    z = np.array([site.specie.Z for site in s])
    nb = knn(np.asarray(s.cart_coords), np.asarray(s.lattice.matrix), cfg.k, cfg.max_radius, atomic_numbers=z,
             periodic=(True, True, True), frame=cfg.frame)
    return nb.neighbor, nb.centre, len(s)


def _both_paths(monkeypatch, fn, w, *args):
    """(dense, sparse) results of fn(w, *args) with the threshold forced either way."""
    monkeypatch.setattr(enc, "SPARSE_MIN_ATOMS", 1 << 62)
    dense = fn(w, *args)
    monkeypatch.setattr(enc, "SPARSE_MIN_ATOMS", 4)
    return dense, fn(w, *args)


def _certified(monkeypatch):
    """Records whether each sparse eigensolve returned a result (False: fell back to dense eigh)."""
    calls, solver = [], enc._sparse_smallest_eigs

    def traced(*a, **kw):
        res = solver(*a, **kw)
        calls.append(res is not None)
        return res

    monkeypatch.setattr(enc, "_sparse_smallest_eigs", traced)
    return calls


def test_sparse_weights_equal_dense():
    src, dst = _random_multigraph(30, 200, 5)
    ws = enc._sparse_weights(src, dst, 30)
    assert ws.format == "csr" and np.array_equal(ws.toarray(), _weights(src, dst, 30))


@pytest.mark.parametrize("seed", [0, 1])
def test_sparse_random_walk_equals_dense(monkeypatch, seed):
    src, dst = _random_multigraph(300, 1500, seed)  # self-loops, multi-edges, maybe isolated atoms
    w = enc._sparse_weights(src, dst, 300)
    dense, sp = _both_paths(monkeypatch, random_walk_pe, w, 8)
    np.testing.assert_allclose(sp, dense, atol=1e-10, rtol=0)
    _, sp_odd = _both_paths(monkeypatch, random_walk_pe, w.toarray(), 5)  # dense input, odd step count
    np.testing.assert_allclose(sp_odd, dense[:, :5], atol=1e-10, rtol=0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sparse_laplacian_equals_dense_on_random_graphs(monkeypatch, seed):
    n = 300
    src, dst = _random_multigraph(n, 4 * n, seed)
    w = enc._sparse_weights(src, dst, n)
    calls = _certified(monkeypatch)
    dense, sp = _both_paths(monkeypatch, laplacian_pe, w, 8, "projector")
    assert calls == [True]
    np.testing.assert_allclose(sp, dense, atol=1e-6, rtol=0)
    # eigvec form: nondegenerate spectrum, so equal up to the (fixed) sign convention
    dense, sp = _both_paths(monkeypatch, laplacian_pe, w, 8, "eigvec")
    assert calls == [True, True]
    np.testing.assert_allclose(sp, dense, atol=1e-6, rtol=0)


def test_sparse_laplacian_with_components_and_isolated_atoms(monkeypatch):
    # two disconnected random blocks plus isolated atoms: several trivial eigenvalues to skip
    a_src, a_dst = _random_multigraph(150, 600, 3)
    b_src, b_dst = _random_multigraph(140, 560, 4)
    src, dst = np.concatenate([a_src, b_src + 150]), np.concatenate([a_dst, b_dst + 150])
    w = enc._sparse_weights(src, dst, 300)  # atoms 290..299 have no edges
    calls = _certified(monkeypatch)
    dense, sp = _both_paths(monkeypatch, laplacian_pe, w, 8, "projector")
    assert calls == [True]
    np.testing.assert_allclose(sp, dense, atol=1e-6, rtol=0)
    assert np.abs(sp[290:]).max() == 0


def test_sparse_projector_equals_dense_on_degenerate_supercell(monkeypatch):
    """4x4x4 rocksalt supercell (512 atoms): eigenspaces of multiplicity up to 24; all must be complete."""
    src, dst, n = _rocksalt_supercell_edges(4)
    w = enc._sparse_weights(src, dst, n)
    monkeypatch.setattr(enc, "SPARSE_MAX_EIG_FRACTION", 0.5)  # this small cell needs ~20 % of the eigenpairs
    calls = _certified(monkeypatch)
    dense, sp = _both_paths(monkeypatch, laplacian_pe, w, 8, "projector")
    assert calls == [True]
    np.testing.assert_allclose(sp, dense, atol=1e-6, rtol=0)
    trace = sp.sum(0)  # multiplicities of the eigenspaces: integers > 1 (degenerate)
    np.testing.assert_allclose(trace, trace.round(), atol=1e-8)
    assert trace.max() >= 12
    # the eigvec form is basis-dependent there; its columns are still unit eigenvectors of the same eigenvalues
    dense, sp = _both_paths(monkeypatch, laplacian_pe, w, 8, "eigvec")
    np.testing.assert_allclose(np.linalg.norm(sp, axis=0), 1.0, atol=1e-8)


def test_sparse_solver_certifies_or_falls_back(monkeypatch):
    src, dst = _random_multigraph(300, 1200, 6)
    w = enc._sparse_weights(src, dst, 300)
    # a Sylvester count that disagrees (as if ARPACK had missed a copy of an eigenvalue) -> dense fallback
    monkeypatch.setattr(enc, "_count_below", lambda lap, tau: -1)
    calls = _certified(monkeypatch)
    dense, sp = _both_paths(monkeypatch, laplacian_pe, w, 8, "projector")
    assert calls == [False]
    np.testing.assert_array_equal(sp, dense)
    # one wrong count (a missed copy) -> retried with a larger k, then certified
    monkeypatch.undo()
    real, seen = enc._count_below, []

    def once_wrong(lap, tau):
        seen.append(tau)
        return -1 if len(seen) == 1 else real(lap, tau)

    monkeypatch.setattr(enc, "_count_below", once_wrong)
    calls = _certified(monkeypatch)
    dense, sp = _both_paths(monkeypatch, laplacian_pe, w, 8, "projector")
    assert calls == [True] and len(seen) == 2
    np.testing.assert_allclose(sp, dense, atol=1e-6, rtol=0)


def test_small_cells_keep_the_dense_paths(rocksalt, monkeypatch):
    monkeypatch.setattr(enc, "_sparse_smallest_eigs", lambda *a, **k: pytest.fail("sparse path on a small cell"))
    monkeypatch.setattr(enc, "_sparse_random_walk_pe", lambda *a, **k: pytest.fail("sparse path on a small cell"))
    assert enc.SPARSE_MIN_ATOMS >= 256
    build_graph(rocksalt)


@pytest.mark.slow
def test_pe_of_a_3000_atom_cell_is_fast():
    import time

    src, dst, n = _rocksalt_supercell_edges(7)  # 2,744 atoms, highly degenerate (the sparse solver's worst case)
    start = time.perf_counter()
    pe = positional_encoding(src, dst, None, n)
    elapsed = time.perf_counter() - start
    assert pe.shape == (n, 16) and torch.isfinite(pe).all()
    trace = pe[:, :8].double().sum(0)
    torch.testing.assert_close(trace, trace.round(), atol=1e-3, rtol=0)  # complete eigenspaces
    assert elapsed < 30.0, elapsed  # dense eigh alone took ~9-17 s here; the sparse paths ~3-5 s on a loaded CPU


def test_pe_part_modes_are_the_parts_of_laplacian_rw(rocksalt):
    """pe_mode="laplacian" / "rw" (Fig. A9 ablation): the same width, one part of laplacian+rw, the other zero."""
    full = build_graph(rocksalt, GraphConfig(pe_mode="laplacian+rw")).pe
    lap = build_graph(rocksalt, GraphConfig(pe_mode="laplacian")).pe
    rw = build_graph(rocksalt, GraphConfig(pe_mode="rw")).pe
    assert lap.shape == rw.shape == full.shape == (8, 16)
    torch.testing.assert_close(lap[:, :8], full[:, :8])
    assert lap[:, 8:].abs().max() == 0
    torch.testing.assert_close(rw[:, 8:], full[:, 8:])
    assert rw[:, :8].abs().max() == 0
    assert full[:, :8].abs().max() > 0 and full[:, 8:].abs().max() > 0
    torch.testing.assert_close(lap + rw, full)


def test_pe_part_modes_on_a_large_cell_use_the_sparse_paths(monkeypatch):
    monkeypatch.setattr(enc, "SPARSE_MIN_ATOMS", 4)
    n = 12
    src, dst = _random_multigraph(n, 60, 3)
    cfg = dict(lap_pe_dim=3, rw_pe_dim=5)
    full = positional_encoding(src, dst, None, n, GraphConfig(pe_mode="laplacian+rw", **cfg))
    for mode, keep in (("laplacian", slice(0, 3)), ("rw", slice(3, 8))):
        pe = positional_encoding(src, dst, None, n, GraphConfig(pe_mode=mode, **cfg))
        expect = torch.zeros_like(full)
        expect[:, keep] = full[:, keep]
        torch.testing.assert_close(pe, expect)


def test_unknown_pe_mode_is_rejected():
    with pytest.raises(ValueError, match="laplacian"):
        GraphConfig(pe_mode="lap")


def _literal_return_probabilities(w: np.ndarray, steps: int) -> np.ndarray:
    """diag(P^t), t = 1..steps, P = D^-1 W by repeated products (rows of isolated atoms 0)."""
    deg = w.sum(1)
    p = np.divide(w, deg[:, None], out=np.zeros_like(w), where=deg[:, None] > 0)
    out, acc = [], np.eye(len(w))
    for _ in range(steps):
        acc = acc @ p
        out.append(np.diagonal(acc))
    return np.stack(out, 1)


def _loopless(n: int, e: int, seed: int, isolated: int = 0, split: bool = False) -> np.ndarray:
    """W of a random multigraph without self-loops; the last `isolated` atoms have no edges; `split`: two
    components (atoms < n // 2 and the rest)."""
    src, dst = _random_multigraph(n - isolated, e, seed)
    if split:
        half = (n - isolated) // 2
        dst = np.where(src < half, dst % half, half + dst % (n - isolated - half))
    keep = src != dst
    return _weights(src[keep], dst[keep], n)


def test_stacked_dense_pe_equals_the_literal_parts():
    """`dense_pe` (one eigh per stack; random walk from the eigenpairs when W has no self-loops) against
    diag(P^t) by repeated products and `laplacian_pe` one structure at a time, on stacks holding isolated
    atoms, two components, self-loops (the matrix-power path) and a degenerate spectrum (a ring)."""
    n, cfg = 10, GraphConfig(lap_pe_dim=6, rw_pe_dim=7)
    ring = np.roll(np.eye(n), 1, 1)
    with_loops = _weights(*_random_multigraph(n, 50, 4), n)
    assert np.diagonal(with_loops).any()
    stack = np.stack([_loopless(n, 40, 1), _loopless(n, 30, 2, isolated=3), _loopless(n, 40, 3, split=True),
                      ring + ring.T, with_loops])  # [5, n, n]
    pe = enc.dense_pe(stack, cfg)
    assert pe.shape == (5, n, 13)
    for g, w in enumerate(stack):
        np.testing.assert_allclose(pe[g, :, 6:], _literal_return_probabilities(w, 7), atol=1e-12, rtol=0)
        np.testing.assert_allclose(pe[g, :, :6], laplacian_pe(w, 6, "projector"), atol=1e-12, rtol=0)
    assert np.abs(pe[1, 7:, :]).max() == 0  # isolated atoms: no PE
    ring_trace = pe[3, :, :6].sum(0)  # the ring's eigenspaces (after the trivial one) have multiplicity 2
    np.testing.assert_allclose(ring_trace[:4], [2, 2, 2, 2], atol=1e-9)
    eig = enc.dense_pe(stack, dataclasses.replace(cfg, lap_pe_form="eigvec"))
    for g, w in enumerate(stack):
        np.testing.assert_allclose(eig[g, :, :6], laplacian_pe(w, 6, "eigvec"), atol=1e-12, rtol=0)
