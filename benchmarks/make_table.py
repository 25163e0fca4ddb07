#!/usr/bin/env python
"""Rebuild the results tables in benchmarks/README.md from benchmarks/results/*__*.json.

    python benchmarks/make_table.py [--results benchmarks/results] [--readme benchmarks/README.md] [--stdout]

Every table says which protocol its rows are: the main table holds the budget runs in RESULTS/ ("budget X
min/fold"); the fair budget table, also the top-level README's glance table, holds RESULTS/fair/
(benchmarks/run_fair_suite.sh: each model in turn, same threads); the converged table holds RESULTS/converged/
(benchmarks/run_converged.sh), with a "not yet run" row for each task that has no converged result.

The tables come from `crystograph.bench.report`; which READMEs hold them, between which markers, and which
tasks make the top-level README's glance table is this repository's business and lives here.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
START, END = "<!-- bench-table:start -->", "<!-- bench-table:end -->"
TASKS_START, TASKS_END = "<!-- bench-tasks:start -->", "<!-- bench-tasks:end -->"
GLANCE_START, GLANCE_END = "<!-- glance:start -->", "<!-- glance:end -->"
CONVERGED_START, CONVERGED_END = "<!-- converged-table:start -->", "<!-- converged-table:end -->"
FAIR_START, FAIR_END = "<!-- fair-table:start -->", "<!-- fair-table:end -->"
GLANCE_TASKS = ("local_matbench_jdft2d", "local_matbench_phonons", "local_supercon", "local_c2db_gap",
                "local_2dmatpedia_exf", "local_perov5", "local_mp_e_form")


def _replace_block(text: str, start: str, end: str, body: str, heading: str) -> str:
    block = f"{start}\n{body}{end}"
    if start in text and end in text:
        head, rest = text.split(start, 1)
        _, tail = rest.split(end, 1)
        return head + block + tail
    return text.rstrip("\n") + f"\n\n## {heading}\n\n" + block + "\n"


def update_readme(readme: str | Path, table: str, tasks: str | None = None, converged: str | None = None,
                  fair: str | None = None) -> Path:
    """Replace the text between the bench-table (and bench-tasks, converged-table, fair-table) markers in
    `readme`; a missing block is appended as a new section."""
    readme = Path(readme)
    text = readme.read_text(encoding="utf-8") if readme.exists() else "# Benchmarks\n"
    if tasks is not None:
        text = _replace_block(text, TASKS_START, TASKS_END, tasks, "Tasks")
    text = _replace_block(text, START, END, table, "Results")
    if converged is not None:
        text = _replace_block(text, CONVERGED_START, CONVERGED_END, converged, "Converged protocol")
    if fair is not None:
        text = _replace_block(text, FAIR_START, FAIR_END, fair, "Fair budget table")
    readme.parent.mkdir(parents=True, exist_ok=True)
    readme.write_text(text, encoding="utf-8")
    return readme


def update_glance(readme: str | Path, table: str) -> Path | None:
    """Replace the glance block of the top-level README (only where its markers are)."""
    readme = Path(readme)
    if not readme.exists():
        return None
    text = readme.read_text(encoding="utf-8")
    if GLANCE_START not in text or GLANCE_END not in text:
        return None
    head, rest = text.split(GLANCE_START, 1)
    readme.write_text(head + GLANCE_START + "\n" + table + GLANCE_END + rest.split(GLANCE_END, 1)[1], encoding="utf-8")
    return readme


def fair_table(fair_dir: Path) -> str | None:
    """The glance table of the fair budget suite's results (None when the suite has not written any)."""
    from crystograph.bench.report import epochs_table, glance_table, load_results

    runs = load_results(fair_dir) if fair_dir.is_dir() else []
    if not runs:
        return None
    threads = sorted({str((r.get("hardware") or {}).get("torch_threads")) for r in runs} - {"None"})
    loads = [x for r in runs for x in [r.get("load_avg_1m_at_start") or (r.get("hardware") or {}).get(
        "load_avg_1m_at_start")] if x is not None]
    share = (f"each model in turn with {'/'.join(threads) or '?'} thread(s), load average at each start "
             f"{min(loads):.1f}–{max(loads):.1f}" if loads else "each model in turn")
    return (f"_Protocol: budget — {share} (`benchmarks/run_fair_suite.sh`; the JSONs record both), identical "
            "folds, the same training minutes per fold; results in `benchmarks/results/fair/`._\n\n"
            + glance_table(fair_dir, GLANCE_TASKS)
            + "\nEpochs reached per budget fold (min–max over the folds): a time-limited model's epochs swing "
              "when its share of the machine changes; CGCNN stops early (its patience), so its range is its own.\n\n"
            + epochs_table(fair_dir, GLANCE_TASKS))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", type=Path, default=HERE / "results")
    p.add_argument("--readme", type=Path, default=HERE / "README.md")
    p.add_argument("--stdout", action="store_true", help="print the table instead of editing the README")
    p.add_argument("--top-readme", type=Path, default=None,
                   help="README whose 'results at a glance' block is refreshed too (default: the repository's "
                        "README.md, but only when --results is the repository's results folder)")
    args = p.parse_args(argv)

    from crystograph.bench.report import converged_table, glance_table, make_table, summary_plot, task_table

    table = make_table(args.results)
    glance = glance_table(args.results, GLANCE_TASKS)
    converged = converged_table(args.results / "converged")
    fair = fair_table(args.results / "fair")
    if args.stdout:
        print(table)
        print(f"Budget runs ({args.results}):\n")
        print(glance)
        if fair is not None:
            print(fair)
        if (args.results / "converged").is_dir():  # a fair-suite folder has no converged runs
            print(f"Converged protocol ({args.results / 'converged'}):\n")
            print(converged)
        return 0
    top = args.top_readme
    if top is None and args.results.resolve() == (HERE / "results").resolve():
        top = HERE.parent / "README.md"
    if top is not None:  # the fair suite's table when it has results: the cleanest budget comparison
        print(update_glance(top, fair if fair is not None else glance))
    print(update_readme(args.readme, table, task_table(), converged=converged, fair=fair))
    print(summary_plot(args.results, args.results / "plots" / "summary.png"))
    if fair is not None:
        print(summary_plot(args.results / "fair", args.results / "plots" / "fair_summary.png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
