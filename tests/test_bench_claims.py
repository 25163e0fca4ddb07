"""The ablation-claim checker against synthetic study results whose answer is known."""

from __future__ import annotations

from crystograph.bench import claims


def _doc(cells: dict[tuple[str, str], list[float]]) -> dict:
    return {"results": [{"task": t, "variant": v, "folds": [{"fold": k, "score": s} for k, s in enumerate(scores)]}
                        for (t, v), scores in cells.items()]}


BINS = ("paper_bulk_s", "paper_bulk_m", "paper_bulk_l")


def _components(no_gwt_factor: dict[str, float], gwt_only_factor: float = 1.5) -> dict:
    cells = {}
    for t in BINS:
        base = [1.00, 1.10, 0.95]
        cells[(t, "full")] = base
        cells[(t, "no_gwt")] = [x * no_gwt_factor[t] * (1 + 0.001 * k) for k, x in enumerate(base)]
        cells[(t, "no_line_graph")] = [x * 1.05 for x in base]
        cells[(t, "gwt_only")] = [x * gwt_only_factor for x in base]
    return _doc(cells)


def _layouts(gwt_first: float, parallel: float) -> dict:
    base = [0.20, 0.23, 0.21]
    cells = {}
    for n in (1, 3):
        cells[("mp_e_form_10pct", f"stacked_gwt{n}")] = base
        cells[("mp_e_form_10pct", f"gwt_first_gwt{n}")] = [x * gwt_first for x in base]
        cells[("mp_e_form_10pct", f"parallel_gwt{n}")] = [x * parallel for x in base]
    return _doc(cells)


def test_clear_agreement_is_reproduced():
    comps = _components({"paper_bulk_s": 0.90, "paper_bulk_m": 1.0, "paper_bulk_l": 1.20})
    result = {c["claim"]: c for c in claims.check_claims(comps, _layouts(1.10, 1.20))}
    assert result["gwt_grows"]["verdict"] == "reproduced"
    assert result["gwt_only"]["verdict"] == "reproduced"
    assert result["stacking"]["verdict"] == "reproduced"
    growth = result["gwt_grows"]["comparisons"][2]
    assert abs(growth["ratio"] - 1.30) < 0.01  # no_gwt / full: 0.90 on bulk_s -> 1.20 on bulk_l


def test_a_clear_contradiction_is_not_reproduced_and_noise_is_said():
    comps = _components({"paper_bulk_s": 1.10, "paper_bulk_m": 1.0, "paper_bulk_l": 0.90}, gwt_only_factor=1.5)
    result = {c["claim"]: c for c in claims.check_claims(comps, _layouts(0.90, 1.20))}
    assert result["gwt_grows"]["verdict"] == "not reproduced"
    assert result["stacking"]["verdict"] == "not reproduced"  # GwT-first clearly better than stacking
    noisy = _layouts(1.0, 1.0)
    for row in noisy["results"]:
        if row["variant"].startswith("gwt_first"):
            for f, jitter in zip(row["folds"], (1.08, 0.97, 1.01)):
                f["score"] *= jitter
    verdict = {c["claim"]: c["verdict"] for c in claims.check_claims(None, noisy)}
    assert verdict["stacking"] in ("mixed, within noise", "same direction, within noise")
    assert verdict["gwt_grows"] == verdict["gwt_only"] == "incomplete"  # no components study yet


def test_missing_cells_make_a_claim_incomplete_and_the_table_says_so():
    layouts = _layouts(1.1, 1.2)
    layouts["results"] = [r for r in layouts["results"] if r["variant"] != "parallel_gwt3"]
    out = claims.check_claims(None, layouts)
    assert out[2]["verdict"] == "incomplete"
    text = claims.claims_markdown(out)
    assert "**incomplete**" in text and "parallel_gwt3 vs stacked_gwt3 —" in text and "Rule:" in text
