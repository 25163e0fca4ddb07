"""Optional fused (torch.compile) kernels of eTGC attention: same numbers as the eager layer, and a platform
that cannot compile falls back to eager with a warning."""

from __future__ import annotations

import pytest
import torch

from crystograph.nn import ETGC, fused


def _graph(n=9, m=4, h=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    dst = torch.arange(n).repeat_interleave(m)  # dense layout: m in-edges per centre, contiguous
    src = torch.randint(0, n, (n * m,), generator=g)
    return torch.randn(n, h, generator=g), torch.stack([src, dst]), torch.randn(n * m, h, generator=g)


def test_failing_compiler_falls_back_to_eager_with_a_warning(monkeypatch):
    def broken(fn, **kwargs):
        def call(*args):
            raise RuntimeError("no C++ compiler")
        return call

    monkeypatch.setattr(torch, "compile", broken)
    with pytest.warns(RuntimeWarning, match="using the eager functions"):
        assert fused.enable() is False
    assert not fused.is_enabled() and fused.get("scores") is fused.scores


def test_eager_helpers_are_the_layer_formulas():
    layer = ETGC(16, num_heads=2, head_dim=8)
    x, ei, e = _graph()
    out_dense = layer(x, ei, e, dense=True)
    out_sparse = layer(x, ei, e, dense=False)
    for a, b in zip(out_dense, out_sparse):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_compiled_kernels_match_eager_forward_and_backward():
    torch.manual_seed(0)
    layer = ETGC(16, num_heads=2, head_dim=8)
    x, ei, e = _graph()
    x.requires_grad_(True)
    eager = layer(x, ei, e, dense=True)
    grad_eager = torch.autograd.grad(sum(o.sum() for o in eager), x)[0]
    if not fused.enable():
        pytest.skip("torch.compile cannot build kernels here")
    try:
        x2, ei2, e2 = _graph(n=13, seed=1)  # another shape first: dynamic shapes, no specialisation on the first
        layer(x2, ei2, e2, dense=True)
        compiled = layer(x, ei, e, dense=True)
        grad_compiled = torch.autograd.grad(sum(o.sum() for o in compiled), x)[0]
    finally:
        fused.disable()
    for a, b in zip(compiled, eager):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grad_compiled, grad_eager, rtol=1e-4, atol=1e-5)
