"""Build the pretraining corpus (issue 15): local datasets + CoRE MOF 2019, de-duplicated, leakage-free.

    .venv/bin/python benchmarks/pretrain_corpus.py                       # full corpus, ≤ 64 atoms per cell
    .venv/bin/python benchmarks/pretrain_corpus.py --limit 50 --out /tmp/corpus --summary /tmp/corpus/s.json

How (details in `crystograph.pretrain.corpus` and `crystograph.pretrain.fingerprint`):
  sources      every distinct dataset file of the registry's local tasks (all rows, data-quality filters kept:
               C2DB `cell_orthogonal`), and CoRE MOF 2019-ASR; cells over --max-atoms atoms are left out;
  fingerprint  reduced formula + the multiset of every atom's neighbour shells out to its 12th neighbour
               ((distance in 0.05 Å bins, element) pairs), counts divided by their gcd: invariant to rotation,
               origin, atom order, cell choice and supercells;
  leakage      every structure of the evaluation tasks (--eval-tasks; with 5-fold CV each is in a test fold) is
               fingerprinted, and a corpus structure matching any of them (on either of two bin grids offset by
               half a bin) is removed;
  dedup        of structures with the same fingerprint the first (source order, then file order) is kept.

Writes OUT/corpus.csv (source, id, n_atoms, formula, fingerprint, fingerprint_shifted; atomically) and the summary
(per-source counts, total, element coverage, corpus sha256, command, commit) to --summary and OUT/summary.json.
Read the structures back with `crystograph.pretrain.corpus.load_corpus(OUT/corpus.csv)`
(benchmarks/pretrain_default.py pretrains on them).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import sys
import time
from pathlib import Path

from _common import REPO_ROOT, SHARED_DATA, command_line, set_threads

CORPUS_FILE = "corpus.csv"
SUMMARY_FILE = "summary.json"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from crystograph.pretrain.corpus import DEFAULT_MAX_ATOMS, EVAL_TASKS

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=REPO_ROOT / "runs" / "pretrain_corpus", help="corpus folder")
    p.add_argument("--summary", type=Path, default=REPO_ROOT / "benchmarks" / "results" / "pretrain_corpus.json")
    p.add_argument("--data-dir", type=Path, default=SHARED_DATA)
    p.add_argument("--max-atoms", type=int, default=DEFAULT_MAX_ATOMS, help="larger cells are left out")
    p.add_argument("--limit", type=int, default=None, help="rows per source and per evaluation task (smoke tests)")
    p.add_argument("--eval-tasks", default=",".join(EVAL_TASKS), help="comma-separated tasks kept out of the corpus")
    p.add_argument("--sources", default=None, help="comma-separated sources (default: all)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--no-progress", dest="progress", action="store_false")
    return p.parse_args(argv)


def summary(result, args, corpus_path: Path, wall_s: float) -> dict:
    from crystograph.bench.meta import versions
    from crystograph.pretrain.corpus import element_coverage
    from crystograph.pretrain.fingerprint import BIN, K

    data = corpus_path.read_bytes()
    return {
        "corpus_file": str(corpus_path),
        "corpus_sha256": hashlib.sha256(data).hexdigest(),
        "n_structures": len(result.rows),
        "n_atoms_total": sum(r.n_atoms for r in result.rows),
        "max_atoms": args.max_atoms,
        "limit": args.limit,
        "sources": [dataclasses.asdict(c) for c in result.counts],
        "eval_tasks": result.eval_counts,
        "elements": element_coverage(result.rows),
        "fingerprint": {"k": K, "bin_angstrom": BIN, "leakage": "match on either of two grids offset by half a bin",
                        "dedup": "first grid; first structure in source order kept"},
        "skipped_examples": [str(s) for s in result.skipped[:20]],
        "n_skipped": len(result.skipped),
        "wall_s": round(wall_s, 1),
        "command": command_line(),
        "commit": versions().get("git_commit"),
        "versions": versions(),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    set_threads(args.threads)
    from crystograph.bench.meta import write_json
    from crystograph.pretrain.corpus import build_corpus, write_corpus

    started = time.monotonic()
    result = build_corpus(args.data_dir, max_atoms=args.max_atoms, limit=args.limit,
                          eval_tasks=[t for t in args.eval_tasks.split(",") if t],
                          source_names=args.sources.split(",") if args.sources else None, progress=args.progress)
    corpus_path = write_corpus(result.rows, args.out / CORPUS_FILE)
    doc = summary(result, args, corpus_path, time.monotonic() - started)
    write_json(args.out / SUMMARY_FILE, doc)
    write_json(args.summary, doc)
    for c in result.counts:
        print(f"{c.source:28s} rows {c.rows:6d}  too large {c.too_large:6d}  fingerprinted {c.before_dedup:6d}  "
              f"leaked {c.leaked:5d}  duplicates {c.duplicates:5d}  kept {c.kept:6d}")
    absent = doc["elements"]["absent_symbols"]
    print(f"corpus: {doc['n_structures']} structures, sha256 {doc['corpus_sha256'][:16]}…, {corpus_path}; "
          f"{100 - len(absent)} of Z 1-100 present (absent: {' '.join(absent)}); summary {args.summary}")
    return 0 if result.rows else 1


if __name__ == "__main__":
    sys.exit(main())
