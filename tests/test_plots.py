"""Plots are written as PNGs without touching the caller's matplotlib backend."""

from __future__ import annotations

import numpy as np
import pandas as pd

from crystograph.plots import learning_curve, parity_plot


def test_plotting_keeps_the_callers_backend(tmp_path):
    import matplotlib

    before = matplotlib.get_backend()
    matplotlib.use("svg")
    try:
        parity_plot([1.0, 2.0], [1.0, 3.0], tmp_path / "p.png")
        assert matplotlib.get_backend() == "svg"
    finally:
        matplotlib.use(before)


def test_parity_and_learning_curve_pngs(tmp_path):
    parity = parity_plot(np.arange(5.0), np.arange(5.0) + 0.5, tmp_path / "parity.png", unit="eV", baseline_mae=1.0)
    metrics = pd.DataFrame({"epoch": [0, 0, 1, 1], "train_loss": [1.0, None, 0.5, None],
                            "val_mae": [None, 2.0, None, 1.0]})
    curve = learning_curve(metrics, tmp_path / "curve.png")
    for path in (parity, curve):
        assert path.read_bytes()[:4] == b"\x89PNG" and path.stat().st_size > 1000


def test_roc_plot_for_classification_tasks(tmp_path):
    from crystograph.bench.registry import TASKS
    from crystograph.bench.runner import _plot

    task = next(t for t in TASKS.values() if t.metric != "MAE")
    preds = tmp_path / "predictions.csv"
    pd.DataFrame({"id": list("abcd"), "target": [0, 1, 0, 1], "prediction": [0.2, 0.7, 0.4, 0.9],
                  "fold": 0}).to_csv(preds, index=False)
    png = _plot(task, "dummy", [preds], tmp_path / "roc.png")
    assert png.read_bytes()[:4] == b"\x89PNG"
