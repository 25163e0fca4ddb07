"""Baselines: the mean predictor ("Dummy") and CGCNN (Xie & Grossman, PRL 120, 145301 (2018)).

CGCNN follows the defaults of the reference code (github.com/txie-93/cgcnn, ``main.py`` / ``model.py``):
atom embedding Linear(92 → 64), 3 convolutions, mean pooling, one hidden layer of 128, Softplus activations;
edges = up to 12 nearest neighbours within 8 Å, distances expanded in Gaussians with centres 0, 0.2, …, 8 Å
and width 0.2 Å: ``exp(-(d - μ_k)² / 0.2²)`` (41 features).

Training (`cgcnn_train_config`, what ``crystograph bench --model cgcnn`` uses) is the reference ``main.py``
recipe: MSE loss on the standardised target (the reference's ``Normalizer`` + ``nn.MSELoss``), SGD lr 0.01,
momentum 0.9, weight decay 0, batch 256, ``MultiStepLR(milestones=[100], gamma=0.1)`` (lr ÷ 10 at epoch 100,
stepped per epoch), model selection on the best validation MAE. Ours on top: early stopping (patience from
`TrainConfig`, 50 epochs) and the bench budget or epoch cap (300; the reference's default is 30 epochs, which
never reaches its own milestone).

It reads our `CrystalGraph` (``x`` [n, 92], ``edge_index`` [2, E] with exactly k = 12 neighbours per centre,
``edge_vec`` [E, 3]); distances are ``|edge_vec|`` and edges longer than 8 Å are dropped, which reproduces
CGCNN's "12 nearest within 8 Å" neighbour lists (CGCNN pads missing neighbours with a far dummy; here they
are simply absent).

The convolution is PyG's `CGConv(batch_norm=True)` followed by Softplus:
    x_i' = softplus(x_i + BN(Σ_j σ(z_ij W_f + b_f) ⊙ softplus(z_ij W_s + b_s))),  z_ij = x_i ‖ x_j ‖ e_ij.
Difference from the reference code: it has one Linear producing both halves with a BatchNorm on the
2·64 pre-activations (``bn1``); PyG's layer has two Linears and no ``bn1``. For classification the reference
has two log-softmax outputs; here one logit per target (the trainer uses BCE-with-logits), with the
reference's dropout (p = 0.5) after the hidden layer.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from crystograph.config import N_ATOM_FEATURES, TrainConfig
from crystograph.nn.rbf import GaussianRBF


def GaussianDistance(dmin: float = 0.0, dmax: float = 8.0, step: float = 0.2) -> GaussianRBF:  # noqa: N802
    """CGCNN's distance filter: centres dmin, dmin + step, …, dmax, width = step."""
    return GaussianRBF(dmin, dmax, int(round((dmax - dmin) / step)) + 1)


class CGCNN(nn.Module):
    """CGCNN with the reference defaults; `forward(batch) -> [B, n_targets]` (logits for classification)."""

    def __init__(
        self,
        n_targets: int = 1,
        task: str = "regression",
        *,
        orig_atom_fea_len: int = N_ATOM_FEATURES,
        atom_fea_len: int = 64,
        n_conv: int = 3,
        h_fea_len: int = 128,
        n_h: int = 1,
        radius: float = 8.0,
        dmin: float = 0.0,
        step: float = 0.2,
    ):
        super().__init__()
        from torch_geometric.nn import CGConv

        self.task = task
        self.radius = float(radius)
        self.gdf = GaussianDistance(dmin, radius, step)
        self.embedding = nn.Linear(orig_atom_fea_len, atom_fea_len)
        self.convs = nn.ModuleList(
            [CGConv(atom_fea_len, dim=self.gdf.n_features, aggr="add", batch_norm=True) for _ in range(n_conv)]
        )
        self.conv_to_fc = nn.Linear(atom_fea_len, h_fea_len)
        self.fcs = nn.ModuleList([nn.Linear(h_fea_len, h_fea_len) for _ in range(n_h - 1)])
        self.dropout = nn.Dropout(0.5) if task == "classification" else nn.Identity()
        self.fc_out = nn.Linear(h_fea_len, n_targets)

    def forward(self, batch) -> torch.Tensor:
        from torch_geometric.nn import global_mean_pool

        d = batch.edge_vec.norm(dim=1)  # [E]
        keep = d <= self.radius
        edge_index = batch.edge_index[:, keep]  # [2, E'] row 0 = neighbour j, row 1 = centre i
        edge_attr = self.gdf(d[keep])  # [E', 41]
        x = self.embedding(batch.x)  # [n, 64]
        for conv in self.convs:
            x = F.softplus(conv(x, edge_index, edge_attr))  # [n, 64]
        index = batch.batch if getattr(batch, "batch", None) is not None else x.new_zeros(x.size(0), dtype=torch.long)
        size = int(batch.num_graphs) if hasattr(batch, "num_graphs") else None
        crys = global_mean_pool(x, index, size=size)  # [B, 64]
        crys = F.softplus(self.conv_to_fc(F.softplus(crys)))  # [B, 128]
        crys = self.dropout(crys)
        for fc in self.fcs:
            crys = F.softplus(fc(crys))
        return self.fc_out(crys)  # [B, n_targets]


CGCNN_MILESTONES = [100]  # reference main.py: --lr-milestones default [100]
CGCNN_RECIPE = ("txie-93/cgcnn main.py: MSE, SGD lr 0.01 momentum 0.9, weight decay 0, batch 256, "
                "MultiStepLR([100], 0.1)")


def cgcnn_train_config(max_minutes: float | None, *, seed: int = 0, epochs: int = 300, **overrides) -> TrainConfig:
    """CGCNN's training recipe (reference ``main.py``: MSE loss, SGD lr 0.01 momentum 0.9, weight decay 0,
    batch 256, lr ÷ 10 at epoch 100) with our budget, epoch cap, patience and seed."""
    kw = dict(optimizer="sgd", lr=0.01, lr_schedule="multistep", lr_milestones=list(CGCNN_MILESTONES), loss="mse",
              weight_decay=0.0, batch_size=256, epochs=epochs, max_minutes=max_minutes, seed=seed)
    kw.update(overrides)
    return TrainConfig(**kw)


def mean_predictor(y_train: np.ndarray, n_test: int, task: str = "regression") -> np.ndarray:
    """The "Dummy" baseline: the training mean for every test sample, [n_test, T]. For classification the
    mean is the training fraction of positives (a constant score, ROC-AUC 0.5)."""
    y_train = np.asarray(y_train, dtype=float).reshape(len(y_train), -1)
    return np.tile(y_train.mean(axis=0), (n_test, 1))
