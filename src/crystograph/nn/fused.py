"""Optional fused kernels for the element-wise core of eTGC attention on the dense edge layout.

On a CPU the small preset's training step is dominated by element-wise products and sums on the dense
line-graph tensors ``[N, m, heads, d]`` (``benchmarks/profile_step.py``). `torch.compile` (Inductor) fuses each
group below into one pass over memory (``benchmarks/compile_probe.py``: 2.7x and 3.4x, forward + backward).

The functions are the eager formulas of :class:`crystograph.nn.etgc.ETGC` (eqs. 4-5, factorised), so with
fusion off the numbers are exactly those of the eager layer. Fusion is off by default; it is switched on for the
process by :func:`enable` or the environment variable ``CRYSTOGRAPH_COMPILE=1``. :func:`enable` first compiles
and runs a tiny forward and backward pass; if that fails (no C++ compiler, an unsupported platform) it warns and
the eager functions stay in use.
"""

from __future__ import annotations

import os
import warnings

import torch
from torch import Tensor


def scores(q_w1: Tensor, k_src: Tensor, q_w2: Tensor, e_proj: Tensor) -> Tensor:
    """``(q_w1 k_j + q_w2 e'_ji)`` summed over the head width: ``[N, 1|m, heads, d]`` x 4 -> ``[N, m, heads]``."""
    return (q_w1 * k_src + q_w2 * e_proj).sum(-1)


def weighted_sums(attn: Tensor, v_src: Tensor, e_proj: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``h_e = a e'`` ``[N, m, heads, d]``, and the sums over each centre's m edges of ``a v_j`` and ``h_e``
    (``[N, heads, d]`` each); ``attn`` is ``[N, m, heads, 1]``."""
    h_e = attn * e_proj
    return h_e, (attn * v_src).sum(1), h_e.sum(1)


_EAGER = {"scores": scores, "weighted_sums": weighted_sums}
_active = dict(_EAGER)


def get(name: str):
    """The function in use for `name` ("scores" or "weighted_sums"): compiled once :func:`enable` succeeded."""
    return _active[name]


def is_enabled() -> bool:
    return any(_active[k] is not _EAGER[k] for k in _EAGER)


def disable() -> None:
    _active.update(_EAGER)


def enable() -> bool:
    """Compile both functions (dynamic shapes: one compilation serves every batch); True when fusion is on.

    A probe forward + backward on small tensors runs first, so a platform where Inductor cannot build kernels
    falls back to the eager functions with a warning instead of failing later inside training."""
    compiled = {k: torch.compile(f, dynamic=True) for k, f in _EAGER.items()}
    try:
        n, m, h, d = 5, 3, 2, 4
        shapes = ((n, 1, h, d), (n, m, h, d), (n, 1, h, d), (n, m, h, d))
        leaf = [torch.randn(*s, requires_grad=True) for s in shapes]
        compiled["scores"](*leaf).sum().backward()
        a = torch.rand(n, m, h, 1, requires_grad=True)
        outs = compiled["weighted_sums"](a, leaf[1], leaf[3])
        torch.autograd.backward([o.sum() for o in outs])
    except Exception as err:  # any backend failure means: stay eager
        warnings.warn(f"crystograph: torch.compile of the eTGC attention kernels failed ({type(err).__name__}: "
                      f"{err}); using the eager functions", RuntimeWarning, stacklevel=2)
        disable()
        return False
    _active.update(compiled)
    return True


if os.environ.get("CRYSTOGRAPH_COMPILE", "").strip() in ("1", "true", "yes"):
    enable()
