"""Resident memory of training on a dataset held in memory (a list of graphs) vs streamed from a graph store.

    python benchmarks/memory.py --n 2000 8000 --threads 1

For each size and mode, a fresh process: parse the first N structures of the MP set (`local_mp_e_form`), build
their graphs (from the graph cache when warm), drop the parsed structures, then train the `small` preset for one
epoch. A sampler thread reads VmRSS every 0.1 s; the JSON holds the peak of each phase (parse, graphs, epoch), so
what grows with N is visible phase by phase. Results: `benchmarks/results/memory.json`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Peak:
    """Peak VmRSS since the last `mark`, sampled by a background thread."""

    def __init__(self):
        self.peak, self.stop = rss_mb(), False
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while not self.stop:
            self.peak = max(self.peak, rss_mb())
            time.sleep(0.1)

    def mark(self) -> float:
        value, self.peak = max(self.peak, rss_mb()), rss_mb()
        return round(value, 1)


def child(n: int, mode: str, data_dir: str, threads: int) -> dict:
    import gc
    import tempfile

    import torch

    from crystograph.bench.loaders import load_task
    from crystograph.bench.registry import get_task
    from crystograph.config import ModelConfig, TrainConfig
    from crystograph.data import build_graphs
    from crystograph.data.coremof import default_cache_dir
    from crystograph.nn import CrysToGraph
    from crystograph.train.fit import fit

    torch.set_num_threads(threads)
    peak = Peak()
    out = {"n": n, "mode": mode, "start_mb": round(rss_mb(), 1)}
    task = get_task("local_mp_e_form")
    records = load_task(task, data_dir, limit=n, progress=False).records
    out["parse_peak_mb"] = peak.mark()
    store_dir = Path(tempfile.mkdtemp()) if mode == "store" else None
    t0 = time.monotonic()
    graphs, _ = build_graphs(records, ModelConfig.preset("small").graph, targets=[task.target],
                             cache_dir=default_cache_dir() / "graphs", progress=False, store_dir=store_dir)
    out["graphs_s"] = time.monotonic() - t0
    del records
    gc.collect()
    out["graphs_peak_mb"] = peak.mark()
    out["after_graphs_mb"] = round(rss_mb(), 1)
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory() as run:
        fit(CrysToGraph(ModelConfig.preset("small")), graphs, [], TrainConfig.preset("small", epochs=1, patience=0),
            run, progress=False)
    out["epoch_s"] = time.monotonic() - t0
    out["epoch_peak_mb"] = peak.mark()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, nargs="+", default=[2000, 8000])
    parser.add_argument("--modes", nargs="+", default=["list", "store"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "memory.json")
    parser.add_argument("--child", nargs=2, metavar=("N", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(int(args.child[0]), args.child[1], args.data_dir, args.threads)))
        return
    from crystograph.bench.meta import git_commit, hardware, versions

    rows = []
    for n in args.n:
        for mode in args.modes:
            proc = subprocess.run([sys.executable, __file__, "--child", str(n), mode, "--threads", str(args.threads),
                                   "--data-dir", args.data_dir], capture_output=True, text=True, check=True)
            rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            print(rows[-1], flush=True)
    doc = {"what": "peak resident memory (VmRSS) per phase, list of graphs vs graph store, small preset, one epoch",
           "rows": rows, "command": "python " + " ".join(sys.argv), "hardware": hardware("cpu", args.threads),
           "versions": versions(), "commit": git_commit(ROOT)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=2, default=str))
    tmp.replace(args.out)


if __name__ == "__main__":
    main()
