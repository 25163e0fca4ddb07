"""Ship a pretraining run's atom embeddings as the package default (`--atom-embeddings default`).

    .venv/bin/python benchmarks/ship_embeddings.py runs/pretrain_default [--dtype float16]

Copies PRETRAIN_DIR/atom_embeddings.safetensors to src/crystograph/embeddings/default.safetensors (float32 or
float16, at most 2 MB) with a coverage mask ("covered" [119] uint8: 1 for elements in at least --min-structures
corpus structures; the model uses only the 92-d features for the others and warns), and writes the card
default.json: the corpus (file, sha256, size, sources, excluded evaluation tasks), epochs, masked-atom accuracy
(all masked atoms and [MASK]-token atoms only) against the majority-class baseline, the pretraining command and
commit (from PRETRAIN_DIR/corpus.json, written by benchmarks/pretrain_default.py), and this command.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

from _common import REPO_ROOT, command_line

MAX_BYTES = 2 * 1024 * 1024
DTYPES = ("float32", "float16")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("pretrain_dir", type=Path)
    p.add_argument("--dest", type=Path, default=REPO_ROOT / "src" / "crystograph" / "embeddings")
    p.add_argument("--dtype", choices=DTYPES, default="float32")
    p.add_argument("--corpus-summary", type=Path, default=None,
                   help="corpus summary JSON (default: the one recorded in PRETRAIN_DIR/corpus.json)")
    p.add_argument("--min-structures", type=int, default=1,
                   help="an element counts as covered when at least this many corpus structures contain it")
    return p.parse_args(argv)


def _read_json(path: Path, what: str) -> dict:
    if not path.is_file():
        raise SystemExit(f"error: {path} not found ({what})")
    return json.loads(path.read_text())


def run_info(pretrain_dir: Path, corpus_summary: Path | None) -> tuple[dict, dict, dict]:
    """(pretrain.json, corpus.json provenance or {}, corpus summary)."""
    pre = _read_json(pretrain_dir / "pretrain.json", "a finished `pretrain` run writes it")
    prov_path = pretrain_dir / "corpus.json"
    prov = json.loads(prov_path.read_text()) if prov_path.is_file() else {}
    if corpus_summary is not None:
        summary = _read_json(corpus_summary, "benchmarks/pretrain_corpus.py writes it")
    elif prov.get("corpus_summary"):
        summary = prov["corpus_summary"]
    else:
        raise SystemExit(f"error: {prov_path} names no corpus summary; pass --corpus-summary")
    if prov and summary.get("corpus_sha256") != prov.get("corpus_sha256"):
        raise SystemExit("error: the corpus summary is not of the corpus this run was pretrained on (sha256 differs)")
    return pre, prov, summary


def coverage_mask(summary: dict, n_rows: int, min_structures: int):
    """uint8 [n_rows]: 1 for Z whose element occurs in at least `min_structures` corpus structures (row 0 = 0)."""
    import torch
    from pymatgen.core.periodic_table import Element

    per_element = summary["elements"]["structures_per_element"]
    covered = torch.zeros(n_rows, dtype=torch.uint8)
    for z in range(1, min(n_rows, 119)):
        covered[z] = int(per_element.get(Element.from_Z(z).symbol, 0) >= min_structures)
    return covered


def card(args, pre: dict, prov: dict, summary: dict, covered, path: Path, shape) -> dict:
    from crystograph import __version__
    from crystograph.bench.meta import versions
    from pymatgen.core.periodic_table import Element

    present = [Element.from_Z(z).symbol for z in range(1, len(covered)) if covered[z]]
    return {
        "name": "default",
        "what": "masked-atom pretrained atom embeddings (paper A.1); row = atomic number, row 0 = MASK token",
        "file": path.name, "sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "shape": list(shape),
        "dtype": args.dtype, "covered_elements": present,
        "uncovered_elements_z1_100": [Element.from_Z(z).symbol for z in range(1, 101) if not covered[z]],
        "coverage_rule": f"element in at least {args.min_structures} corpus structure(s); uncovered elements use the "
                         "92-d atom features only (their embedding part is zero) and the model warns",
        "corpus": {"file": prov.get("corpus_file") or summary.get("corpus_file"), "sha256": summary["corpus_sha256"],
                   "n_structures": summary["n_structures"], "max_atoms": summary["max_atoms"],
                   "limit": summary.get("limit"), "sources": {s["source"]: s["kept"] for s in summary["sources"]},
                   "excluded_eval_tasks": sorted(summary["eval_tasks"]), "built_by": summary.get("command"),
                   "built_at_commit": summary.get("commit")},
        "epochs": pre["epochs"], "accuracy": pre["accuracy"], "accuracy_mask_token": pre["accuracy_mask_token"],
        "baseline_accuracy": pre["baseline_accuracy"], "loss": pre["loss"], "evaluated_on": pre.get("evaluated_on"),
        "n_train": pre["n_train"], "n_val": pre["n_val"], "pretrain_config": pre.get("config"),
        "command": prov.get("command"), "commit": prov.get("commit"),
        "ship_command": command_line(), "ship_commit": versions().get("git_commit"), "crystograph_version": __version__,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    from crystograph.embeddings import DEFAULT_CARD, DEFAULT_FILE, load_table, save_table
    from crystograph.train.export import write_atomic

    pre, prov, summary = run_info(args.pretrain_dir, args.corpus_summary)
    table = load_table(args.pretrain_dir / "atom_embeddings.safetensors").table
    covered = coverage_mask(summary, table.size(0), args.min_structures)
    meta = {"corpus_sha256": summary["corpus_sha256"], "covered": "1 = element occurs in the pretraining corpus"}
    out = save_table(args.dest / DEFAULT_FILE, table, covered, dtype=getattr(torch, args.dtype), metadata=meta)
    size = out.stat().st_size
    if size > MAX_BYTES:
        out.unlink()
        raise SystemExit(f"error: the table has {size} bytes, over 2 MB; use --dtype float16 or a smaller --embed-dim")
    doc = card(args, pre, prov, summary, covered, out, tuple(table.shape))
    write_atomic(args.dest / DEFAULT_CARD, (json.dumps(doc, indent=2) + "\n").encode())
    print(f"shipped {out} ({out.stat().st_size / 1024:.0f} KiB, {args.dtype}, {int(covered.sum())} elements covered; "
          f"masked-atom accuracy {pre['accuracy']:.3f}) and {args.dest / DEFAULT_CARD}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
