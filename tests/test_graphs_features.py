"""Atom one-hot features, Gaussian RBF and spherical edge features."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from crystograph.config import N_ATOM_FEATURES, GraphConfig
from crystograph.errors import InputError
from crystograph.graphs import atom_features
from crystograph.graphs.features import ATOM_FEATURE_BLOCKS, edge_features, gaussian_rbf, spherical


def _blocks(row: np.ndarray) -> dict[str, int | None]:
    out, off = {}, 0
    for name, n in ATOM_FEATURE_BLOCKS:
        hot = np.flatnonzero(row[off : off + n])
        assert hot.size <= 1, name
        out[name] = int(hot[0]) if hot.size else None
        off += n
    return out


def test_table_shape_one_hot_and_distinct():
    x = atom_features(np.arange(1, 101))
    assert x.shape == (100, N_ATOM_FEATURES) and x.dtype == np.float32
    assert set(np.unique(x)) <= {0.0, 1.0}
    for row in x:
        b = _blocks(row)
        for name in ("group", "period", "covalent_radius", "valence_electrons", "block"):
            assert b[name] is not None, name
    # every element Z = 1..100 has its own row (the f-series through their f-block column)
    assert len({r.tobytes() for r in x}) == 100
    # every element has an electronegativity (He, Ne, Ar from the Allen scale)
    assert all(_blocks(row)["electronegativity"] is not None for row in x)


@pytest.mark.parametrize(
    "z, expect",
    [
        (1, {"group": 0, "period": 0, "block": 0, "valence_electrons": 0, "electronegativity": 4}),  # H: X=2.20
        (26, {"group": 7, "period": 3, "block": 2, "valence_electrons": 7}),  # Fe
        (8, {"group": 15, "period": 1, "block": 1, "valence_electrons": 5}),  # O: 6 valence
        (2, {"electronegativity": 9, "valence_electrons": 1}),  # He: Allen X = 4.16 -> end bin
        (18, {"electronegativity": 7}),  # Ar: Allen X = 3.24
        (64, {"period": 5, "block": 3, "group": 7}),  # Gd: period 6, 8th f-block column
        (57, {"period": 5, "block": 3, "group": 0}),  # La: 1st f-block column
        (89, {"period": 6, "block": 3, "group": 0}),  # Ac: period 7
        (79, {"period": 5, "group": 10, "valence_electrons": 10}),  # Au
    ],
)
def test_known_elements(z, expect):
    b = _blocks(atom_features([z])[0])
    for name, value in expect.items():
        assert b[name] == value, (z, name, b[name])


def test_unknown_elements_rejected():
    with pytest.raises(InputError, match="site 1 has atomic number 101"):
        atom_features([1, 101], source="a.cif")
    with pytest.raises(InputError, match="atomic number 0"):
        atom_features([0])


def test_gaussian_rbf():
    x = torch.tensor([0.0, 2.5, 10.0], dtype=torch.float64)
    out = gaussian_rbf(x, 0.0, 10.0, 5)  # centres 0, 2.5, 5, 7.5, 10; sigma 2.5
    assert out.shape == (3, 5) and out.dtype == torch.float64
    assert out.argmax(1).tolist() == [0, 1, 4]
    np.testing.assert_allclose(out[1].numpy(), np.exp(-np.array([1.0, 0, 1, 4, 9])), rtol=1e-12)
    fast = gaussian_rbf(x.numpy(), 0.0, 10.0, 5)  # numpy path: float32
    assert fast.dtype == np.float32
    np.testing.assert_allclose(fast, out.numpy(), rtol=1e-6, atol=1e-7)


def test_gaussian_rbf_has_no_subnormal_values():
    """exp(-d^2) below the smallest normal float32 is 0, never a subnormal (they slow CPU products ~60x);
    values at or above it are the literal formula's."""
    tiny = np.finfo(np.float32).tiny
    x = np.linspace(-1.0, 1.0, 20001)
    literal = np.exp(-(((x[:, None] - np.linspace(-1, 1, 40)[None, :]) / (2 / 39)) ** 2))  # float64
    for out in (gaussian_rbf(x, -1.0, 1.0, 40), gaussian_rbf(torch.from_numpy(x), -1.0, 1.0, 40).float().numpy()):
        assert not ((out > 0) & (out < tiny)).any()
        assert ((literal > 0) & (literal < tiny)).any()  # the range does reach them
        kept = literal >= 2 * tiny
        np.testing.assert_allclose(out[kept], literal[kept], rtol=1e-4)  # float32 exponents of up to -87
        assert (out[literal < tiny / 2] == 0).all()


