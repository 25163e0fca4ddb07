"""The CGCNN that predicts masked atoms (paper A.1) and its Lightning module.

    h⁰_i   = E[t_i]                              E ∈ R^{119×d}: row 0 = MASK, row Z = element Z
    e_ij   = exp(-(‖r_ij‖ - μ_k)² / δ²), k = 1..K  Gaussian expansion of the bond length (from `edge_vec`)
    hˡ⁺¹_i = softplus(CGConv(hˡ, e)_i)            CGConv: hˡ_i + BN(Σ_j σ(z_ij W_f) ⊙ softplus(z_ij W_s)),
                                                   z_ij = [hˡ_i ‖ hˡ_j ‖ e_ij]
    p_i    = softmax(W₂ softplus(W₁ hᴸ_i))       logits over 119 classes, scored only at masked atoms

The embedding table E is the exported atom embedding: it is indexed by atomic number, so
`CrysToGraph` can look rows up with `z` directly (row 0, the MASK embedding, is never looked up there).
Only the tokens, edges and bond lengths are used: the 92-d CGCNN features `x` would reveal the masked
elements, and the bond angles in `edge_attr` are frame-dependent.
"""

from __future__ import annotations

import time

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import CGConv

from crystograph.config import PretrainConfig
from crystograph.nn.rbf import GaussianRBF
from crystograph.pretrain.dataset import FIXED_EPOCH, mask_batch
from crystograph.pretrain.masking import IGNORE_INDEX, MASK_RATE, N_TOKENS


class MaskedAtomCGCNN(nn.Module):
    """Token embedding → `n_conv` CGConv layers → per-atom classifier over 119 element classes."""

    def __init__(self, embed_dim: int = 64, n_conv: int = 3, n_rbf: int = 40, r_min: float = 0.0,
                 r_max: float = 10.0, hidden_dim: int | None = None, init_std: float = PretrainConfig.embed_init_std):
        super().__init__()
        self.embed_dim = embed_dim
        self.embedding = nn.Embedding(N_TOKENS, embed_dim)  # [119, d]: the exported atom embedding
        nn.init.normal_(self.embedding.weight, std=init_std)
        self.rbf = GaussianRBF(r_min, r_max, n_rbf)
        self.convs = nn.ModuleList(CGConv(embed_dim, dim=n_rbf, aggr="add", batch_norm=True) for _ in range(n_conv))
        hidden_dim = hidden_dim or embed_dim
        self.head = nn.Sequential(nn.Linear(embed_dim, hidden_dim), nn.Softplus(), nn.Linear(hidden_dim, N_TOKENS))

    @property
    def atom_embedding(self) -> Tensor:
        return self.embedding.weight  # [119, d]

    def forward(self, batch) -> Tensor:
        """Logits [n_nodes, 119] from `batch.tokens` [n], `batch.edge_index` [2, E], `batch.edge_vec` [E, 3]."""
        h = self.embedding(batch.tokens)  # [n, d]
        e = self.rbf(batch.edge_vec.norm(dim=-1))  # [E, K]
        for conv in self.convs:
            h = F.softplus(conv(h, batch.edge_index, e))  # [n, d]
        return self.head(h)  # [n, 119]


class MaskedAtomModule(pl.LightningModule):
    """Cross-entropy on masked atoms; Adam; learning rate × 0.1 from epoch `decay_epoch` on (Fig. A1).

    Masks are drawn here, per graph, from (seed, epoch, graph index) (`dataset.mask_batch`): new ones
    every training epoch, fixed ones for validation.

    With a wall-clock budget the decay also happens once `decay_fraction` of the budget has passed, so a
    time-limited run still gets its low-learning-rate phase; the decision is kept in a buffer, so it
    survives a resume.
    """

    def __init__(self, model: MaskedAtomCGCNN, *, lr: float = 1e-3, decay_epoch: int = 20,
                 max_minutes: float | None = None, decay_fraction: float = 0.4, seed: int = 0,
                 mask_rate: float = MASK_RATE):
        super().__init__()
        self.model = model
        self.seed = seed
        self.mask_rate = mask_rate
        self.lr = lr
        self.decay_epoch = max(1, int(decay_epoch))
        self.max_minutes = max_minutes
        self.decay_fraction = decay_fraction
        self.register_buffer("lr_decayed", torch.zeros((), dtype=torch.bool))
        self._fit_started: float | None = None
        self.first_epoch: int | None = None  # the first epoch this process trained

    def forward(self, batch) -> Tensor:
        return self.model(batch)

    def mask(self, batch, epoch: int):
        """Set `batch.tokens` and `batch.labels` [n] for this epoch (FIXED_EPOCH: validation masks)."""
        masked = mask_batch(batch, self.seed, epoch, self.mask_rate)
        batch.tokens, batch.labels = masked.tokens, masked.labels
        return batch

    def _step(self, batch, stage: str) -> Tensor:
        self.mask(batch, self.current_epoch if stage == "train" else FIXED_EPOCH)
        logits = self.model(batch)  # [n, 119]
        labels = batch.labels  # [n]
        selected = labels != IGNORE_INDEX
        n_sel = int(selected.sum())
        if n_sel == 0:  # cannot happen for graphs from `mask_atoms`, but keep the graph differentiable
            return logits.sum() * 0.0
        loss = F.cross_entropy(logits[selected], labels[selected])
        acc = (logits[selected].argmax(-1) == labels[selected]).float().mean()
        self.log(f"{stage}_loss", loss, batch_size=n_sel, on_step=False, on_epoch=True, prog_bar=True)
        self.log(f"{stage}_acc", acc, batch_size=n_sel, on_step=False, on_epoch=True, prog_bar=stage == "val")
        return loss

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")

    def on_fit_start(self) -> None:
        self._fit_started = time.monotonic()

    def _lr_factor(self, epoch: int) -> float:
        if not bool(self.lr_decayed):
            timed_out = (self.max_minutes and self._fit_started is not None
                         and time.monotonic() - self._fit_started >= self.decay_fraction * 60.0 * self.max_minutes)
            if epoch >= self.decay_epoch or timed_out:
                self.lr_decayed.fill_(True)
        return 0.1 if bool(self.lr_decayed) else 1.0

    def on_train_epoch_start(self) -> None:
        if self.first_epoch is None:
            self.first_epoch = int(self.current_epoch)  # > 0 after a resume
        self.log("lr", self.trainer.optimizers[0].param_groups[0]["lr"], on_epoch=True)

    def configure_optimizers(self):
        opt = torch.optim.Adam(self.parameters(), lr=self.lr)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, self._lr_factor)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}
