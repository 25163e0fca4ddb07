"""Readout: mean pooling, LayerNorm and the task FFNN (paper section 2.3.3, eqs. 16-17).

.. math::
    g = \\mathrm{LN}\\Big(\\frac{1}{n}\\sum_{i \\in \\text{crystal}} x_i\\Big),\\quad
    X^{l} = \\mathrm{Softplus}(W_l X^{l-1} + b_l)\\ (l = 1..n_{ffnn}),\\quad
    X^{out} = W_n X^{n_{ffnn}} + b_n \\qquad (16, 17)

For classification :math:`X^{out}` is a raw logit (positive = positive class).
"""

from __future__ import annotations

from torch import Tensor, nn
from torch_geometric.utils import scatter


def mean_pool(x: Tensor, batch: Tensor, num_graphs: int) -> Tensor:
    """Mean of node features per crystal: ``x [N, h]``, ``batch [N]`` -> ``[B, h]``."""
    return scatter(x, batch, dim=0, dim_size=num_graphs, reduce="mean")


class MeanPoolHead(nn.Module):
    """``forward(x [N, h], batch [N], num_graphs) -> [B, n_targets]``.

    ``n_ffnn`` hidden layers ``Linear(h, h) + Softplus`` then ``Linear(h, n_targets)``; dropout (if
    any) before the output layer.
    """

    def __init__(self, hidden_dim: int, n_ffnn: int = 1, n_targets: int = 1, dropout: float = 0.0):
        super().__init__()
        self.norm = nn.LayerNorm(hidden_dim)
        layers: list[nn.Module] = []
        for _ in range(n_ffnn):
            layers += [nn.Linear(hidden_dim, hidden_dim), nn.Softplus()]  # eq. 16
        self.ffnn = nn.Sequential(*layers)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden_dim, n_targets)  # eq. 17

    def forward(self, x: Tensor, batch: Tensor, num_graphs: int) -> Tensor:
        g = self.norm(mean_pool(x, batch, num_graphs))  # [B, h]
        return self.out(self.dropout(self.ffnn(g)))  # [B, n_targets]
