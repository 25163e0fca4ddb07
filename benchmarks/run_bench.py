#!/usr/bin/env python
"""`crystograph bench` with this repository's folders as defaults.

Takes exactly the options of `crystograph bench` (see `--help`) and fills in, when not given,
``--out benchmarks/results``, ``--run-dir runs/bench`` (both under the repository root) and
``--data-dir`` = the shared datasets (``$CRYSTOGRAPH_SHARED_DATA`` or the ``shared/data`` folder
above the repository).

    python benchmarks/run_bench.py --list
    python benchmarks/run_bench.py local_matbench_jdft2d,local_supercon --model crystograph --preset small
    python benchmarks/run_bench.py local_small --model cgcnn --max-minutes 3
    python benchmarks/run_bench.py local_supercon --export-folds runs/folds   # CSVs for alignn_train.py
    python benchmarks/make_table.py                                           # refresh the README tables
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

RESULTS = _common.REPO_ROOT / "benchmarks" / "results"
RUNS = _common.REPO_ROOT / "runs" / "bench"


def repository_args(argv: list[str]) -> list[str]:
    """`argv` for `crystograph bench` with the repository's defaults for the folder options not given."""
    given = {a.split("=", 1)[0] for a in argv}
    defaults = {"--out": RESULTS, "--run-dir": RUNS, "--data-dir": _common.SHARED_DATA}
    extra = [item for flag, value in defaults.items() if flag not in given for item in (flag, str(value))]
    return ["bench", *argv, *extra]


def main(argv: list[str] | None = None) -> int:
    from crystograph.cli import app

    try:
        app(args=repository_args(list(sys.argv[1:] if argv is None else argv)), prog_name="run_bench.py")
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
