"""benchmarks/carry_runs.py: finished folds travel to a new run folder, unfinished work and checkpoints do not."""

from __future__ import annotations

import pytest

from tests.conftest import bench_script

carry = bench_script("carry_runs")


def _runs(root):
    model = root / "bench" / "converged" / "task" / "crystograph-small"
    done, busy = model / "fold_0", model / "fold_1"
    for path, text in [(model / "settings.json", "{}"), (done / "fold.json", '{"score": 1}'),
                       (done / "predictions.csv", "id,y\n"), (done / "train" / "metrics.csv", "epoch\n"),
                       (done / "train" / "member.json", "{}"), (done / "train" / "checkpoints" / "last.ckpt", "x"),
                       (busy / "train" / "metrics.csv", "epoch\n"), (busy / "train" / "checkpoints" / "last.ckpt", "x"),
                       (root / "fair" / "alignn" / "t__alignn__fold0.csv", "id,target,pred\n"),
                       (root / "fair" / "alignn" / "t__alignn__fold0.json", "{}"),
                       (root / "fair" / "alignn" / "t__alignn__settings.json", "{}"),
                       (root / "fair" / "alignn" / "t__alignn__fold1.json", "{}")]:  # fold 1: no CSV, unfinished
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_save_then_restore_moves_finished_folds_only(tmp_path):
    runs, kept, fresh = tmp_path / "runs", tmp_path / "carry", tmp_path / "fresh"
    _runs(runs)
    carry.main(["save", "--runs", str(runs), "--to", str(kept)])
    carried = sorted(str(p.relative_to(kept)) for p in kept.rglob("*") if p.is_file())
    assert carried == sorted([
        "bench/converged/task/crystograph-small/settings.json",
        "bench/converged/task/crystograph-small/fold_0/fold.json",
        "bench/converged/task/crystograph-small/fold_0/predictions.csv",
        "bench/converged/task/crystograph-small/fold_0/train/metrics.csv",
        "bench/converged/task/crystograph-small/fold_0/train/member.json",
        "fair/alignn/t__alignn__fold0.csv", "fair/alignn/t__alignn__fold0.json", "fair/alignn/t__alignn__settings.json",
    ])
    carry.main(["restore", "--runs", str(fresh), "--to", str(kept)])
    assert (fresh / "bench/converged/task/crystograph-small/fold_0/fold.json").read_text() == '{"score": 1}'
    carry.main(["restore", "--runs", str(fresh), "--to", str(kept)])  # again: nothing differs, nothing to do


def test_restore_never_overwrites_a_different_file(tmp_path):
    runs, kept = tmp_path / "runs", tmp_path / "carry"
    _runs(runs)
    carry.main(["save", "--runs", str(runs), "--to", str(kept)])
    (runs / "bench/converged/task/crystograph-small/fold_0/fold.json").write_text('{"score": 2}')
    with pytest.raises(SystemExit, match="differs"):
        carry.main(["restore", "--runs", str(runs), "--to", str(kept)])
    assert (runs / "bench/converged/task/crystograph-small/fold_0/fold.json").read_text() == '{"score": 2}'
