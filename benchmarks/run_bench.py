#!/usr/bin/env python
"""Run crystograph benchmarks without the CLI (same engine as `crystograph bench`).

Examples:
    python benchmarks/run_bench.py --list
    python benchmarks/run_bench.py --tasks local_matbench_jdft2d,local_supercon --model crystograph --preset small
    python benchmarks/run_bench.py --tasks local_small --model cgcnn --max-minutes 3
    python benchmarks/run_bench.py --tasks local_small --model dummy
    python benchmarks/run_bench.py --tasks local_supercon --export-folds runs/folds   # CSVs for alignn_train.py
    python benchmarks/make_table.py                                                  # refresh README table
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from crystograph.errors import CrystographError


def _folds(text: str | None):
    if text is None:
        return None
    parts = [p for p in text.split(",") if p.strip()]
    if len(parts) == 1 and not text.strip().endswith(","):
        return int(parts[0])  # "2" = folds 0 and 1
    return [int(p) for p in parts]  # "3," or "0,4" = these fold numbers


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", default="local_small", help="task names or groups, comma-separated")
    p.add_argument("--model", default="crystograph", choices=["crystograph", "cgcnn", "dummy"])
    p.add_argument("--preset", default="small", choices=["small", "paper"])
    p.add_argument("--layout", default="stacked")
    p.add_argument("--folds", default=None, help="N = folds 0..N-1; '0,3' = those folds; default all 5")
    p.add_argument("--max-minutes", type=float, default=3.0, help="training budget per fold")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, default=None, help="first N rows only (smoke test)")
    p.add_argument("--data-dir", type=Path, default=None)
    p.add_argument("--out-dir", type=Path, default=None, help="results JSON dir (default benchmarks/results)")
    p.add_argument("--run-dir", type=Path, default=None, help="per-fold files (default runs/bench)")
    p.add_argument("--accelerator", default="auto")
    p.add_argument("--no-download", action="store_true")
    p.add_argument("--strict", action="store_true")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--list", action="store_true", help="list the tasks and exit")
    p.add_argument("--export-folds", type=Path, default=None, metavar="DIR",
                   help="write <DIR>/<task>_folds.csv (id, cif, target, fold) and exit")
    args = p.parse_args(argv)

    from crystograph.bench.registry import GROUPS, TASKS, resolve_tasks

    try:
        if args.list:
            for t in TASKS.values():
                print(f"{t.name:30s} {t.benchmark:14s} {t.metric:7s} {t.unit:11s} {t.label()}")
            print("groups: " + ", ".join(f"{k} ({len(v)})" for k, v in GROUPS.items()))
            return 0
        if args.export_folds is not None:
            from crystograph.bench.folds import export_folds_csv

            for task in resolve_tasks(args.tasks):
                out = export_folds_csv(task, args.export_folds / f"{task.name}_folds.csv", data_dir=args.data_dir,
                                       seed=args.seed, limit=args.limit, progress=not args.quiet)
                print(out)
            return 0
        from crystograph.bench.runner import run_bench

        run_bench(args.tasks, model=args.model, preset=args.preset, folds=_folds(args.folds),
                  max_minutes=args.max_minutes, data_dir=args.data_dir, out_dir=args.out_dir, strict=args.strict,
                  layout=args.layout, run_dir=args.run_dir, seed=args.seed, limit=args.limit, epochs=args.epochs,
                  accelerator=args.accelerator, allow_download=not args.no_download,
                  command=shlex.join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
                  progress=not args.quiet)
    except CrystographError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