def test_spherical_angles():
    v = torch.tensor([[0, 0, 2.0], [0, 0, -1.0], [1.0, 0, 0], [0, 1.0, 0], [-1.0, 0, 0], [1.0, 1.0, 1.0]])
    r, theta, phi = spherical(v.double())
    np.testing.assert_allclose(r, [2, 1, 1, 1, 1, math.sqrt(3)])
    np.testing.assert_allclose(theta[:5], [0, math.pi, math.pi / 2, math.pi / 2, math.pi / 2], atol=1e-12)
    np.testing.assert_allclose(theta[5], math.acos(1 / math.sqrt(3)))
    np.testing.assert_allclose(phi[2:], [0, math.pi / 2, math.pi, math.pi / 4], atol=1e-12)


def test_edge_features_layout():
    cfg = GraphConfig()
    v = np.array([[0, 0, 3.0], [0, 9.0, 0], [0.0, -1.0, 0.0]])
    e = edge_features(v, cfg)
    assert e.shape == (3, cfg.edge_dim) and e.dtype == torch.float32
    r_part = e[:, : cfg.n_rbf_r]
    t_part = e[:, cfg.n_rbf_r : cfg.n_rbf_r + cfg.n_rbf_theta]
    p_part = e[:, cfg.n_rbf_r + cfg.n_rbf_theta : -1]
    assert p_part.shape[1] == cfg.n_rbf_phi
    spacing = (cfg.r_max - cfg.r_min) / (cfg.n_rbf_r - 1)
    assert r_part.argmax(1).tolist() == [round(3.0 / spacing), round(9.0 / spacing), round(1.0 / spacing)]
    assert t_part[0].argmax().item() == 0  # theta = 0
    for row in (1, 2):  # theta = pi/2, midway between the middle centres
        assert abs(t_part[row].argmax().item() - (cfg.n_rbf_theta - 1) / 2) <= 0.5
    # phi = +pi/2 (index 3/4 of the range) and -pi/2 (index 1/4)
    assert abs(p_part[1].argmax().item() - 0.75 * (cfg.n_rbf_phi - 1)) <= 0.5
    assert abs(p_part[2].argmax().item() - 0.25 * (cfg.n_rbf_phi - 1)) <= 0.5
    assert e[:, -1].tolist() == [0.0, 1.0, 0.0]  # r > 8 Å
    assert edge_features(np.zeros((0, 3)), cfg).shape == (0, cfg.edge_dim)


def test_angles_ignore_round_off_at_branch_cuts():
    # phi jumps from pi to -pi across y = 0 and is arbitrary on the z axis: round-off must not matter
    a = edge_features(np.array([[-3.0, 1e-16, 0.0], [1e-17, -1e-17, 2.0], [-1e-17, 1e-17, -2.0]]))
    b = edge_features(np.array([[-3.0, -1e-16, 0.0], [-1e-17, 1e-17, 2.0], [1e-17, -1e-17, -2.0]]))
    torch.testing.assert_close(a, b, atol=0, rtol=0)


def test_distance_encoding_covers_every_edge_the_graph_can_hold():
    """Edges out to max_radius get distinct distance features (not the flat tail of the last centre)."""
    cfg = GraphConfig()
    assert cfg.r_max >= cfg.max_radius
    r = np.array([3.0, 12.0, 12.5, 19.5])
    e = edge_features(np.stack([r, np.zeros(4), np.zeros(4)], axis=1), cfg).numpy()[:, : cfg.n_rbf_r]
    assert (e.max(1) > 0.7).all()  # each distance lies within half a spacing of a centre
    assert np.abs(e[1] - e[2]).max() > 0.5  # 12 Å and 12.5 Å are told apart
