"""A fit killed in the middle of an epoch resumes from its mid-epoch checkpoint and ends where an uninterrupted
fit ends: the rest of the interrupted epoch sees exactly the batches it would have seen."""

from __future__ import annotations

import importlib
import json
import time
import warnings

import numpy as np
import pytest
import torch

from crystograph.config import ModelConfig, TrainConfig
from crystograph.data import build_graphs
from crystograph.nn import CrysToGraph
from crystograph.train.checkpoints import batches_done_in_epoch, interval_checkpoint, resumable_checkpoint
from tests.helpers_data import synthetic_records

fit_mod = importlib.import_module("crystograph.train.fit")  # the module (`crystograph.train.fit` is also a function)


class Killed(RuntimeError):
    pass


def _killing_checkpoint(at_step: int, pause_s: float = 0.0):
    """An interval checkpoint written after every batch, which 'kills' the fit right after writing step `at_step`
    (and, before that, pauses `pause_s` seconds after step 1: training time the resumed fit must count)."""
    base = interval_checkpoint

    def make(ckpt_dir, minutes=None):
        cb = base(ckpt_dir, minutes=1e-9)
        original = cb.on_train_batch_end

        def on_train_batch_end(trainer, *args, **kwargs):
            if trainer.global_step == 1:
                time.sleep(pause_s)
            original(trainer, *args, **kwargs)
            if trainer.global_step == at_step:
                raise Killed(f"killed after step {at_step}")

        cb.on_train_batch_end = on_train_batch_end
        return cb

    return make


def _fit(graphs, out_dir):
    torch.manual_seed(0)
    model = CrysToGraph(ModelConfig.preset("small", hidden_dim=16, num_heads=2, head_dim=8, n_etgc=1))
    tcfg = TrainConfig(lr=3e-3, epochs=3, batch_size=4, patience=0, deterministic=True, seed=1)
    result = fit_mod.fit(model, graphs[:20], graphs[20:], tcfg, out_dir, progress=False)
    return fit_mod.predict(result.module, graphs[20:])


@pytest.mark.slow
def test_kill_mid_epoch_then_resume_matches_uninterrupted(tmp_path, monkeypatch):
    graphs, _ = build_graphs(synthetic_records(24), targets=["a"], progress=False)
    full = _fit(graphs, tmp_path / "full")  # 3 epochs of 5 batches

    run = tmp_path / "killed"
    monkeypatch.setattr(fit_mod, "interval_checkpoint", _killing_checkpoint(at_step=7, pause_s=3.0))  # epoch 1
    with pytest.raises(Killed):
        _fit(graphs, run)
    ckpt = resumable_checkpoint(run / "checkpoints" / "last.ckpt", True)
    assert ckpt.name == "interval.ckpt" and batches_done_in_epoch(ckpt) == (1, 2)
    monkeypatch.undo()
    started = time.monotonic()
    resumed = _fit(graphs, run)
    np.testing.assert_allclose(resumed, full, rtol=1e-5, atol=1e-6)
    wall_s = json.loads((run / "fit.json").read_text())["wall_s"]
    assert 3.0 <= wall_s <= 3.0 + (time.monotonic() - started) + 60  # the killed run's seconds are counted


def test_sampler_skips_the_trained_batches_of_the_resumed_epoch_only():
    sampler = fit_mod.EpochShuffleSampler(10, seed=3, batch_size=4)
    sampler.set_epoch(2)
    whole = list(sampler)
    sampler.resume_within(2, 1)
    assert list(sampler) == whole[4:] and len(sampler) == 10
    sampler.set_epoch(3)
    assert len(list(sampler)) == 10  # later epochs are whole


def test_resume_in_the_last_epoch_of_a_step_budget_with_early_stopping(tmp_path, monkeypatch):
    """A step budget that ends mid-epoch leaves that epoch without a validation; a fit resumed inside it (a fresh
    process: no validation metric logged yet) must still finish, with early stopping on."""
    graphs, _ = build_graphs(synthetic_records(24), targets=["a"], progress=False)

    def fit_once(out_dir):
        torch.manual_seed(0)
        model = CrysToGraph(ModelConfig.preset("small", hidden_dim=16, num_heads=2, head_dim=8, n_etgc=1))
        tcfg = TrainConfig(lr=3e-3, epochs=5, max_steps=12, batch_size=4, patience=3, seed=1)
        return fit_mod.fit(model, graphs[:20], graphs[20:], tcfg, out_dir, progress=False)

    run = tmp_path / "killed"
    monkeypatch.setattr(fit_mod, "interval_checkpoint", _killing_checkpoint(at_step=11))  # epoch 2, batch 1 of 5
    with pytest.raises(Killed):
        fit_once(run)
    monkeypatch.undo()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fit_once(run)
    assert result.epochs == 3 and np.isfinite(result.val_mae)  # two whole epochs and the budget's partial third
    # the partial epoch has no validation: best.ckpt is not considered there (Lightning warned that val_mae was missing)
    assert not [w for w in caught if "could not find the monitored key" in str(w.message)]
