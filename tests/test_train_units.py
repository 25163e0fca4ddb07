"""Small pieces of training, each on its own: the learning-rate schedule, the epoch sampler across DDP ranks,
target standardisation, and benchmark scoring."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from crystograph.bench.runner import score
from crystograph.config import TrainConfig
from crystograph.data import TargetScaler
from crystograph.train.fit import EpochShuffleSampler
from crystograph.train.module import LR_FLOOR, WARMUP_FRACTION, WARMUP_START, PropertyModule


def _module(monkeypatch, progress: float, **cfg) -> PropertyModule:
    module = PropertyModule(torch.nn.Linear(1, 1), TrainConfig(**cfg), total_steps=100)
    monkeypatch.setattr(module, "_progress", lambda: progress)
    return module


@pytest.mark.parametrize(("p", "factor"), [(0.0, WARMUP_START), (WARMUP_FRACTION / 2, (1 + WARMUP_START) / 2),
                                           (WARMUP_FRACTION, 1.0), (1.0, LR_FLOOR)])
def test_onecycle_warms_up_then_decays_to_the_floor(monkeypatch, p, factor):
    assert _module(monkeypatch, p, lr_schedule="onecycle")._lr_factor(0) == pytest.approx(factor)


def test_cosine_and_constant_schedules(monkeypatch):
    assert _module(monkeypatch, 0.0, lr_schedule="cosine")._lr_factor(0) == pytest.approx(1.0)
    assert _module(monkeypatch, 0.5, lr_schedule="cosine")._lr_factor(0) == pytest.approx((1 + LR_FLOOR) / 2)
    assert _module(monkeypatch, 1.0, lr_schedule="cosine")._lr_factor(0) == pytest.approx(LR_FLOOR)
    factors = [_module(monkeypatch, p, lr_schedule="cosine")._lr_factor(0) for p in np.linspace(0, 1, 11)]
    assert all(a > b for a, b in zip(factors, factors[1:]))  # monotone decay
    assert _module(monkeypatch, 0.7, lr_schedule="none")._lr_factor(0) == 1.0


def test_progress_is_the_larger_of_steps_and_time_budget(monkeypatch):
    monkeypatch.setattr(PropertyModule, "global_step", property(lambda self: 10))
    module = PropertyModule(torch.nn.Linear(1, 1), TrainConfig(max_minutes=2.0), total_steps=100)
    monkeypatch.setattr(module, "_elapsed_s", lambda: 60.0)  # half the budget, a tenth of the steps
    assert module._progress() == pytest.approx(0.5)
    monkeypatch.setattr(module, "_elapsed_s", lambda: 6.0)
    assert module._progress() == pytest.approx(0.1)
    monkeypatch.setattr(module, "_elapsed_s", lambda: 600.0)
    assert module._progress() == 1.0  # past the budget: stays at the floor
    no_budget = PropertyModule(torch.nn.Linear(1, 1), TrainConfig(max_minutes=None), total_steps=40)
    assert no_budget._progress() == pytest.approx(0.25)


def test_epoch_sampler_ranks_split_each_global_batch():
    n, batch = 22, 4
    single = EpochShuffleSampler(n, seed=3, batch_size=batch)
    ranks = [EpochShuffleSampler(n, seed=3, batch_size=batch, rank=r, world_size=2) for r in range(2)]
    for epoch in (0, 1):
        for s in (single, *ranks):
            s.set_epoch(epoch)
        order = list(single)
        assert sorted(order) == list(range(n))
        mine = [list(r) for r in ranks]
        assert not set(mine[0]) & set(mine[1])
        assert len(mine[0]) == len(mine[1]) == len(ranks[0]) == n // 2
        for k, start in enumerate(range(0, n, batch)):  # global batch k = rank 0's slice + rank 1's slice
            chunk = order[start:start + batch]
            half = len(chunk) // 2
            assert sorted(mine[0][k * 2:k * 2 + half] + mine[1][k * 2:k * 2 + half]) == sorted(chunk)
    single.set_epoch(0)
    first = list(single)
    single.set_epoch(1)
    assert list(single) != first
    single.set_epoch(0)
    assert list(single) == first  # depends only on (seed, epoch): a resumed run sees the same batches
    assert list(EpochShuffleSampler(n, seed=4, batch_size=batch)) != first


def test_epoch_sampler_drops_a_global_batch_too_small_to_share():
    ranks = [EpochShuffleSampler(9, seed=0, batch_size=4, rank=r, world_size=2) for r in range(2)]
    assert [len(r) for r in ranks] == [4, 4]  # the last global batch holds 1 graph: no rank gets it


def test_target_scaler_on_constant_targets():
    scaler = TargetScaler.fit(np.array([[3.0, 1.0], [3.0, 2.0], [3.0, 4.0]]))
    assert scaler.mean == pytest.approx([3.0, 7 / 3])
    assert scaler.std[0] == 1.0  # a constant column is centred, not divided by zero
    assert scaler.std[1] == pytest.approx(np.std([1.0, 2.0, 4.0]))
    one = TargetScaler.fit(np.array([5.0]))
    assert one.mean == [5.0] and one.std == [1.0] and all(map(math.isfinite, one.std))
    assert TargetScaler.identity(2) == TargetScaler(mean=[0.0, 0.0], std=[1.0, 1.0])


def test_roc_auc_and_mae_scores():
    y = np.array([0, 0, 1, 1])
    assert score(y, np.array([0.1, 0.4, 0.35, 0.8]), "ROC-AUC") == pytest.approx(0.75)
    assert score(y, np.array([0.1, 0.2, 0.8, 0.9]), "ROC-AUC") == 1.0
    assert score(y, np.array([0.9, 0.8, 0.2, 0.1]), "ROC-AUC") == 0.0
    assert math.isnan(score(np.ones(4), np.array([0.1, 0.2, 0.3, 0.4]), "ROC-AUC"))  # one class: undefined
    assert score(np.array([1.0, 2.0]), np.array([[1.5], [1.0]]), "MAE") == pytest.approx(0.75)


def test_train_presets_own_their_learning_rate():
    assert TrainConfig.preset("paper").lr == 1e-4 and TrainConfig.preset("small").lr == 1e-3
    assert TrainConfig.preset("small", lr=5e-4, seed=3).lr == 5e-4
    with pytest.raises(ValueError, match="preset"):
        TrainConfig.preset("huge")
