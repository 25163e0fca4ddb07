"""Do two single-threaded jobs share this machine well? Training-step rates alone, with 2 threads, and side by side.

    .venv/bin/python benchmarks/two_jobs.py [--seconds 25]

Runs the same small-preset training step (96 seeded MatBench phonons structures, batch 32, AdamW + L1) for
``--seconds`` in: one process with 1 thread; one process with 2 threads; two 1-thread processes started at the
same moment. Run it on an otherwise idle machine. Writes ``benchmarks/results/two_jobs.json``: steps/s of each
and the ratios to one process alone (how much a second job, or a second thread, adds).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import _common  # noqa: E402


def worker(threads: int, seconds: float, go_at: float) -> None:
    """One process: build the batches, then train from `go_at` for `seconds`; prints steps/s."""
    import warnings

    warnings.filterwarnings("ignore")
    import torch
    from torch_geometric.data import Batch

    from crystograph.bench.loaders import load_task
    from crystograph.bench.registry import TASKS
    from crystograph.config import ModelConfig
    from crystograph.data import build_graphs
    from crystograph.nn import CrysToGraph

    torch.set_num_threads(threads)
    loaded = load_task(TASKS["local_matbench_phonons"], _common.SHARED_DATA, limit=96, progress=False)
    graphs, _ = build_graphs(loaded.records, progress=False)
    batches = [Batch.from_data_list(graphs[s:s + 32]) for s in range(0, 96, 32)]
    torch.manual_seed(0)
    model = CrysToGraph(ModelConfig.preset("small"))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def step(b):
        opt.zero_grad()
        (model(b).squeeze(-1) - torch.zeros(b.num_graphs)).abs().mean().backward()
        opt.step()

    step(batches[0])
    while time.time() < go_at:
        time.sleep(0.01)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        step(batches[n % 3])
        n += 1
    print(n / (time.perf_counter() - t0))


def _start(threads: int, seconds: float, go_at: float) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
           "OPENBLAS_NUM_THREADS": str(threads)}
    return subprocess.Popen([sys.executable, __file__, "--worker", str(threads), str(seconds), str(go_at)],
                            stdout=subprocess.PIPE, text=True, env=env)


def _rate(procs: list[subprocess.Popen]) -> list[float]:
    return [float(p.communicate()[0].strip().splitlines()[-1]) for p in procs]


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]))
        return
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=25.0)
    args = p.parse_args()
    lead = 40.0  # seconds for the processes to build their batches before the timed window
    alone = _rate([_start(1, args.seconds, time.time() + lead)])[0]
    two_threads = _rate([_start(2, args.seconds, time.time() + lead)])[0]
    go = time.time() + lead
    pair = _rate([_start(1, args.seconds, go), _start(1, args.seconds, go)])
    out = {"benchmark": "two_jobs", "command": _common.command_line(), "seconds": args.seconds,
           "steps_per_s": {"one_process_1_thread": alone, "one_process_2_threads": two_threads,
                           "two_processes_1_thread_each": pair},
           "ratio_two_threads_over_one": two_threads / alone, "ratio_two_processes_over_one": sum(pair) / alone,
           "hardware": _common.hardware(1), "commit": _common.git_commit()}
    _common.write_json(HERE / "results" / "two_jobs.json", out)
    print({k: out[k] for k in ("steps_per_s", "ratio_two_threads_over_one", "ratio_two_processes_over_one")})


if __name__ == "__main__":
    main()
