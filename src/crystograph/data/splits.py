"""Seeded splits: k-fold cross-validation and a train/validation holdout."""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import KFold

from crystograph.errors import ConfigError


def kfold_indices(n: int, k: int = 5, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """[(train_idx, test_idx)] for k shuffled folds; the same (n, k, seed) always gives the same folds."""
    if k < 2:
        raise ConfigError(f"k-fold cross-validation needs k >= 2 (got {k})")
    if n < k:
        raise ConfigError(f"{n} samples cannot be split into {k} folds")
    return [(tr, te) for tr, te in KFold(k, shuffle=True, random_state=seed).split(np.arange(n))]


def train_val_split(n: int, val_fraction: float = 0.1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Shuffled holdout split; at least one validation sample whenever n >= 2."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    n_val = int(round(n * val_fraction))
    n_val = min(max(n_val, 1 if n >= 2 else 0), max(n - 1, 0))
    return np.sort(order[n_val:]), np.sort(order[:n_val])
