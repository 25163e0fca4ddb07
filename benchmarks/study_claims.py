"""Does our ablation data reproduce the paper's three claims? Verdicts from the study cells on disk.

    .venv/bin/python benchmarks/study_claims.py [--studies benchmarks/results/studies] [--readme benchmarks/README.md]

Reads the finished folds of `benchmarks/studies/components.yaml` and `layouts.yaml` (their cells under
``--studies``, whatever the studies' progress: a claim whose cells are missing is "incomplete"), applies
`crystograph.bench.claims` (the rule is printed with the table), writes ``<studies>/claims.json`` and replaces
the block between the claims markers in ``--readme``. Trains nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import _common  # noqa: E402

START, END = "<!-- claims:start -->", "<!-- claims:end -->"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--studies", type=Path, default=HERE / "results" / "studies")
    p.add_argument("--readme", type=Path, default=HERE / "README.md")
    p.add_argument("--stdout", action="store_true", help="print the table, change no file")
    args = p.parse_args(argv)

    from crystograph.bench.claims import check_claims, claims_markdown
    from crystograph.bench.study import load_study
    from crystograph.bench.study_summary import summarize

    docs = {}
    for name in ("components", "layouts"):
        study = load_study(HERE / "studies" / f"{name}.yaml")
        rows = summarize(study, args.studies)
        docs[name] = {"results": rows} if any(r["folds"] for r in rows) else None
    result = check_claims(docs["components"], docs["layouts"])
    folds = {name: {f"{r['task']} × {r['variant']}": len(r["folds"]) for r in (doc or {}).get("results", [])}
             for name, doc in docs.items()}
    table = claims_markdown(result)
    if args.stdout:
        print(table)
        return 0
    _common.write_json(args.studies / "claims.json", {"claims": result, "folds_per_cell": folds,
                                                      "command": _common.command_line(),
                                                      "commit": _common.git_commit()})
    text = args.readme.read_text(encoding="utf-8")
    if START in text and END in text:
        head, rest = text.split(START, 1)
        args.readme.write_text(head + START + "\n" + table + END + rest.split(END, 1)[1], encoding="utf-8")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
