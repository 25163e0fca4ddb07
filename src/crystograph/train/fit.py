"""Fit one network on graphs with Lightning; predict; fit-then-predict for benchmarks.

`fit` writes into `out_dir`: `checkpoints/{best,last}.ckpt` (resumable: a rerun continues from
`last.ckpt`), `metrics.csv` (CSV log), `learning_curve.png`, and `fit.json` (best validation MAE,
epochs, wall time).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch_geometric.loader import DataLoader

from crystograph.config import TrainConfig
from crystograph.data import TargetScaler, stack_targets, train_val_split
from crystograph.data.store import take
from crystograph.device import lightning_accelerator, resolve_device
from crystograph.errors import ConfigError
from crystograph.train.checkpoints import (
    batches_done_in_epoch,
    checkpoint_callbacks,
    interval_checkpoint,
    merge_metrics,
    read_metrics,
    resumable_checkpoint,
    WallClock,
)
from crystograph.train.quiet import quiet_lightning
from crystograph.train.module import PropertyModule

quiet_lightning()

SEED_STRIDE = 100_003  # a prime: (seed, epoch) pairs map to distinct shuffling seeds for any epoch < SEED_STRIDE


@dataclass
class FitResult:
    out_dir: Path
    best_checkpoint: Path
    val_mae: float
    epochs: int
    wall_s: float
    module: PropertyModule


class EpochShuffleSampler(torch.utils.data.Sampler):
    """Shuffles with a permutation that depends only on (seed, epoch), so a run resumed from a
    checkpoint sees exactly the batches an uninterrupted run would (Lightning calls `set_epoch`).

    In a DDP job each global batch of `batch_size` graphs is split into `world_size` slices and
    process `rank` takes its slice: together the processes train on exactly the batches a single
    process would, so (with synchronised BatchNorm) one and many processes follow the same path.
    """

    def __init__(self, n: int, seed: int = 0, batch_size: int = 1, rank: int = 0, world_size: int = 1):
        self.n, self.seed, self.epoch = n, seed, 0
        self.batch_size, self.rank, self.world_size = batch_size, rank, world_size
        self._skip = (-1, 0)  # (epoch, batches already trained in it): see resume_within

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def resume_within(self, epoch: int, batches_done: int) -> None:
        """Skip the first `batches_done` batches of `epoch` (a resume from a mid-epoch checkpoint), so the rest of
        that epoch sees exactly the batches an uninterrupted run would."""
        self._skip = (epoch, batches_done)

    def _indices(self) -> list[int]:
        order = self._order()
        epoch, done = self._skip
        if epoch == self.epoch and done:
            per_process = max(1, self.batch_size // self.world_size)
            order = order[done * per_process:]
        return order

    def __len__(self) -> int:
        return len(self._order())  # the whole epoch: Lightning counts the skipped batches as done

    def _order(self) -> list[int]:
        generator = torch.Generator().manual_seed(self.seed * SEED_STRIDE + self.epoch)
        order = torch.randperm(self.n, generator=generator).tolist()
        if self.world_size == 1:
            return order
        mine = []
        for start in range(0, self.n, self.batch_size):
            chunk = order[start:start + self.batch_size]
            if len(chunk) < self.world_size:
                break  # a global batch too small to give every process a graph
            mine.extend(chunk[self.rank::self.world_size])
        return mine

    def __iter__(self):
        return iter(self._indices())


def _rank_and_world(train_config: TrainConfig) -> tuple[int, int]:
    """This process's global rank and the number of training processes (1 outside DDP)."""
    import os

    devices = train_config.devices if isinstance(train_config.devices, int) else 1
    world = max(devices, 1) * max(train_config.num_nodes, 1)
    if world == 1:
        return 0, 1
    local = int(os.environ.get("LOCAL_RANK", "0"))
    node = int(os.environ.get("NODE_RANK", "0"))
    return int(os.environ.get("RANK", node * devices + local)), world


