"""Keep Lightning's console output to what a user needs (progress bar, warnings that matter)."""

from __future__ import annotations

import logging
import warnings

_NOISE = (
    ".*does not have many workers.*",
    ".*Checkpoint directory.*exists and is not empty.*",
    ".*number of training batches.*smaller than the logging interval.*",
    ".*Experiment logs directory.*exists and is not empty.*",
    ".*LeafSpec.*",
    # a mid-epoch resume: the sampler skips the batches already trained (`checkpoints.batches_done_in_epoch`)
    ".*resuming from a checkpoint that ended before the epoch ended.*",
)


def quiet_lightning() -> None:
    for name in ("lightning.pytorch", "lightning.fabric", "pytorch_lightning", "lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
    for pattern in _NOISE:
        warnings.filterwarnings("ignore", message=pattern)
