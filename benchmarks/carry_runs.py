"""Carry finished folds of long benchmark runs from one machine (or session) to the next.

    .venv/bin/python benchmarks/carry_runs.py save [--runs runs] [--to benchmarks/carry]
    .venv/bin/python benchmarks/carry_runs.py restore [--runs runs] [--to benchmarks/carry]

The benchmark runners resume from their run folders (``runs/``, not tracked by git): a finished fold is loaded,
never recomputed. A machine that is replaced between sessions loses those folders. ``save`` copies what marks and
describes a *finished* fold into ``benchmarks/carry/`` (tracked), ``restore`` copies it back, so that the same
command resumes after the last finished fold on a new machine. Copied:

* ``crystograph bench`` folds (``<run-dir>/<task>/<model>/fold_<k>/`` with a ``fold.json``): ``fold.json``,
  ``predictions.csv`` and the members' ``train/{fit,member}.json``, ``member_predictions.csv``, ``metrics.csv``
  (learning curves), plus the model folder's ``settings.json`` (a rerun with other settings stays refused);
* ALIGNN folds (``benchmarks/alignn_train.py --preds-dir``): ``<task>__<model>__fold<k>.{csv,json}`` and the
  folder's ``__settings.json``.

Never copied: checkpoints (an unfinished fold restarts from its beginning on the new machine), graphs, plots.
``restore`` never overwrites a file that differs from the carried one; it says so and stops.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
FOLD_FILES = ("fold.json", "predictions.csv")
MEMBER_FILES = ("fit.json", "member.json", "member_predictions.csv", "metrics.csv")


def finished_files(runs: Path) -> list[Path]:
    """Paths (relative to ``runs``) of every file that describes a finished fold."""
    out: set[Path] = set()
    for done in runs.rglob("fold_*/fold.json"):
        fold = done.parent
        out.update(fold / name for name in FOLD_FILES if (fold / name).is_file())
        for member in fold.rglob("*"):
            if member.name in MEMBER_FILES and "checkpoints" not in member.parts and member.is_file():
                out.add(member)
        if (fold.parent / "settings.json").is_file():
            out.add(fold.parent / "settings.json")
    for csv_file in runs.rglob("*__fold*.csv"):  # alignn_train.py: the CSV is written last, the "done" marker
        out.add(csv_file)
        for extra in (csv_file.with_suffix(".json"), *csv_file.parent.glob("*__settings.json")):
            if extra.is_file():
                out.add(extra)
    return sorted(p.relative_to(runs) for p in out)


def copy(files: list[Path], src: Path, dst: Path, *, overwrite: bool) -> int:
    copied = 0
    for rel in files:
        a, b = src / rel, dst / rel
        if b.exists():
            if filecmp.cmp(a, b, shallow=False):
                continue
            if not overwrite:
                sys.exit(f"carry_runs: {b} differs from {a}; not overwritten (move it away to restore)")
        b.parent.mkdir(parents=True, exist_ok=True)
        tmp = b.with_name(b.name + ".tmp")
        shutil.copyfile(a, tmp)
        tmp.replace(b)
        copied += 1
    return copied


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("action", choices=("save", "restore"))
    p.add_argument("--runs", type=Path, default=HERE.parent / "runs", help="the runners' folder (default runs/)")
    p.add_argument("--to", type=Path, default=HERE / "carry", help="the tracked copy (default benchmarks/carry/)")
    args = p.parse_args(argv)
    if args.action == "save":
        files = finished_files(args.runs)
        n = copy(files, args.runs, args.to, overwrite=True)
        print(f"carry_runs: {len(files)} files of finished folds under {args.runs}, {n} new or changed -> {args.to}")
    else:
        files = sorted(p.relative_to(args.to) for p in args.to.rglob("*") if p.is_file())
        n = copy(files, args.to, args.runs, overwrite=False)
        print(f"carry_runs: {n} of {len(files)} carried files restored into {args.runs}")


if __name__ == "__main__":
    main()