def graph_loader(graphs, batch_size: int, shuffle: bool, seed: int = 0, rank: int = 0, world_size: int = 1,
                 num_workers: int = 0) -> DataLoader:
    """Batches of graphs; shuffled with `EpochShuffleSampler` when training (resumable, DDP-sharded).
    `num_workers` > 0 collates batches in that many worker processes."""
    dataset = graphs if isinstance(graphs, Sequence) else list(graphs)  # a graph store is read on access
    if not shuffle:
        return DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    # BatchNorm cannot train on a batch of one graph with one node; drop a lone last sample.
    drop_last = len(graphs) > batch_size and len(graphs) % batch_size == 1
    sampler = EpochShuffleSampler(len(graphs), seed, batch_size, rank, world_size)
    per_process = max(1, batch_size // world_size)
    return DataLoader(dataset, batch_size=per_process, sampler=sampler, drop_last=drop_last and world_size == 1,
                      num_workers=num_workers)


def _plot_learning_curve(metrics_csv: Path, out_png: Path) -> None:
    import pandas as pd

    from crystograph.plots import learning_curve

    if metrics_csv.exists():
        learning_curve(pd.read_csv(metrics_csv), out_png)


def make_trainer(out_dir: Path, monitor: str, *, max_epochs: int, max_minutes: float | None, progress: bool,
                 steps_per_epoch: int, extra_callbacks: Sequence = (), **trainer_kwargs):
    """The Lightning Trainer of every crystograph fit (supervised training, pretraining, benchmark folds):
    best and last checkpoints under ``out_dir/checkpoints`` (a rerun resumes from ``last.ckpt``), the CSV log
    ``out_dir/metrics.csv``, an optional wall-clock budget, no sanity validation, no model summary.
    Returns (trainer, the best-checkpoint callback)."""
    import lightning.pytorch as pl
    from lightning.pytorch.loggers import CSVLogger

    checkpoint, latest = checkpoint_callbacks(Path(out_dir) / "checkpoints", monitor)
    trainer = pl.Trainer(
        max_epochs=max_epochs,
        max_time=timedelta(minutes=max_minutes) if max_minutes else None,
        callbacks=[checkpoint, latest, *extra_callbacks],
        logger=CSVLogger(save_dir=out_dir, name="", version=""),
        enable_progress_bar=progress,
        enable_model_summary=False,
        log_every_n_steps=max(1, min(50, steps_per_epoch)),
        num_sanity_val_steps=0,
        **trainer_kwargs,
    )
    return trainer, checkpoint


def _property_module(model: nn.Module, train_graphs: Sequence, train_config: TrainConfig, task: str):
    """(module with the target scaler and schedule length, optimiser steps per epoch)."""
    if len(train_graphs) == 0:
        raise ConfigError("no training graphs")
    y_train = stack_targets(train_graphs)
    if task == "classification" and not np.isin(y_train, (0.0, 1.0)).all():
        raise ConfigError("classification needs targets of 0 or 1 (found other values); use task='regression'")
    scaler = TargetScaler.fit(y_train) if task == "regression" else TargetScaler.identity(y_train.shape[1])
    steps_per_epoch = max(1, math.ceil(len(train_graphs) / train_config.batch_size))
    total_steps = min(steps_per_epoch * train_config.epochs, train_config.max_steps or 2**62)
    module = PropertyModule(model, train_config, task=task, y_mean=scaler.mean, y_std=scaler.std,
                            total_steps=total_steps)
    return module, steps_per_epoch


def fit(
    model: nn.Module,
    train_graphs: Sequence,
    val_graphs: Sequence,
    train_config: TrainConfig,
    out_dir: Path | str,
    *,
    task: str = "regression",
    resume: bool = True,
    progress: bool = True,
    seed: int | None = None,
) -> FitResult:
    import lightning.pytorch as pl
    from lightning.pytorch.callbacks import EarlyStopping

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    seed = train_config.seed if seed is None else seed
    pl.seed_everything(seed, workers=True, verbose=False)
    module, steps_per_epoch = _property_module(model, train_graphs, train_config, task)

    # DDP: every process loads its slice of each global batch (see EpochShuffleSampler).
    rank, world = _rank_and_world(train_config)
    if world > 1 and train_config.batch_size % world:
        raise ConfigError(f"--batch-size {train_config.batch_size} must be a multiple of the {world} training "
                          "processes (each process takes an equal slice of every batch)")
    has_val = len(val_graphs) > 0
    monitor = "val_mae" if has_val else "train_loss"
    # checked when a validation ends (the same decisions as at the epoch's end): a step budget can end an epoch
    # before its validation, and a fit resumed in that epoch has no validation metric to check there
    early = ([EarlyStopping(monitor=monitor, mode="min", patience=train_config.patience,
                            check_on_train_epoch_end=False)]
             if has_val and train_config.patience > 0 else [])
    accelerator = lightning_accelerator(train_config.accelerator)
    trainer, checkpoint = make_trainer(
        out_dir, monitor, max_epochs=train_config.epochs, max_minutes=train_config.max_minutes, progress=progress,
        steps_per_epoch=steps_per_epoch,
        extra_callbacks=[*early, interval_checkpoint(out_dir / "checkpoints"), clock := WallClock()],
        max_steps=train_config.max_steps or -1,
        accelerator=accelerator,
        devices=train_config.devices,
        num_nodes=train_config.num_nodes,
        strategy=train_config.strategy,
        deterministic=train_config.deterministic,
        use_distributed_sampler=False,  # EpochShuffleSampler shards the data itself
        sync_batchnorm=world > 1 and accelerator in ("gpu", "auto")
        and torch.cuda.is_available(),  # SyncBatchNorm is GPU-only; CPU processes normalise per slice
    )
    last = out_dir / "checkpoints" / "last.ckpt"
    resume_from = resumable_checkpoint(last, resume, remove_unreadable=rank == 0)
    previous_metrics = read_metrics(out_dir / "metrics.csv", resuming=bool(resume_from)) if rank == 0 else None
    train_loader = graph_loader(train_graphs, train_config.batch_size, shuffle=True, seed=seed, rank=rank,
                                world_size=world, num_workers=train_config.num_workers)
    train_loader.sampler.resume_within(*batches_done_in_epoch(resume_from))
    trainer.fit(
        module,
        train_dataloaders=train_loader,
        val_dataloaders=graph_loader(val_graphs, train_config.batch_size, shuffle=False,
                                     num_workers=train_config.num_workers) if has_val else None,
        ckpt_path=resume_from,
        weights_only=True,
    )
    wall_s = clock.elapsed()  # seconds of training, earlier runs of a resumed fit included
    if trainer.is_global_zero:
        merge_metrics(out_dir / "metrics.csv", previous_metrics)

    best_path = Path(checkpoint.best_model_path) if checkpoint.best_model_path else last
    if trainer.is_global_zero:
        from crystograph.train.export import load_lightning_state

        module.load_state_dict(load_lightning_state(best_path))
    best = checkpoint.best_model_score
    val_mae = float(best) if best is not None and has_val else float("nan")  # no validation set: no val MAE
    result = FitResult(out_dir, best_path, val_mae, int(trainer.current_epoch), wall_s, module)
    if trainer.is_global_zero:
        (out_dir / "fit.json").write_text(json.dumps(
            {"best_" + monitor: float(best) if best is not None else float("nan"), "epochs": result.epochs,
             "wall_s": wall_s, "seed": seed, "n_train": len(train_graphs), "n_val": len(val_graphs),
             "world_size": trainer.world_size}, indent=2))
        _plot_learning_curve(out_dir / "metrics.csv", out_dir / "learning_curve.png")
    return result


def is_global_zero() -> bool:
    """True outside distributed runs and on rank 0 of a DDP job (Lightning sets RANK/LOCAL_RANK)."""
    import os

    return int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0"))) == 0


@torch.no_grad()
def predict(model: nn.Module, graphs: Sequence, batch_size: int = 64, device: str | None = "auto") -> np.ndarray:
    """`model(batch)` for every graph, stacked [N, T]. For a `PropertyModule` (what `fit` returns) that is in
    target units (probabilities for classification); a bare network gives its raw output (standardised values
    or logits), which `crystograph.train.export.to_units` converts with the run's manifest."""
    dev = resolve_device(device)
    model = model.to(dev).eval()
    outputs = []
    for batch in graph_loader(graphs, batch_size, shuffle=False):
        outputs.append(model(batch.to(dev)))
    if not outputs:
        return np.zeros((0, 1), dtype=np.float32)
    return torch.cat(outputs).float().cpu().numpy()


def fit_predict(
    model_factory: Callable[[], nn.Module],
    train_graphs: Sequence,
    test_graphs: Sequence,
    train_config: TrainConfig,
    out_dir: Path | str,
    task: str = "regression",
    *,
    progress: bool = True,
) -> np.ndarray:
    """Hold out `val_fraction` of the training graphs for early stopping, fit, predict the test graphs."""
    tr, va = train_val_split(len(train_graphs), train_config.val_fraction, seed=train_config.seed)
    result = fit(model_factory(), take(train_graphs, tr), take(train_graphs, va), train_config,
                 out_dir, task=task, progress=progress)
    return predict(result.module, test_graphs, batch_size=max(64, train_config.batch_size))
