"""Do the shipped atom embeddings help? Both arms on identical folds and budgets (issue 15).

    .venv/bin/python benchmarks/pretrain_evidence.py local_supercon                 # both arms, 5 folds
    .venv/bin/python benchmarks/pretrain_evidence.py local_supercon --arms with     # one arm (run the other beside it)
    .venv/bin/python benchmarks/pretrain_evidence.py local_supercon --arms finetuned --folds 5
    .venv/bin/python benchmarks/pretrain_evidence.py local_supercon --combine-only  # rewrite the JSON from the runs
    .venv/bin/python benchmarks/pretrain_evidence.py --table                        # markdown table of every task

Arms (the same model, folds, seed, ensemble size and optimiser-step budget; only the input features differ):
  without     the 92-d CGCNN atom features (the default model);
  with        the 92-d features concatenated with the shipped default embedding table, frozen (the paper's code);
  finetuned   the same table, trained with the network.

The budget is --max-steps optimiser steps per fit (reproducible whatever the machine's load); --max-minutes is a
safety cap only, and a fit it stops is flagged in the JSON. Each arm is a `crystograph bench` run of its own
(resumable: finished folds are never recomputed) under RUN_DIR/<arm>/; the combined file
benchmarks/results/pretrain_<task>.json holds every finished arm (`with_embeddings`, `without_embeddings`,
`finetuned_embeddings`: per-fold `folds`, `mean`, `std`) and the paired per-fold comparison of each arm with
`without_embeddings` (differences, wins, paired t-test and Wilcoxon p-values).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from _common import REPO_ROOT, SHARED_DATA, command_line, set_threads

ARMS = {"without": "without_embeddings", "with": "with_embeddings", "finetuned": "finetuned_embeddings"}
RESULTS = REPO_ROOT / "benchmarks" / "results"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("task", nargs="?", help="a registry task, e.g. local_supercon")
    p.add_argument("--table", action="store_true", help="print the markdown table of results/pretrain_*.json, exit")
    p.add_argument("--arms", default="without,with", help=f"comma-separated, of {', '.join(ARMS)}")
    p.add_argument("--embeddings", default="default", help="the table of the embedding arms (default: shipped)")
    p.add_argument("--preset", default="small")
    p.add_argument("--folds", default="5", help="as `crystograph bench --folds`")
    p.add_argument("--max-steps", type=int, default=300, help="optimiser steps per fit (batch 32)")
    p.add_argument("--max-minutes", type=float, default=30.0, help="safety cap per fit")
    p.add_argument("--ensemble", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", type=Path, default=SHARED_DATA)
    p.add_argument("--run-dir", type=Path, default=REPO_ROOT / "runs" / "pretrain_evidence")
    p.add_argument("--out", type=Path, default=None, help="combined JSON (default results/pretrain_<name>.json)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--combine-only", action="store_true", help="only rewrite the combined JSON")
    p.add_argument("--no-progress", dest="progress", action="store_false")
    args = p.parse_args(argv)
    args.arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    unknown = sorted(set(args.arms) - set(ARMS))
    if unknown:
        p.error(f"unknown arms {unknown}; choose from {', '.join(ARMS)}")
    if args.task is None and not args.table:
        p.error("name a task (or --table)")
    if args.out is None and args.task is not None:
        args.out = RESULTS / f"pretrain_{args.task.removeprefix('local_')}.json"
    return args


def arm_dir(args: argparse.Namespace, arm: str) -> Path:
    return args.run_dir / args.task / arm


def run_arm(args: argparse.Namespace, arm: str) -> dict:
    from crystograph.bench.runner import parse_folds, run_bench

    emb = None if arm == "without" else args.embeddings
    (res,) = run_bench([args.task], model="crystograph", preset=args.preset, folds=parse_folds(args.folds),
                       max_minutes=args.max_minutes, max_steps=args.max_steps, data_dir=args.data_dir,
                       out_dir=arm_dir(args, arm), run_dir=arm_dir(args, arm) / "runs", seed=args.seed,
                       ensemble=args.ensemble, atom_embeddings=emb, finetune_embeddings=arm == "finetuned",
                       command=command_line(), progress=args.progress, plot=False)
    return res


def _arm_summary(res: dict) -> dict:
    folds = sorted(res["folds"], key=lambda f: f["fold"])
    cap_s = 60 * (res.get("budget_minutes_per_fold") or float("inf"))
    clock = [f["fold"] for f in folds if any((m.get("wall_s") or 0) >= 0.98 * cap_s for m in f.get("members", []))]
    return {"folds": [{k: f.get(k) for k in ("fold", "score", "n_train", "n_test", "epochs", "wall_s")}
                      for f in folds],
            "mean": res["mean"], "std": res["std"], "n_folds": len(folds), "folds_stopped_by_clock": clock,
            "atom_embeddings": res.get("model_details", {}).get("atom_embeddings"),
            "atom_embeddings_trainable": res.get("atom_embeddings_trainable"),
            "train_config": res.get("train_config"), "ensemble": res.get("ensemble"), "commit": res.get("commit"),
            "command": res.get("command"), "hardware": res.get("hardware"), "wall_s": res.get("wall_s")}


def paired(base: dict, other: dict) -> dict | None:
    """Per-fold comparison of `other` with `base` on the folds both finished (negative = `other` lower)."""
    from scipy import stats

    a = {f["fold"]: f["score"] for f in base["folds"]}
    b = {f["fold"]: f["score"] for f in other["folds"]}
    common = sorted(set(a) & set(b))
    if not common:
        return None
    d = np.array([b[k] - a[k] for k in common])
    out = {"folds": common, "differences": d.tolist(), "mean_difference": float(d.mean()),
           "relative_mean_difference": float(d.mean() / np.mean([a[k] for k in common])),
           "lower_on": int((d < 0).sum()), "higher_on": int((d > 0).sum())}
    if len(common) >= 3 and np.any(d != 0):
        out["paired_t_p"] = float(stats.ttest_rel([b[k] for k in common], [a[k] for k in common]).pvalue)
        out["wilcoxon_p"] = float(stats.wilcoxon(d).pvalue)
    return out


def combine(args: argparse.Namespace) -> dict:
    """The combined JSON from every arm's results file on disk."""
    from crystograph.bench.meta import versions, write_json
    from crystograph.embeddings import resolve

    doc: dict = {"task": args.task, "budget": {"max_steps": args.max_steps, "max_minutes_cap": args.max_minutes,
                                               "preset": args.preset, "ensemble": args.ensemble, "seed": args.seed},
                 "comparison": "identical folds, seed, ensemble size and step budget; only the atom features differ",
                 "command": command_line(), "commit": versions().get("git_commit")}
    if any(arm_dir(args, arm).is_dir() for arm in ARMS if arm != "without"):
        emb = resolve(args.embeddings)
        card = emb.with_suffix(".json")
        doc["embeddings_card"] = json.loads(card.read_text()) if card.is_file() else {"file": str(emb)}
    for arm, key in ARMS.items():
        files = sorted(arm_dir(args, arm).glob(f"{args.task}__*.json"))
        if files:
            res = json.loads(files[0].read_text())
            doc.update(metric=res["metric"], unit=res.get("unit"), dummy_same_folds=res.get("dummy_same_folds"),
                       data_source=res.get("data_source"))
            doc[key] = _arm_summary(res)
    if "without_embeddings" in doc:
        doc["paired"] = {key: paired(doc["without_embeddings"], doc[key]) for key in ARMS.values()
                         if key != "without_embeddings" and key in doc}
    write_json(args.out, doc)
    return doc


