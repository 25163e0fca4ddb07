"""The Lightning module that trains any `forward(batch) -> [B, T]` network (CrysToGraph, CGCNN, …).

Regression: targets are standardised with the training-set mean/std (kept as buffers, so they
travel with the weights) and the loss is L1 (or MSE, `TrainConfig.loss`) on the standardised scale;
`val_mae` is reported in the target's own units. Classification: BCE with logits; `val_mae` is the mean |p - y| and
`val_auc` the ROC-AUC when both classes are present.

The learning rate follows a warm-up + cosine (`onecycle`) or plain cosine curve whose progress is
max(step / total_steps, elapsed / time_budget): a run with a wall-clock budget still anneals.
"""

from __future__ import annotations

import math
import time

import lightning.pytorch as pl
import torch
from torch import nn

from crystograph.config import TrainConfig

WARMUP_FRACTION = 0.05  # `onecycle`: share of training spent warming up
WARMUP_START = 0.1  # learning-rate factor at the start of the warm-up
LR_FLOOR = 0.01  # learning-rate factor at the end of the cosine decay


class PropertyModule(pl.LightningModule):
    def __init__(
        self,
        model: nn.Module,
        train_config: TrainConfig,
        *,
        task: str = "regression",
        y_mean: list[float] | None = None,
        y_std: list[float] | None = None,
        total_steps: int = 1000,
    ):
        super().__init__()
        self.model = model
        self.train_config = train_config
        self.task = task
        n_targets = len(y_mean) if y_mean is not None else 1
        self.register_buffer("y_mean", torch.tensor(y_mean or [0.0] * n_targets, dtype=torch.float32))
        self.register_buffer("y_std", torch.tensor(y_std or [1.0] * n_targets, dtype=torch.float32))
        self.total_steps = max(int(total_steps), 1)
        self._fit_started: float | None = None

    # -- prediction in target units ------------------------------------------------------------
    def forward(self, batch) -> torch.Tensor:
        """Predictions in target units [B, T]: de-standardised values, or probabilities (classification)."""
        out = self.model(batch)  # [B, T]
        if self.task == "regression":
            return out * self.y_std + self.y_mean
        return torch.sigmoid(out)

    def _loss(self, batch) -> tuple[torch.Tensor, torch.Tensor]:
        raw = self.model(batch)  # [B, T]
        y = batch.y.to(raw.dtype)  # [B, T]
        if self.task == "regression":
            loss_fn = torch.nn.functional.mse_loss if getattr(self.train_config, "loss", "l1") == "mse" else \
                torch.nn.functional.l1_loss
            loss = loss_fn(raw, (y - self.y_mean) / self.y_std)
            pred = raw * self.y_std + self.y_mean
        else:
            loss = torch.nn.functional.binary_cross_entropy_with_logits(raw, y)
            pred = torch.sigmoid(raw)
        return loss, pred

    def training_step(self, batch, batch_idx):
        loss, _ = self._loss(batch)
        self.log("train_loss", loss, batch_size=batch.num_graphs, on_step=False, on_epoch=True, prog_bar=True)
        return loss

    def validation_step(self, batch, batch_idx):
        loss, pred = self._loss(batch)
        mae = (pred - batch.y).abs().mean()
        self.log("val_loss", loss, batch_size=batch.num_graphs, sync_dist=True)
        self.log("val_mae", mae, batch_size=batch.num_graphs, prog_bar=True, sync_dist=True)

    # -- optimisation --------------------------------------------------------------------------
    def on_fit_start(self) -> None:
        self._fit_started = time.monotonic()

    def _elapsed_s(self) -> float:
        """Training time so far, including time before a resume (Lightning's Timer restores it)."""
        from lightning.pytorch.callbacks import Timer

        trainer = self._trainer
        timer = next((c for c in trainer.callbacks if isinstance(c, Timer)), None) if trainer is not None else None
        if timer is not None:
            return float(timer.time_elapsed("train"))
        return time.monotonic() - self._fit_started if self._fit_started is not None else 0.0

    def _progress(self) -> float:
        progress = self.global_step / self.total_steps
        budget = self.train_config.max_minutes
        if budget:
            progress = max(progress, self._elapsed_s() / (60.0 * budget))
        return min(progress, 1.0)

    def _lr_factor(self, _step: int) -> float:
        schedule = self.train_config.lr_schedule
        if schedule == "none":
            return 1.0
        p = self._progress()
        warmup = WARMUP_FRACTION if schedule == "onecycle" else 0.0
        if p < warmup:
            return WARMUP_START + (1.0 - WARMUP_START) * p / warmup
        q = (p - warmup) / (1.0 - warmup)
        return LR_FLOOR + (1.0 - LR_FLOOR) * 0.5 * (1.0 + math.cos(math.pi * q))

    def configure_optimizers(self):
        cfg = self.train_config
        if cfg.optimizer == "sgd":
            opt = torch.optim.SGD(self.parameters(), lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay)
        else:
            opt = torch.optim.AdamW(self.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        if cfg.lr_schedule == "multistep":  # lr ÷ 10 at each milestone epoch (the CGCNN reference's MultiStepLR)
            sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=list(cfg.lr_milestones), gamma=0.1)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}
        sched = torch.optim.lr_scheduler.LambdaLR(opt, self._lr_factor)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
