"""Where a converged run loses: learning curves, epochs reached, error by cell size and by target size.

    .venv/bin/python benchmarks/converged_analysis.py local_matbench_jdft2d [--model crystograph-small]
    .venv/bin/python benchmarks/converged_analysis.py local_c2db_gap --results benchmarks/results/fair --peer cgcnn

Reads a finished converged run (``benchmarks/results/converged/<task>__<model>.json`` and its per-fold folders
under ``runs/bench/converged/``: ``metrics.csv`` and ``predictions.csv``) and the task's structures (for atoms
per cell). Writes ``benchmarks/results/converged/analysis_<task>__<model>.json`` and a 3-panel figure beside it:

* learning curves per fold (train loss and validation MAE per epoch; the best epoch and where early stopping
  ended the fit), and the train/validation gap at the best epoch;
* test MAE by atoms per cell (quartiles of the test set), beside the mean predictor's MAE on the same rows;
* the share of the total absolute error carried by the largest targets (deciles of |target|), which says
  whether a few extreme values decide the score.

With ``--peer MODEL`` (a model of the same results folder, e.g. a budget run of ``benchmarks/results/fair``), the
peer's test predictions are binned on the same rows beside ours, so where one model beats the other shows.

Nothing here trains: it only reads what the runs left behind.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
import _common  # noqa: E402


def _parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("task")
    p.add_argument("--model", default="crystograph-small")
    p.add_argument("--results", type=Path, default=HERE / "results" / "converged")
    p.add_argument("--data-dir", type=Path, default=_common.SHARED_DATA)
    p.add_argument("--peer", default=None, help="another model of the same results folder, binned on the same rows")
    return p.parse_args(argv)


def learning_curve(metrics_csv: Path) -> dict:
    """Per-epoch train loss (standardised scale) and validation MAE (target units) from Lightning's CSV log."""
    train: dict[int, list[float]] = {}
    val: dict[int, float] = {}
    with open(metrics_csv) as fh:
        for row in csv.DictReader(fh):
            epoch = int(row["epoch"])
            if row.get("train_loss"):
                train.setdefault(epoch, []).append(float(row["train_loss"]))
            if row.get("val_mae"):
                val[epoch] = float(row["val_mae"])
    epochs = sorted(val)
    best = min(epochs, key=lambda e: val[e]) if epochs else None
    return {
        "epochs": epochs,
        "val_mae": [val[e] for e in epochs],
        "train_loss": [float(np.mean(train[e])) if e in train else None for e in epochs],
        "best_epoch": best,
        "best_val_mae": val[best] if best is not None else None,
        "last_epoch": epochs[-1] if epochs else None,
    }


def natoms_by_id(task_name: str, data_dir: Path) -> dict[str, int]:
    from crystograph.bench.loaders import load_task
    from crystograph.bench.registry import get_task

    loaded = load_task(get_task(task_name), data_dir, progress=False)
    return {str(r.id): len(r.structure) for r in loaded.records}


def binned_mae(key: np.ndarray, err: np.ndarray, dummy_err: np.ndarray, edges: np.ndarray,
               peer_err: np.ndarray | None = None) -> list[dict]:
    rows = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (key >= lo) & (key <= hi) if hi == edges[-1] else (key >= lo) & (key < hi)
        if sel.any():
            rows.append({"from": float(lo), "to": float(hi), "n": int(sel.sum()), "mae": float(err[sel].mean()),
                         "dummy_mae": float(dummy_err[sel].mean())})
            if peer_err is not None:
                rows[-1]["peer_mae"] = float(peer_err[sel].mean())
    return rows


def run_predictions(result_path: Path) -> tuple[dict, list[Path], list[dict]]:
    """(result JSON, each fold's folder, test prediction rows of every fold) of a finished run."""
    result = json.loads(result_path.read_text())
    run_dir = Path(result["run_dir"])
    if not run_dir.is_absolute():
        run_dir = ROOT / run_dir
    fold_dirs, preds = [run_dir / f"fold_{f['fold']}" for f in result["folds"]], []
    for fold_dir in fold_dirs:
        with open(fold_dir / "predictions.csv") as fh:
            preds += list(csv.DictReader(fh))
    return result, fold_dirs, preds


def peer_errors(results: Path, task: str, peer: str, ids: list[str]) -> tuple[np.ndarray, float]:
    """|prediction - target| of the peer model on the rows `ids` (same order), and its mean over the folds."""
    result, _, preds = run_predictions(results / f"{task}__{peer}.json")
    by_id = {r["id"]: abs(float(r["prediction"]) - float(r["target"])) for r in preds}
    missing = [i for i in ids if i not in by_id]
    if missing:
        raise SystemExit(f"{peer} has no test prediction for {len(missing)} rows (e.g. {missing[0]}): "
                         "the two runs must share their folds")
    return np.array([by_id[i] for i in ids]), result["mean"]


