"""Masked-atom pretraining on the corpus of benchmarks/pretrain_corpus.py: the run the default embeddings ship from.

    .venv/bin/python benchmarks/pretrain_default.py     # runs/pretrain_corpus/corpus.csv → runs/pretrain_default
    .venv/bin/python benchmarks/pretrain_default.py --epochs 50 --device gpu
    .venv/bin/python benchmarks/ship_embeddings.py runs/pretrain_default  # then ship the table

Resumable: rerun the same command and training continues from OUT/checkpoints/last.ckpt (the graphs come from
the graph cache). Writes what `crystograph.pretrain.pretrain` writes (atom_embeddings.safetensors, pretrain.json,
metrics.csv, pretrain_loss.png) plus OUT/corpus.json: the corpus file, its sha256 and summary, the command and the
commit, which ship_embeddings.py puts on the card.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

from _common import REPO_ROOT, SHARED_DATA, command_line, set_threads

PROVENANCE = "corpus.json"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--corpus", type=Path, default=REPO_ROOT / "runs" / "pretrain_corpus" / "corpus.csv")
    p.add_argument("--out", type=Path, default=REPO_ROOT / "runs" / "pretrain_default")
    p.add_argument("--data-dir", type=Path, default=SHARED_DATA)
    p.add_argument("--embed-dim", type=int, default=64)
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--max-minutes", type=float, default=None, help="wall-clock budget (not reproducible)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--no-progress", dest="progress", action="store_false")
    return p.parse_args(argv)


def provenance(args: argparse.Namespace) -> dict:
    """The corpus this run reads (file, sha256, summary) and how the run was started."""
    from crystograph.bench.meta import versions

    summary_path = args.corpus.parent / "summary.json"
    return {"corpus_file": str(args.corpus), "corpus_sha256": hashlib.sha256(args.corpus.read_bytes()).hexdigest(),
            "corpus_summary": json.loads(summary_path.read_text()) if summary_path.is_file() else None,
            "command": command_line(), "commit": versions().get("git_commit")}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    set_threads(args.threads)
    from crystograph.bench.meta import write_json
    from crystograph.data.coremof import default_cache_dir
    from crystograph.errors import InputError
    from crystograph.pretrain import pretrain
    from crystograph.pretrain.corpus import load_corpus

    info = provenance(args)
    previous = args.out / PROVENANCE
    if previous.is_file() and json.loads(previous.read_text())["corpus_sha256"] != info["corpus_sha256"]:
        raise InputError(str(args.out), "holds a run on another corpus; use another --out (or delete it)")
    write_json(previous, info)
    records, skipped = load_corpus(args.corpus, args.data_dir, progress=args.progress)
    print(f"corpus {args.corpus}: {len(records)} structures read back, {len(skipped)} not")
    result = pretrain(records, args.out, embed_dim=args.embed_dim, epochs=args.epochs, max_minutes=args.max_minutes,
                      batch_size=args.batch_size, lr=args.lr, seed=args.seed, progress=args.progress,
                      accelerator=args.device, cache_dir=default_cache_dir() / "graphs", read_skipped=skipped)
    print(f"masked-atom accuracy {result.accuracy:.3f} ([MASK] atoms {result.accuracy_mask_token:.3f}, majority "
          f"{result.baseline_accuracy:.3f}), {result.epochs} epochs, {result.wall_s / 60:.1f} min "
          f"→ {result.embedding_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
