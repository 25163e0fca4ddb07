"""Killed jobs resume to the same result; multi-process (DDP, gloo) training matches one process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers_data import synthetic_records, write_csv

CLI = [sys.executable, "-m", "crystograph.cli"]


def _env(cache: Path) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", CRYSTOGRAPH_CACHE=str(cache), PYTHONWARNINGS="ignore")
    return env


def _train_args(data: Path, out: Path, *extra: str, epochs: int = 8, batch_size: int = 4) -> list[str]:
    return [*CLI, "train", str(data), "--target", "a", "--out", str(out), "--epochs", str(epochs), "--batch-size",
            str(batch_size), "--lr", "0.003", "--patience", "0", "--deterministic", "--no-progress", "--preset",
            "small", *extra]


@pytest.mark.slow
def test_sigkill_mid_training_then_resume_matches_uninterrupted(tmp_path):
    data = write_csv(synthetic_records(48), tmp_path / "syn.csv")
    env = _env(tmp_path / "cache")
    full = tmp_path / "full"
    subprocess.run(_train_args(data, full), env=env, check=True, capture_output=True, timeout=600)

    killed = tmp_path / "killed"
    member = killed / "fold_0" / "member_0"
    proc = subprocess.Popen(_train_args(data, killed), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not (member / "checkpoints" / "last.ckpt").exists():  # at least one epoch is saved …
        assert proc.poll() is None, "training finished before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.3)  # … and the next epoch is under way
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (member / "model.json").exists(), "the run finished before the kill; nothing was tested"

    resumed = subprocess.run(_train_args(data, killed), env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    a = json.loads((full / "summary.json").read_text())
    b = json.loads((killed / "summary.json").read_text())
    assert b["fold_mae"] == pytest.approx(a["fold_mae"], rel=1e-5, abs=1e-6)
    epochs = json.loads((member / "fit.json").read_text())["epochs"]
    assert epochs == json.loads((full / "fold_0" / "member_0" / "fit.json").read_text())["epochs"]
    val_epochs = [pd.read_csv(d / "fold_0" / "member_0" / "metrics.csv").dropna(subset=["val_mae"])["epoch"].tolist()
                  for d in (full, killed)]
    assert val_epochs[1] == val_epochs[0]  # the learning curve survives the kill


@pytest.mark.slow
def test_ddp_two_cpu_processes_match_one_process(tmp_path):
    data = write_csv(synthetic_records(48), tmp_path / "syn.csv")
    env = _env(tmp_path / "cache")
    one, two = tmp_path / "one", tmp_path / "two"
    sizes = {"epochs": 25, "batch_size": 16}
    subprocess.run(_train_args(data, one, "--device", "cpu", **sizes), env=env, check=True, capture_output=True,
                   timeout=600)
    ddp = subprocess.run(_train_args(data, two, "--device", "cpu", "--devices", "2", "--strategy", "ddp", **sizes),
                         env=env, capture_output=True, text=True, timeout=600)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    a = json.loads((one / "summary.json").read_text())
    b = json.loads((two / "summary.json").read_text())
    # The same global batches in the same order; on CPU only the BatchNorm statistics differ (each process
    # normalises its half of the batch; SyncBatchNorm is GPU-only), hence a tolerance.
    assert json.loads((two / "fold_0" / "member_0" / "fit.json").read_text())["world_size"] == 2
    assert abs(b["mean_mae"] - a["mean_mae"]) < 0.25 * a["mean_dummy_mae"], (a["mean_mae"], b["mean_mae"])
    assert b["mean_mae"] < 0.5 * b["mean_dummy_mae"]