def _cell(arm: dict | None) -> str:
    if not arm:
        return "–"
    return f"{arm['mean']:.4g} ± {arm['std']:.2g} ({arm['n_folds']})"


def table(results_dir: Path = RESULTS) -> str:
    """Markdown: one row per task, each arm's mean ± fold std (folds), and the paired comparisons."""
    lines = ["| task | unit | mean predictor | without | with (frozen) | with − without, per fold | lower on "
             "| paired t p | fine-tuned | fine-tuned − without |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for path in sorted(results_dir.glob("pretrain_*.json")):
        doc = json.loads(path.read_text())
        if "task" not in doc or "without_embeddings" not in doc:
            continue
        cmp = (doc.get("paired") or {}).get("with_embeddings")
        fine = (doc.get("paired") or {}).get("finetuned_embeddings")
        dummy = doc.get("dummy_same_folds")
        cells = [doc["task"], doc.get("unit") or "", "–" if dummy is None else f"{dummy:.4g}",
                 _cell(doc.get("without_embeddings")), _cell(doc.get("with_embeddings")),
                 ", ".join(f"{d:+.3g}" for d in cmp["differences"]) if cmp else "–",
                 f"{cmp['lower_on']}/{len(cmp['folds'])}" if cmp else "–",
                 f"{cmp['paired_t_p']:.2g}" if cmp and "paired_t_p" in cmp else "–",
                 _cell(doc.get("finetuned_embeddings")),
                 f"{fine['mean_difference']:+.3g} ({fine['lower_on']}/{len(fine['folds'])} lower)" if fine else "–"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.table:
        print(table())
        return 0
    set_threads(args.threads)
    if not args.combine_only:
        for arm in args.arms:
            res = run_arm(args, arm)
            print(f"{args.task} {ARMS[arm]}: {res['mean']:.4g} ± {res['std']:.3g} over {len(res['folds'])} folds")
    doc = combine(args)
    for key, cmp in (doc.get("paired") or {}).items():
        if cmp:
            print(f"{key} - without_embeddings: {cmp['mean_difference']:+.4g} ({cmp['relative_mean_difference']:+.1%}),"
                  f" lower on {cmp['lower_on']}/{len(cmp['folds'])} folds")
    print(f"→ {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
