"""The learning curve of a fit resumed across several sittings keeps every epoch (CSVLogger deletes
metrics.csv when a fit starts; `read_metrics` / `merge_metrics` keep the earlier rows on disk)."""

from __future__ import annotations

import pandas as pd

from crystograph.train.checkpoints import merge_metrics, read_metrics


def _log(path, epochs):
    pd.DataFrame({"epoch": epochs, "step": [10 * e for e in epochs], "val_mae": [1.0 / (e + 1) for e in epochs]}
                 ).to_csv(path, index=False)


def _lightning_starts(path):
    path.unlink(missing_ok=True)  # what CSVLogger does when the resumed fit starts


def test_two_interrupted_sittings_then_a_finished_one_keep_every_epoch(tmp_path):
    csv = tmp_path / "metrics.csv"
    _log(csv, [0, 1, 2])  # sitting 1, killed after epoch 2
    read_metrics(csv)  # sitting 2 resumes
    _lightning_starts(csv)
    _log(csv, [3, 4])  # … and is killed after epoch 4: merge_metrics never runs
    previous = read_metrics(csv)  # sitting 3 resumes
    assert list(previous["epoch"]) == [0, 1, 2, 3, 4]
    _lightning_starts(csv)
    _log(csv, [4, 5, 6])  # epoch 4 is redone from the epoch-3 checkpoint
    merge_metrics(csv, previous)
    merged = pd.read_csv(csv)
    assert list(merged["epoch"]) == [0, 1, 2, 3, 4, 5, 6]
    assert not (tmp_path / "metrics.earlier.csv").exists()


def test_a_fresh_fit_forgets_a_stale_earlier_log(tmp_path):
    csv = tmp_path / "metrics.csv"
    _log(tmp_path / "metrics.earlier.csv", [0, 1, 2, 3])
    assert read_metrics(csv, resuming=False) is None
    assert not (tmp_path / "metrics.earlier.csv").exists()
    _log(csv, [0, 1])
    merge_metrics(csv, None)
    assert list(pd.read_csv(csv)["epoch"]) == [0, 1]
