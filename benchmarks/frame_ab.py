"""Did the canonical frame (or bf16) change accuracy? Paired comparisons at a fixed step budget, all else equal.

For each task, `crystograph train --folds 5` runs twice with identical folds, seed, model and a fixed step
budget (`--max-steps`, so the comparison does not depend on the machine's load): once with `--frame lab` (the
paper's angles in the file's frame) and once with `--frame canonical` (the default). Writes
benchmarks/results/frame_ab_<task>.json with both arms' per-fold MAE, their means and fold std, and the
per-fold differences (canonical − lab).

`--compare precision` compares `--precision fp32` (the canonical arm above) with `--precision bf16` instead and
writes benchmarks/results/precision_ab_<task>.json (difference bf16 − fp32).

    .venv/bin/python benchmarks/frame_ab.py --task supercon --max-steps 500
    .venv/bin/python benchmarks/frame_ab.py --task supercon --max-steps 500 --compare precision
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHARED_DATA, command_line, git_commit, hardware, write_json  # noqa: E402

# comparison: (baseline arm, new arm); arm = (name, run folder, extra `train` flags)
ARMS = {
    "frame": (("lab", "lab", ["--frame", "lab"]), ("canonical", "canonical", ["--frame", "canonical"])),
    "precision": (("fp32", "canonical", ["--frame", "canonical"]),
                  ("bf16", "canonical_bf16", ["--frame", "canonical", "--precision", "bf16"])),
}
TASKS = {  # name: (file, target, id column)
    "supercon": ("supercon/supercon.csv.gz", "tc_K", "material_id"),
    "matbench_jdft2d": ("matbench/matbench_jdft2d.csv.gz", "exfoliation_en", "mbid"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", choices=sorted(TASKS), default="supercon")
    parser.add_argument("--max-steps", type=int, default=1000, help="optimiser steps per fitted model")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--runs", default="runs/frame_ab")
    parser.add_argument("--compare", choices=sorted(ARMS), default="frame")
    parser.add_argument("--only", choices=["lab", "canonical", "fp32", "bf16"], help="train this arm only (run the "
                        "two arms as two processes at once; the JSON is written by whichever finds both arms done)")
    args = parser.parse_args()

    file, target, id_column = TASKS[args.task]
    data = SHARED_DATA / file
    started = time.monotonic()
    arms = {}
    (base, base_dir, _), (new, new_dir, _) = ARMS[args.compare]
    runs = {name: (Path(args.runs) / args.task / folder, flags) for name, folder, flags in ARMS[args.compare]}
    for name, (run, flags) in runs.items():
        if args.only in (None, name) and not (run / "summary.json").exists():
            subprocess.run([sys.executable, "-m", "crystograph.cli", "train", str(data), "--target", target,
                            "--id-column", id_column, "--out", str(run), "--folds", "5", "--preset", "small",
                            "--lr", "0.001", "--weight-decay", "0.01", "--dropout", "0.1", "--max-steps",
                            str(args.max_steps), "--epochs", "1000", "--seed", str(args.seed), *flags,
                            "--no-progress"], check=True)
    if not all((run / "summary.json").exists() for run, _ in runs.values()):
        print("the other arm has not finished yet; its process writes the JSON", flush=True)
        return
    for name, (run, _) in runs.items():
        summary = json.loads((run / "summary.json").read_text())
        folds = [float(v) for v in summary["fold_mae"]]
        arms[name] = {"folds": folds, "mean": float(np.mean(folds)), "std": float(np.std(folds)),
                      "dummy_mean": summary["mean_dummy_mae"], "run": str(run), "flags": runs[name][1]}
        print(name, arms[name], flush=True)
    diff = np.array(arms[new]["folds"]) - np.array(arms[base]["folds"])
    write_json(Path(__file__).resolve().parent / "results" / f"{args.compare}_ab_{args.task}.json", {
        "what": f"5-fold CV MAE, {base} vs {new}, identical folds/seed/model/step budget",
        "task": args.task, "data": file, "target": target, "preset": "small", "max_steps": args.max_steps,
        "seed": args.seed, "protocol": "budget (fixed step count)", base: arms[base], new: arms[new],
        f"paired_difference_{new}_minus_{base}": {"folds": diff.tolist(), "mean": float(diff.mean()),
                                                 "std": float(diff.std()),
                                                 f"folds_{new}_better": int((diff < 0).sum())},
        "command": command_line(), "commit": git_commit(), "hardware": hardware(1),
        "wall_s": round(time.monotonic() - started, 1),
    })


if __name__ == "__main__":
    main()
