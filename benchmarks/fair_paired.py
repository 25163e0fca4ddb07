"""Fold-by-fold comparison of our rows of the fair budget table with each peer (reads results, trains nothing);
`--protocol converged` compares converged runs the same way.

Every model of the fair suite runs on identical folds, so fold k of ours and fold k of a peer saw the same test
crystals: the per-fold MAE ratio ours / peer and the count of folds ours wins say how much of a difference in
means is the folds' shared difficulty and how much is the model. A ratio is "clear" when its mean ± one std over
the folds stays below (or above) 1.

    .venv/bin/python benchmarks/fair_paired.py                       # benchmarks/results/fair -> paired.json
    .venv/bin/python benchmarks/fair_paired.py --results DIR --out DIR/paired.json
    .venv/bin/python benchmarks/fair_paired.py --results benchmarks/results/converged --protocol converged \
        --ours crystograph-small-no_line_graph --peers crystograph-small     # two layouts of ours, converged
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import _common  # noqa: E402

OURS = ("crystograph-small", "crystograph-small-no_line_graph")
PEERS = ("cgcnn", "alignn", "alignn-h64")


def fold_scores(result: dict) -> dict[int, float]:
    return {int(f["fold"]): float(f["score"]) for f in result.get("folds") or [] if f.get("score") is not None}


def paired(ours: dict, peer: dict) -> dict | None:
    """Per-fold ratio ours / peer over the folds both finished (None when they share none)."""
    a, b = fold_scores(ours), fold_scores(peer)
    common = sorted(set(a) & set(b))
    if not common:
        return None
    ratios = [a[k] / b[k] for k in common]
    mean = statistics.fmean(ratios)
    std = statistics.stdev(ratios) if len(ratios) > 1 else 0.0
    return {"folds": common, "ratio_per_fold": ratios, "ratio_mean": mean, "ratio_std": std,
            "folds_ours_lower": sum(r < 1 for r in ratios),
            "verdict": "ours lower" if mean + std < 1 else "peer lower" if mean - std > 1 else "within noise"}


def compare(results_dir: Path, protocol: str = "budget", ours: tuple[str, ...] = OURS,
            peers: tuple[str, ...] = PEERS) -> dict:
    from crystograph.bench.report import load_results, protocol_of

    by_key = {(r["task"], r["model"]): r for r in load_results(results_dir) if protocol_of(r) == protocol}
    out: dict[str, dict] = {}
    for task in sorted({t for t, _ in by_key}):
        for mine in ours:
            if (task, mine) not in by_key:
                continue
            for peer in peers:
                if (task, peer) in by_key:
                    res = paired(by_key[(task, mine)], by_key[(task, peer)])
                    if res is not None:
                        out.setdefault(task, {}).setdefault(mine, {})[peer] = res
    return out


def markdown(table: dict) -> str:
    lines = ["| task | ours | vs peer | ratio ours / peer (mean ± std over folds) | folds ours lower | verdict |",
             "|---|---|---|---|---|---|"]
    for task, rows in table.items():
        for mine, peers in rows.items():
            for peer, r in peers.items():
                lines.append(f"| {task} | {mine} | {peer} | {r['ratio_mean']:.3f} ± {r['ratio_std']:.3f} | "
                             f"{r['folds_ours_lower']} of {len(r['folds'])} | {r['verdict']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", type=Path, default=HERE / "results" / "fair")
    p.add_argument("--out", type=Path, default=None, help="JSON to write (default: RESULTS/paired.json)")
    p.add_argument("--protocol", choices=("budget", "converged"), default="budget")
    p.add_argument("--ours", nargs="+", default=list(OURS), help="our models (results' model names)")
    p.add_argument("--peers", nargs="+", default=list(PEERS), help="the models each of ours is compared with")
    args = p.parse_args(argv)
    table = compare(args.results, args.protocol, tuple(args.ours), tuple(args.peers))
    if not table:
        sys.exit(f"no {args.protocol} results with a peer on shared folds in {args.results}")
    out = args.out or args.results / "paired.json"
    data = {"protocol": args.protocol, "results": str(args.results), "command": _common.command_line(),
            "commit": _common.git_commit(), "paired": table}
    _common.write_json(out, data)
    print(markdown(table))
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
