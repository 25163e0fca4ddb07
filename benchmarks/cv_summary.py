"""Turn a `crystograph train --folds K` run into a results file with everything needed to reproduce it.

    .venv/bin/python benchmarks/cv_summary.py runs/supercon_cv5 \
        --command "crystograph train ../shared/data/supercon/supercon.csv.gz --target tc_K ..." \
        --out benchmarks/results/supercon_cv_small.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import yaml

from crystograph.bench.meta import git_commit, hardware, versions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path)
    parser.add_argument("--command", required=True, help="the command that produced the run")
    parser.add_argument("--model", default="crystograph-small")
    parser.add_argument("--task", default="supercon")
    parser.add_argument("--load", default="", help="what else ran on the machine meanwhile")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    summary = json.loads((args.run / "summary.json").read_text())
    config = yaml.safe_load((args.run / "config.yaml").read_text())
    folds = []
    for k, (mae, dummy) in enumerate(zip(summary["fold_mae"], summary["dummy_fold_mae"])):
        fit = json.loads((args.run / f"fold_{k}" / "member_0" / "fit.json").read_text())
        folds.append({"fold": k, "score": mae, "dummy_score": dummy, "epochs": fit["epochs"], "wall_s": fit["wall_s"],
                      "n_train": fit["n_train"], "n_val": fit["n_val"]})
    report = {
        "task": f"{args.task} ({len(folds)}-fold CV, `crystograph train`)", "model": args.model,
        "metric": "MAE", "folds": folds, "mean": summary["mean_mae"], "dummy_mean": summary["mean_dummy_mae"],
        "ratio_to_dummy": summary["ratio_to_dummy"], "wall_s": summary["wall_s"], "n_graphs": summary["n_graphs"],
        "command": args.command, "seed": config["train"]["seed"], "train_config": config["train"],
        "model_config": config["model"], "data": config["run"]["data"], "hardware": hardware("cpu"),
        "machine_load": args.load, "versions": versions(), "git_commit": git_commit(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps({k: report[k] for k in ("mean", "dummy_mean", "ratio_to_dummy", "wall_s")}, indent=2))


if __name__ == "__main__":
    main()
