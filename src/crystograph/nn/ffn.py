"""Position-wise feed-forward sublayer shared by eTGC and GwT (paper Fig. 6, eqs. 8, 9 and 15).

.. math::
    \\mathrm{FFN}(x) = \\mathrm{Norm}\\big(W_2\\,\\mathrm{Dropout}(\\mathrm{GELU}(W_1 x + b_1)) + b_2\\big)

The residual connection is added by the caller (``x + FFN(x)``). eTGC normalises with BatchNorm
(eqs. 8-9), GwT with LayerNorm (eq. 15).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from crystograph.errors import ConfigError


class RowBatchNorm(nn.BatchNorm1d):
    """``BatchNorm1d`` over rows (nodes, edges or line-graph edges) of a ``[rows, dim]`` tensor.

    In training mode a single row has no batch statistics (plain ``BatchNorm1d`` raises); this
    module then normalises with the running statistics and leaves them untouched, so a one-atom
    crystal alone in a batch still trains instead of crashing.
    """

    def forward(self, x: Tensor) -> Tensor:
        if self.training and x.size(0) <= 1:
            return F.batch_norm(
                x, self.running_mean, self.running_var, self.weight, self.bias, training=False, eps=self.eps
            )
        return super().forward(x)


class FeedForward(nn.Module):
    """``Norm(W2 GELU(W1 x))`` with hidden width ``ffn_mult * dim``; ``norm`` is ``"batch"`` or ``"layer"``."""

    def __init__(self, dim: int, ffn_mult: int = 2, norm: str = "batch", dropout: float = 0.0):
        super().__init__()
        if norm not in ("batch", "layer"):
            raise ConfigError(f"norm must be 'batch' or 'layer', got {norm!r}")
        self.lin1 = nn.Linear(dim, ffn_mult * dim)
        self.lin2 = nn.Linear(ffn_mult * dim, dim)
        self.dropout = nn.Dropout(dropout)
        self.norm = RowBatchNorm(dim) if norm == "batch" else nn.LayerNorm(dim)

    def forward(self, x: Tensor) -> Tensor:
        h = F.gelu(self.lin1(x))  # [rows, ffn_mult * dim]; exact erf GELU (eq. 10)
        return self.norm(self.lin2(self.dropout(h)))  # [rows, dim]