def analyse(args) -> dict:
    result_path = args.results / f"{args.task}__{args.model}.json"
    result, fold_dirs, preds = run_predictions(result_path)
    folds = [{"fold": f["fold"], "score": f["score"], "epochs_run": f.get("epochs"),
              "members": [learning_curve(p) for p in sorted(d.glob("**/metrics.csv"))]}
             for f, d in zip(result["folds"], fold_dirs)]
    ids = [r["id"] for r in preds]
    y = np.array([float(r["target"]) for r in preds])
    p = np.array([float(r["prediction"]) for r in preds])
    err = np.abs(p - y)
    # mean predictor of each fold's training rows ~ the overall mean of the other folds' targets
    fold_of = np.array([int(r["fold"]) for r in preds])
    fold_mean = {k: y[fold_of != k].mean() for k in np.unique(fold_of)}
    dummy = np.array([fold_mean[k] for k in fold_of])
    dummy_err = np.abs(dummy - y)
    peer_err, peer_mean = peer_errors(args.results, args.task, args.peer, ids) if args.peer else (None, None)
    sizes = natoms_by_id(args.task, args.data_dir)
    n_atoms = np.array([sizes.get(i, -1) for i in ids])
    size_edges = np.unique(np.quantile(n_atoms[n_atoms > 0], [0, 0.25, 0.5, 0.75, 1.0]))
    if size_edges.size == 1:  # every cell has the same atom count (e.g. perov5): one bin
        size_edges = np.repeat(size_edges, 2)
    mag = np.abs(y)
    order = np.argsort(-mag)
    top = {f"top_{q}pct": float(err[order[: max(1, int(len(y) * q / 100))]].sum() / err.sum()) for q in (1, 5, 10)}
    out = {
        "task": args.task, "model": args.model, "protocol": result.get("protocol"), "unit": result.get("unit"),
        "mean": result["mean"], "std": result.get("std"), "n_test_rows": len(y),
        "source": str(result_path.resolve().relative_to(ROOT)), "commit_of_run": result.get("commit"), "folds": folds,
        "best_epoch_per_fold": [[m["best_epoch"] for m in f["members"]] for f in folds],
        "by_atoms_per_cell": binned_mae(n_atoms, err, dummy_err, size_edges, peer_err),
        "by_target_decile": binned_mae(mag, err, dummy_err, np.quantile(mag, np.linspace(0, 1, 11)), peer_err),
        "share_of_abs_error_from_largest_targets": top,
        "median_abs_error": float(np.median(err)),
        "mae_without_top_1pct_targets": float(err[order[max(1, len(y) // 100):]].mean()),
    }
    if args.peer:
        zero = y == 0
        out["peer"] = {"model": args.peer, "mean": peer_mean, "median_abs_error": float(np.median(peer_err)),
                       "rows_where_ours_is_closer": float((err < peer_err).mean())}
        if zero.any():  # e.g. metals in a band-gap set
            out["target_zero_vs_nonzero"] = {
                "n_zero": int(zero.sum()), "mae_zero": float(err[zero].mean()),
                "peer_mae_zero": float(peer_err[zero].mean()),
                "mae_nonzero": float(err[~zero].mean()), "peer_mae_nonzero": float(peer_err[~zero].mean())}
    return out


def plot(out: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    unit = out["unit"] or ""
    fig, ax = plt.subplots(1, 3, figsize=(15, 4.4))
    for f in out["folds"]:
        for m in f["members"]:
            line, = ax[0].plot(m["epochs"], m["val_mae"], label=f"fold {f['fold']} ({f['score']:.3g})")
            if m["best_epoch"] is not None:
                ax[0].plot([m["best_epoch"]], [m["best_val_mae"]], "o", color=line.get_color())
    ax[0].set_xlabel("epoch")
    ax[0].set_ylabel(f"validation MAE ({unit})")
    ax[0].set_title("validation MAE per epoch (dot: best epoch)")
    ax[0].legend(fontsize=8)
    for key, axis, title in (("by_atoms_per_cell", ax[1], "test MAE by atoms per cell (quartiles)"),
                             ("by_target_decile", ax[2], f"test MAE by |target| decile ({unit})")):
        rows = out[key]
        x = np.arange(len(rows))
        series = [("mae", out["model"]), ("dummy_mae", "mean predictor")]
        if "peer" in out:
            series.insert(1, ("peer_mae", out["peer"]["model"]))
        width = 0.8 / len(series)
        for s_i, (col, label) in enumerate(series):
            axis.bar(x + (s_i - (len(series) - 1) / 2) * width, [r[col] for r in rows], width, label=label)
        if key == "by_atoms_per_cell":
            axis.set_xticks(x, [f"{r['from']:.0f}-{r['to']:.0f}\nn={r['n']}" for r in rows], fontsize=8)
        else:
            axis.set_xticks(x, [f"≤{r['to']:.3g}" for r in rows], fontsize=8, rotation=45)
        axis.set_ylabel(f"MAE ({unit})")
        axis.set_title(title)
        axis.legend(fontsize=8)
    peer = f"; {out['peer']['model']} {out['peer']['mean']:.4g}" if "peer" in out else ""
    fig.suptitle(f"{out['task']} — {out['model']}, {out['protocol'] or 'converged'}, {len(out['folds'])} folds: "
                 f"{out['mean']:.4g} ± {out['std']:.2g} {unit}{peer}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> None:
    args = _parse_args(argv)
    out = analyse(args)
    stem = args.results / (f"analysis_{args.task}__{args.model}" + (f"__vs_{args.peer}" if args.peer else ""))
    stem.with_suffix(".json").write_text(json.dumps(out, indent=1))
    plot(out, stem.with_suffix(".png"))
    print(json.dumps({k: out[k] for k in ("task", "mean", "best_epoch_per_fold", "by_atoms_per_cell",
                                          "share_of_abs_error_from_largest_targets",
                                          "mae_without_top_1pct_targets", "peer", "target_zero_vs_nonzero")
                      if k in out}, indent=1))


if __name__ == "__main__":
    main()
