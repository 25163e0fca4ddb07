"""The summary of an ablation study (`crystograph.bench.study`): ``OUT/<study>.json`` and the figure
``OUT/<study>.png``, built from every finished cell on disk.

"Relative" = a variant's mean MAE over the folds it shares with the reference divided by the reference's mean
MAE on them; its error = the variant's fold std divided by the same (the per-fold, paired ratios are in the JSON
too).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from crystograph.bench.study import Study, Variant


def _cell(root: Path, task: str, v: Variant, folds: list[int]) -> dict[str, Any] | None:
    """What the runner left for one cell: its results JSON, and the score of every finished fold of `folds`
    (read from the fold files, so folds finished by earlier, narrower runs count too)."""
    path = root / "cells" / f"{task}__{v.label}.json"
    if not path.exists():
        return None
    res = json.loads(path.read_text())
    recs = {f["fold"]: f for f in res["folds"]}
    for k in folds:
        fold_json = Path(res.get("run_dir", "")) / f"fold_{k}" / "fold.json"
        if res.get("run_dir") and fold_json.exists():
            recs[k] = json.loads(fold_json.read_text())
    recs = {k: recs[k] for k in sorted(recs) if k in folds}
    return {"path": str(path), "scores": {k: r["score"] for k, r in recs.items()}, "unit": res.get("unit"),
            "metric": res.get("metric"), "epochs": [r.get("epochs") for r in recs.values()],
            "dummy_same_folds": res.get("dummy_same_folds"), "limit": (res.get("data_source") or {}).get("limit"),
            "notes": [n for n in res.get("notes", []) if "reused from an earlier run with settings" in n]}


def _relative(scores: dict[int, float], ref: dict[int, float]) -> dict[str, Any]:
    """Over the folds both have: mean MAE / the reference's mean MAE, the fold std divided by the same, and the
    per-fold (paired) ratios with their mean and std."""
    common = sorted(k for k in set(scores) & set(ref) if ref[k])
    if not common:
        return {"mean": None, "std": None, "folds": [], "fold_ratios": [], "paired_mean": None, "paired_std": None}
    v, r = np.asarray([scores[k] for k in common]), np.asarray([ref[k] for k in common])
    ratios = v / r
    return {"mean": float(v.mean() / r.mean()), "std": float(v.std() / r.mean()), "folds": common,
            "fold_ratios": ratios.tolist(), "paired_mean": float(ratios.mean()), "paired_std": float(ratios.std())}


def summarize(study: Study, out_dir: str | Path) -> list[dict[str, Any]]:
    """One row per task × variant from the cells on disk: per-fold scores, mean, std, relative to the reference."""
    root = Path(out_dir) / study.name
    ref = study.variant(study.reference)
    rows = []
    for task in study.tasks:
        ref_cell = _cell(root, task, ref, study.folds)
        for v in study.variants:
            cell = _cell(root, task, v, study.folds)
            scores = cell["scores"] if cell else {}
            vals = np.asarray(list(scores.values()), dtype=float)
            rows.append({
                "task": task, "variant": v.name, "label": v.label, "overrides": v.overrides,
                "metric": cell and cell["metric"], "unit": cell and cell["unit"],
                "folds": [{"fold": k, "score": s} for k, s in sorted(scores.items())],
                "mean": float(vals.mean()) if len(vals) else None, "std": float(vals.std()) if len(vals) else None,
                "complete": len(scores) == len(study.folds),
                "relative": _relative(scores, ref_cell["scores"] if ref_cell else {}),
                "epochs": cell and cell["epochs"], "dummy_same_folds": cell and cell["dummy_same_folds"],
                "limit": cell and cell["limit"], "cell_json": cell and cell["path"],
                "notes": cell["notes"] if cell else [],
            })
    return rows


def write_summary(study: Study, out_dir: str | Path, *, limit: int | None = None,
                  command: str | None = None) -> dict[str, Any]:
    from crystograph.bench.meta import hardware, versions, write_json

    out_dir = Path(out_dir)
    rows = summarize(study, out_dir)
    doc = {
        "study": study.name, "paper": study.paper, "description": study.description,
        "score": "MAE on the held-out test fold (the benchmark runner's folds)",
        "relative": f"mean MAE / mean MAE of {study.reference!r} over the folds both have (std: the fold std / the "
                    "same); paired_*: per-fold ratios on the same test fold, their mean and std",
        "reference": study.reference, "preset": study.preset, "tasks": study.tasks,
        "variants": {v.name: {"overrides": v.overrides, "label": v.label} for v in study.variants},
        "budget": {"folds": study.folds, "max_minutes_per_fold": study.max_minutes, "epochs": study.epochs,
                   "max_steps": study.max_steps, "estimated_cpu_minutes": study.estimate_cpu_minutes()},
        "seed": study.seed, "limit": limit, "command": command,
        "complete": all(r["complete"] for r in rows),
        "missing": [f"{r['task']} × {r['variant']}" for r in rows if not r["complete"]],
        "results": rows, "hardware": hardware(None), "versions": versions(),
    }
    png = plot_study(doc, out_dir / f"{study.name}.png")
    doc["figure"] = str(png) if png else None
    write_json(out_dir / f"{study.name}.json", doc)
    return doc


def plot_study(doc: dict[str, Any], out_png: Path) -> Path | None:
    """Bars of MAE relative to the reference, one group per task, error bars = fold std (paper Figs. 9-13 form)."""
    from crystograph.plots import new_figure, save

    rows = [r for r in doc["results"] if r["relative"]["mean"] is not None]
    if not rows:
        return None
    tasks = [t for t in doc["tasks"] if any(r["task"] == t for r in rows)]
    names = list(doc["variants"])
    width = 0.8 / len(names)
    fig, ax = new_figure((max(5.0, 1.2 + len(tasks) * (0.5 + 0.35 * len(names))) + 1.8, 4.2))  # + the legend
    for j, name in enumerate(names):
        xs, ys, es = [], [], []
        for i, task in enumerate(tasks):
            r = next((r for r in rows if r["task"] == task and r["variant"] == name), None)
            if r is not None:
                xs.append(i + (j - (len(names) - 1) / 2) * width)
                ys.append(r["relative"]["mean"])
                es.append(r["relative"]["std"])
        ax.bar(xs, ys, width, yerr=es, capsize=3, label=name)
    ax.axhline(1.0, color="k", lw=0.8, ls="--")
    ax.set_xticks(range(len(tasks)), [_tick(doc, t) for t in tasks], fontsize=8)
    ax.set_ylabel(f"test-fold MAE / MAE of {doc['reference']} (± fold std)")
    budget = doc["budget"]
    ax.set_title(f"{doc['study']} ({doc['paper'] or 'ablation'}): preset {doc['preset']}, "
                 f"{len(budget['folds'])} folds, "
                 + (f"{budget['max_steps']} steps/fold" if budget.get("max_steps") else
                    f"≤ {budget['max_minutes_per_fold']:g} min/fold")
                 + (f"\nSMOKE TEST: first {doc['limit']} rows only" if doc.get("limit") else "")
                 + ("" if doc["complete"] else f"\nincomplete: {len(doc['missing'])} cells lack folds"), fontsize=9)
    lo = min(r["relative"]["mean"] - (r["relative"]["std"] or 0) for r in rows)
    ax.set_ylim(bottom=max(0.0, min(0.9, lo - 0.05)))
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), title="variant", title_fontsize=8)
    return save(fig, out_png)


def _tick(doc: dict[str, Any], task: str) -> str:
    ref = next((r for r in doc["results"] if r["task"] == task and r["variant"] == doc["reference"]), None)
    if ref is None or ref["mean"] is None:
        return task
    return f"{task}\n{doc['reference']}: {ref['mean']:.3g} ± {ref['std']:.2g} {ref['unit'] or ''}".rstrip()
