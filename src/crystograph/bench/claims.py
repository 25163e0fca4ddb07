"""The paper's ablation claims, checked against finished study results (`crystograph ablate` JSONs).

Each claim is a set of comparisons "variant A has a lower MAE than variant B on task T". A comparison is made on
the folds both cells have, per fold (the same test fold for both), as the ratio MAE_B / MAE_A:

  * **clear** when the mean of the per-fold ratios is more than two standard errors (fold std / sqrt(folds))
    away from 1;
  * its direction **agrees** with the paper when the mean ratio is > 1.

A claim is "reproduced" when every comparison agrees and is clear, "not reproduced" when at least one clearly
disagrees, "same direction, within noise" when all agree but not all are clear, "mixed, within noise" otherwise,
and "incomplete" while a cell it needs has no folds. The rule is ours (the paper shows single runs); it is
stated with every verdict.

Claims (paper sections 3.2-3.3):
  gwt_grows     Fig. 13: without GwT the model is best on small cells and falls behind the full model as cells
                grow: no_gwt beats full on paper_bulk_s, full beats no_gwt on paper_bulk_l, and no_gwt's MAE
                relative to full grows from paper_bulk_s to paper_bulk_l (the two ratios' SEs combined).
  gwt_only      Fig. 13: GwT alone is the worst of the four variants on every bin.
  stacking      Figs. 11-12: eTGC -> GwT stacking beats GwT-first and parallel at equal depth (1 and 3 GwT).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

RULE = ("per-fold ratio MAE(other) / MAE(claimed better) on the same test folds; 'clear' = mean ratio more than "
        "2 standard errors (fold std / sqrt(folds)) from 1")


def _scores(doc: dict[str, Any], task: str, variant: str) -> dict[int, float]:
    for row in doc.get("results", []):
        if row["task"] == task and row["variant"] == variant:
            return {f["fold"]: f["score"] for f in row.get("folds", [])}
    return {}


def compare(doc: dict[str, Any], task: str, better: str, worse: str) -> dict[str, Any]:
    """`better` has the lower MAE on `task` (paired over common folds): ratio MAE_worse / MAE_better."""
    a, b = _scores(doc, task, better), _scores(doc, task, worse)
    folds = sorted(set(a) & set(b))
    out = {"task": task, "better": better, "worse": worse, "folds": folds}
    if not folds:
        return {**out, "ratio": None, "se": None, "agrees": None, "clear": None}
    ratios = np.asarray([b[k] / a[k] for k in folds])
    se = float(ratios.std() / math.sqrt(len(folds))) if len(folds) > 1 else float("inf")
    mean = float(ratios.mean())
    return {**out, "ratio": mean, "se": se, "agrees": mean > 1.0, "clear": abs(mean - 1.0) > 2 * se}


def verdict(comparisons: list[dict[str, Any]]) -> str:
    if not comparisons or any(c["ratio"] is None for c in comparisons):
        return "incomplete"
    if any(c["clear"] and not c["agrees"] for c in comparisons):
        return "not reproduced"
    if all(c["agrees"] for c in comparisons):
        return "reproduced" if all(c["clear"] for c in comparisons) else "same direction, within noise"
    return "mixed, within noise"


def _growth(doc: dict[str, Any], small: str, large: str) -> dict[str, Any]:
    """How much no_gwt's MAE relative to full grows from the small bin to the large one (the claim: it grows).
    `ratio` here is 1 + (ratio on large - ratio on small), so that > 1 agrees, as for a comparison."""
    s, l_ = compare(doc, small, "full", "no_gwt"), compare(doc, large, "full", "no_gwt")
    out = {"task": f"{small} -> {large}", "better": "full", "worse": "no_gwt", "folds": l_["folds"], "growth": True}
    if s["ratio"] is None or l_["ratio"] is None:
        return {**out, "ratio": None, "se": None, "agrees": None, "clear": None}
    se = math.hypot(s["se"], l_["se"])
    ratio = l_["ratio"] - s["ratio"] + 1.0
    return {**out, "ratio": ratio, "se": se, "agrees": ratio > 1.0, "clear": abs(ratio - 1.0) > 2 * se}


def check_claims(components: dict[str, Any] | None, layouts: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The three claims with their comparisons and verdicts (a claim whose study is missing is "incomplete")."""
    bins = ("paper_bulk_s", "paper_bulk_m", "paper_bulk_l")
    claims = []
    comps: list[dict[str, Any]] = []
    if components:
        comps = [compare(components, bins[0], "no_gwt", "full"), compare(components, bins[2], "full", "no_gwt"),
                 _growth(components, bins[0], bins[2])]
    claims.append({"claim": "gwt_grows", "paper": "Fig. 13",
                   "text": "without GwT the model is best on small cells and falls behind the full model as cells "
                           "grow", "comparisons": comps})
    comps = []
    if components:
        others = ("full", "no_gwt", "no_line_graph")
        comps = [compare(components, t, other, "gwt_only") for t in bins for other in others]
    claims.append({"claim": "gwt_only", "paper": "Fig. 13", "text": "GwT alone is the worst variant on every bin",
                   "comparisons": comps})
    comps = []
    if layouts:
        comps = [compare(layouts, "mp_e_form_10pct", f"stacked_gwt{n}", f"{other}_gwt{n}")
                 for n in (1, 3) for other in ("gwt_first", "parallel")]
    claims.append({"claim": "stacking", "paper": "Figs. 11-12",
                   "text": "eTGC -> GwT stacking beats GwT-first and parallel at equal depth", "comparisons": comps})
    for c in claims:
        c["verdict"] = verdict(c["comparisons"])
        c["rule"] = RULE
    return claims


def claims_markdown(claims: list[dict[str, Any]]) -> str:
    """One row per claim: verdict and each comparison as ratio ± SE (✓ agrees and clear, ~ within noise, ✗ clearly
    against)."""
    lines = ["| claim (paper) | verdict | comparisons: MAE(other) / MAE(claimed better), mean ± SE over folds |",
             "|---|---|---|"]
    for c in claims:
        parts = []
        for x in c["comparisons"]:
            if x["ratio"] is None:
                parts.append(f"{x['task']}: {x['worse']} vs {x['better']} —")
                continue
            mark = "✓" if x["agrees"] and x["clear"] else ("✗" if x["clear"] else "~")
            if x.get("growth"):
                parts.append(f"{x['task']}: growth of {x['worse']} / {x['better']} {x['ratio'] - 1:+.3f} ± "
                             f"{x['se']:.3f} {mark}")
            else:
                parts.append(f"{x['task']}: {x['worse']} / {x['better']} {x['ratio']:.3f} ± {x['se']:.3f} {mark}")
        lines.append(f"| {c['text']} ({c['paper']}) | **{c['verdict']}** | " + "; ".join(parts or ["no results"])
                     + " |")
    return "\n".join(lines) + f"\n\nRule: {RULE}.\n"
