"""Checkpoint callbacks and resume helpers shared by supervised training and pretraining."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch


def checkpoint_callbacks(ckpt_dir: Path, monitor: str):
    """`best.ckpt` (lowest `monitor`) and `last.ckpt` (every epoch).

    `ModelCheckpoint(monitor=..., save_last=True)` rewrites last.ckpt only in epochs where the
    monitored value improves (Lightning 2.6), so a resume would restart from the best epoch; a
    second, unmonitored checkpoint keeps the latest epoch instead.
    """
    from lightning.pytorch.callbacks import ModelCheckpoint

    best = ModelCheckpoint(dirpath=ckpt_dir, filename="best", monitor=monitor, mode="min",
                           enable_version_counter=False)
    latest = ModelCheckpoint(dirpath=ckpt_dir, filename="last", monitor=None, save_top_k=1,
                             enable_version_counter=False)
    return best, latest


def resumable_checkpoint(last: Path, resume: bool) -> Path | None:
    """`last` if a resume should start from it; an unreadable one (a job killed while writing it) is
    removed with a warning and the fit starts afresh."""
    if not (resume and last.exists()):
        return None
    try:
        torch.load(last, map_location="cpu", weights_only=True)
    except Exception:
        warnings.warn(f"{last}: unreadable (the job was probably killed while writing it); starting afresh",
                      stacklevel=2)
        last.unlink()
        return None
    return last


def read_metrics(metrics_csv: Path):
    """The CSV log of an earlier (interrupted) fit, or None; CSVLogger starts the file afresh on resume."""
    import pandas as pd

    if metrics_csv.exists() and metrics_csv.stat().st_size > 0:
        return pd.read_csv(metrics_csv)
    return None


def merge_metrics(metrics_csv: Path, previous) -> None:
    """After a resume, put back the rows of the earlier run(s) for the epochs the new log lacks."""
    import pandas as pd

    if previous is None or len(previous) == 0:
        return
    if metrics_csv.exists() and metrics_csv.stat().st_size > 0:
        new = pd.read_csv(metrics_csv)
        start = new["epoch"].min() if "epoch" in new and len(new) else float("inf")
        merged = pd.concat([previous[previous["epoch"] < start], new], ignore_index=True, sort=False)
    else:
        merged = previous
    merged.to_csv(metrics_csv, index=False)
