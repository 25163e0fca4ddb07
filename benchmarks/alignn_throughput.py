"""Training and inference throughput of ALIGNN's DGL-free model.  Runs INSIDE the ALIGNN venv.

    $ALIGNN_VENV/bin/python benchmarks/alignn_throughput.py structures.csv [--batch-size 32] [--threads 1]

Input CSV columns: ``id, cif, target``. Graphs as in ``alignn_train.py`` (``build_pure_torch_graph``,
cutoff 8 Å, 12 neighbours, line graph on; not timed here), model ``ALIGNNAtomWisePure`` with the published
ALIGNN architecture, AdamW, L1 loss. Timed: one pass of training steps over all structures (batches in a
seeded shuffled order, after 2 untimed warm-up steps) and one pass of inference (``no_grad``, eval mode).
Prints one JSON object on the last stdout line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import _common  # noqa: E402


def _parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("csv", type=Path)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                   help="bf16: training and inference steps under torch.autocast(bfloat16), as crystograph's bf16")
    p.add_argument("--device", default="cpu", help="cpu | cuda")
    return p.parse_args(argv)


ARGS = _parse_args()
_common.set_threads(ARGS.threads)
# alignn_train.py parses its own command line at import; give it one that describes the same graphs.
sys.argv = [sys.argv[0], str(ARGS.csv), "--task", "throughput", "--minutes-per-fold", "1", "--out", os.devnull,
            "--preds-dir", os.devnull, "--threads", str(ARGS.threads), "--quiet"]
import alignn_train as at  # noqa: E402
import torch  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402


def main() -> None:
    torch.set_num_threads(ARGS.threads)
    rows = _rows(ARGS.csv)
    samples, failures = at.build_samples(rows, at.ARGS)
    data = [samples[r["id"]] for r in rows if r["id"] in samples]
    at.seed_all(ARGS.seed)
    net = at.ALIGNNAtomWisePure(at.model_config(at.ARGS))
    criterion = torch.nn.L1Loss()
    loader = DataLoader(data, batch_size=ARGS.batch_size, shuffle=True, collate_fn=at.collate,
                        generator=torch.Generator().manual_seed(ARGS.seed))
    dev = torch.device(ARGS.device)
    net = net.to(dev)
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-3)  # over the parameters where they now live
    batches = [(g.to(dev), lg.to(dev), lat.to(dev), y.to(dev)) for g, lg, lat, y in loader]

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    autocast = torch.autocast(dev.type, dtype=torch.bfloat16, enabled=ARGS.precision == "bf16")
    autocast.__enter__()
    net.train()
    for b in batches[:2]:
        at.train_step(net, b, optimizer, criterion, dev)
    sync()
    t = time.perf_counter()
    for b in batches:
        at.train_step(net, b, optimizer, criterion, dev)
    sync()
    train_s = time.perf_counter() - t
    net.eval()
    with torch.no_grad():
        for g, lg, lat, _ in batches[:2]:
            net([g, lg, lat])
        sync()
        t = time.perf_counter()
        for g, lg, lat, _ in batches:
            net([g, lg, lat])
        sync()
    infer_s = time.perf_counter() - t
    autocast.__exit__(None, None, None)
    n = len(data)
    name = "alignn" if ARGS.precision == "fp32" else f"alignn-{ARGS.precision}"
    print(json.dumps({"model": name, "n": n, "failures": failures, "params": sum(p.numel() for p in net.parameters()),
                      "train_s": train_s, "train_structures_per_s": n / train_s,
                      "infer_s": infer_s, "infer_structures_per_s": n / infer_s}))


def _rows(path: Path) -> list[dict]:
    import csv

    csv.field_size_limit(1 << 30)
    with open(path, newline="") as fh:
        return [{"id": r["id"], "cif": r["cif"], "target": r["target"], "fold": "0"} for r in csv.DictReader(fh)]


if __name__ == "__main__":
    main()
