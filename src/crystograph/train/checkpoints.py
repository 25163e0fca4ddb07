"""Checkpoint callbacks and resume helpers shared by supervised training and pretraining."""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path

import torch
from lightning.pytorch.callbacks import Callback

from crystograph.train.export import write_atomic


def checkpoint_callbacks(ckpt_dir: Path, monitor: str):
    """`best.ckpt` (lowest `monitor`) and `last.ckpt` (every epoch).

    `ModelCheckpoint(monitor=..., save_last=True)` rewrites last.ckpt only in epochs where the
    monitored value improves (Lightning 2.6), so a resume would restart from the best epoch; a
    second, unmonitored checkpoint keeps the latest epoch instead. `best.ckpt` is considered only where
    `monitor` exists, at the end of a validation run: an epoch cut short by a step budget (no validation)
    would otherwise be checked at its train-epoch end, without the value.
    """
    from lightning.pytorch.callbacks import ModelCheckpoint

    best = ModelCheckpoint(dirpath=ckpt_dir, filename="best", monitor=monitor, mode="min",
                           enable_version_counter=False, save_on_train_epoch_end=False)
    latest = ModelCheckpoint(dirpath=ckpt_dir, filename="last", monitor=None, save_top_k=1,
                             enable_version_counter=False)
    return best, latest


# A mid-epoch checkpoint at most this often (env CRYSTOGRAPH_CHECKPOINT_MINUTES): a kill loses minutes, not an epoch.
INTERVAL_MINUTES = float(os.environ.get("CRYSTOGRAPH_CHECKPOINT_MINUTES", "10"))
INTERVAL_NAME = "interval"


class WallClock(Callback):
    """Seconds a fit has trained, across resumes: the count rides in every checkpoint (this callback's state) and
    a resumed fit continues from the checkpoint's count (time after that checkpoint, lost by a kill, is not
    counted). `elapsed()` is the count now."""

    def __init__(self):
        self.before, self.started = 0.0, time.monotonic()

    def elapsed(self) -> float:
        return self.before + time.monotonic() - self.started

    def on_fit_start(self, trainer, pl_module) -> None:
        self.started = time.monotonic()  # after the restore of a resumed fit, which set `before`

    def state_dict(self) -> dict[str, float]:
        return {"elapsed_s": self.elapsed()}

    def load_state_dict(self, state_dict: dict[str, float]) -> None:
        self.before, self.started = float(state_dict.get("elapsed_s", 0.0)), time.monotonic()


def interval_checkpoint(ckpt_dir: Path, minutes: float = INTERVAL_MINUTES):
    """`interval.ckpt`, rewritten every `minutes` of training inside an epoch (long epochs on large datasets)."""
    from datetime import timedelta

    from lightning.pytorch.callbacks import ModelCheckpoint

    return ModelCheckpoint(dirpath=ckpt_dir, filename=INTERVAL_NAME, monitor=None, save_top_k=1,
                           train_time_interval=timedelta(minutes=minutes), enable_version_counter=False)


def _readable(path: Path, remove: bool) -> dict | None:
    """The checkpoint at `path`, or None; an unreadable one (a job killed while writing it) is removed."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        if remove:
            warnings.warn(f"{path}: unreadable (the job was probably killed while writing it); not resuming from "
                          "it", stacklevel=3)
            path.unlink(missing_ok=True)
        return None


def resumable_checkpoint(last: Path, resume: bool, *, remove_unreadable: bool = True) -> Path | None:
    """The newest readable checkpoint to resume from: `last` (end of an epoch) or, beside it, `interval.ckpt`
    (mid-epoch) when that one is further along; None to start afresh. Unreadable ones are removed (by one
    process only: `remove_unreadable`)."""
    if not resume:
        return None
    candidates = []
    for path in (last, last.with_name(f"{INTERVAL_NAME}.ckpt")):
        state = _readable(path, remove_unreadable) if path.exists() else None
        if state is not None:
            candidates.append((int(state.get("global_step", 0)), path == last, path))
    return max(candidates)[2] if candidates else None  # ties: the end-of-epoch checkpoint


def batches_done_in_epoch(path: Path | None) -> tuple[int, int]:
    """(epoch, batches of it already trained) of a mid-epoch checkpoint; (0, 0) for an end-of-epoch one."""
    if path is None:
        return 0, 0
    state = torch.load(path, map_location="cpu", weights_only=True)
    progress = state["loops"]["fit_loop"]["epoch_loop.batch_progress"]
    if progress.get("is_last_batch", True):
        return 0, 0
    # `processed`: batches whose optimiser step is in the saved weights (the checkpoint is written inside the
    # batch-end hook, before Lightning counts that batch as `completed`)
    return int(state["epoch"]), int(progress["current"]["processed"])


def _earlier_path(metrics_csv: Path) -> Path:
    return metrics_csv.with_name(metrics_csv.stem + ".earlier.csv")


def _read_csv(path: Path):
    import pandas as pd

    if path.exists() and path.stat().st_size > 0:
        return pd.read_csv(path)
    return None


def _join(earlier, later):
    """Rows of `earlier` for the epochs before `later` starts, then `later` (either may be None)."""
    import pandas as pd

    if earlier is None or len(earlier) == 0:
        return later
    if later is None or len(later) == 0 or "epoch" not in later:
        return earlier
    start = later["epoch"].min()
    return pd.concat([earlier[earlier["epoch"] < start], later], ignore_index=True, sort=False)


def read_metrics(metrics_csv: Path, resuming: bool = True):
    """Before a fit: when `resuming`, the CSV log of the earlier sittings (or None); a fresh fit gets None and
    any stale earlier log is removed.

    CSVLogger deletes ``metrics.csv`` when a fit starts, so the rows logged so far are first saved (atomically)
    to ``metrics.earlier.csv`` and stay there until `merge_metrics` folds them back: a resumed fit that is
    killed again loses no epoch of its learning curve."""
    metrics_csv = Path(metrics_csv)
    earlier = _earlier_path(metrics_csv)
    if not resuming:
        earlier.unlink(missing_ok=True)
        return None
    rows = _join(_read_csv(earlier), _read_csv(metrics_csv))
    if rows is not None:
        write_atomic(earlier, writer=lambda tmp: rows.to_csv(tmp, index=False))
    return rows


def merge_metrics(metrics_csv: Path, previous) -> None:
    """After a resumed fit: the earlier rows for the epochs the new log lacks, then the new log, in
    ``metrics.csv``; ``metrics.earlier.csv`` is then removed."""
    metrics_csv = Path(metrics_csv)
    merged = _join(previous, _read_csv(metrics_csv))
    if merged is not None:
        write_atomic(metrics_csv, writer=lambda tmp: merged.to_csv(tmp, index=False))
    _earlier_path(metrics_csv).unlink(missing_ok=True)
