"""Gaussian radial basis of bond lengths as a module (the CGCNN-style baselines and the pretraining encoder)."""

from __future__ import annotations

import torch
from torch import nn

from crystograph.graphs.features import gaussian_rbf


class GaussianRBF(nn.Module):
    """r [E] → exp(-((r - μ_k) / σ)²) [E, n], μ = linspace(vmin, vmax, n), σ = the spacing of the centres."""

    def __init__(self, vmin: float = 0.0, vmax: float = 8.0, n: int = 41):
        super().__init__()
        self.vmin, self.vmax, self.n = float(vmin), float(vmax), int(n)

    @property
    def n_features(self) -> int:
        return self.n

    @property
    def centres(self) -> torch.Tensor:
        return torch.linspace(self.vmin, self.vmax, self.n)  # [n]

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        return gaussian_rbf(r, self.vmin, self.vmax, self.n)  # [E, n]
