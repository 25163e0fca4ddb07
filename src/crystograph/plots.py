"""Plots that say more than a table: learning curves and parity plots.

Figures are `matplotlib.figure.Figure` objects written straight to PNG, without pyplot: nothing here
changes the caller's matplotlib backend (a notebook keeps its own), and no GUI window ever opens.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def new_figure(figsize: tuple[float, float]):
    """(figure, axes) outside pyplot's figure manager; save with `save(fig, path)`."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    return fig, fig.add_subplot()


def save(fig, out_png: Path, dpi: int = 120) -> Path:
    fig.tight_layout()
    fig.savefig(out_png, dpi=dpi)
    return Path(out_png)


def learning_curve(metrics, out_png: Path) -> Path:
    """Train loss and validation MAE per epoch from Lightning's CSV log (a pandas DataFrame)."""
    fig, ax = new_figure((6, 4))
    for column, label in (("train_loss", "train L1 (standardised)"), ("val_mae", "validation MAE")):
        if column in metrics:
            series = metrics[["epoch", column]].dropna()
            if len(series):
                ax.plot(series["epoch"], series[column], label=label)
    ax.set_xlabel("epoch")
    ax.set_yscale("log")
    ax.legend()
    ax.grid(alpha=0.3)
    return save(fig, out_png)


def parity_plot(y_true, y_pred, out_png: Path, *, title: str = "", unit: str = "",
                baseline_mae: float | None = None) -> Path:
    """Predicted vs true with the MAE (and the mean-predictor MAE when given) in the legend."""
    y_true = np.asarray(y_true, dtype=float).ravel()
    y_pred = np.asarray(y_pred, dtype=float).ravel()
    mae = float(np.mean(np.abs(y_true - y_pred)))
    fig, ax = new_figure((5, 5))
    ax.scatter(y_true, y_pred, s=8, alpha=0.5, label=f"MAE {mae:.4g} {unit}".strip())
    lo = float(min(y_true.min(), y_pred.min()))
    hi = float(max(y_true.max(), y_pred.max()))
    ax.plot([lo, hi], [lo, hi], "k--", lw=1, label="y = x")
    if baseline_mae is not None:
        ax.plot([], [], " ", label=f"mean predictor MAE {baseline_mae:.4g} {unit}".strip())
    ax.set_xlabel(f"true {unit}".strip())
    ax.set_ylabel(f"predicted {unit}".strip())
    ax.set_title(title)
    ax.legend(loc="upper left")
    ax.set_aspect("equal", adjustable="datalim")
    return save(fig, out_png)


def roc_plot(y_true, y_score, out_png: Path, *, title: str = "") -> Path:
    """ROC curve with its area in the legend (the chance diagonal alone when only one class is present)."""
    from sklearn.metrics import roc_auc_score, roc_curve

    y_true = np.asarray(y_true, dtype=float).ravel()
    y_score = np.asarray(y_score, dtype=float).ravel()
    fig, ax = new_figure((5, 5))
    if len(np.unique(y_true)) > 1:
        fpr, tpr, _ = roc_curve(y_true, y_score)
        ax.plot(fpr, tpr, label=f"ROC-AUC {roc_auc_score(y_true, y_score):.4f}")
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="chance")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(title)
    ax.legend(loc="lower right")
    return save(fig, out_png)
