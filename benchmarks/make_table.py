#!/usr/bin/env python
"""Rebuild the results table in benchmarks/README.md from benchmarks/results/*__*.json.

    python benchmarks/make_table.py [--results benchmarks/results] [--readme benchmarks/README.md] [--stdout]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--results", type=Path, default=HERE / "results")
    p.add_argument("--readme", type=Path, default=HERE / "README.md")
    p.add_argument("--stdout", action="store_true", help="print the table instead of editing the README")
    p.add_argument("--top-readme", type=Path, default=None,
                   help="README whose 'results at a glance' block is refreshed too (default: the repository's "
                        "README.md, but only when --results is the repository's benchmarks/results)")
    args = p.parse_args(argv)

    from crystograph.bench.report import glance_table, make_table, summary_plot, task_table, update_glance, update_readme

    table = make_table(args.results)
    if args.stdout:
        print(table)
        print(glance_table(args.results))
    else:
        top = args.top_readme
        if top is None and args.results.resolve() == (HERE / "results").resolve():
            top = HERE.parent / "README.md"
        if top is not None:
            print(update_glance(top, glance_table(args.results)))
        print(update_readme(args.readme, table, task_table()))
        print(summary_plot(args.results, args.results / "plots" / "summary.png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
