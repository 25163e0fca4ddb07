"""Speed of the factorised eTGC attention vs eqs. 2-9 written out, inside the whole model, in one run.

    .venv/bin/python benchmarks/etgc_speed.py [--task local_perov5] [--n 640] [--preset small] [--repeats 3]

Runs in OUR venv. Graphs of the first ``--n`` structures of a local task; the same model (same weights) trains
on the same batches (batch 32, AdamW, L1) once with ``ETGC.forward`` (factorised, dense kNN layout) and once
with every eTGC layer switched to ``ETGC.reference_forward`` (per-edge ``k_ji, v_ji`` materialised, PyG
softmax/scatter). The two alternate ``--repeats`` times; the fastest pass of each is kept. Also checks that
both give the same predictions. Writes ``benchmarks/results/etgc_speed.json``.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import _common  # noqa: E402


def _parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--task", default="local_perov5")
    p.add_argument("--n", type=int, default=640)
    p.add_argument("--preset", default="small")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=HERE / "results" / "etgc_speed.json")
    return p.parse_args(argv)


ARGS = _parse_args()
_common.set_threads(ARGS.threads)
import torch  # noqa: E402


def use_reference(model) -> None:
    from crystograph.nn.etgc import ETGC

    for layer in model.modules():
        if isinstance(layer, ETGC):
            layer.forward = (lambda lyr: lambda x, ei, e, **kw: lyr.reference_forward(x, ei, e)[:2])(layer)


def main() -> None:
    from torch_geometric.data import Batch

    from crystograph.bench.loaders import load_task
    from crystograph.bench.registry import get_task
    from crystograph.config import ModelConfig
    from crystograph.data import build_graphs
    from crystograph.nn import CrysToGraph

    task = get_task(ARGS.task)
    loaded = load_task(task, limit=ARGS.n)
    cfg = ModelConfig.preset(ARGS.preset)
    graphs, skipped = build_graphs(loaded.records, cfg.graph, targets=[task.target], progress=False)
    bs = ARGS.batch_size
    batches = [Batch.from_data_list(graphs[s:s + bs]) for s in range(0, len(graphs), bs)]
    torch.manual_seed(ARGS.seed)
    fast = CrysToGraph(cfg)
    slow = copy.deepcopy(fast)
    use_reference(slow)  # patched per instance: patch every copy again (a deepcopy would keep the old closures)
    with torch.no_grad():
        fast.eval(), slow.eval()
        diff = max(float((fast(b) - slow(b)).abs().max()) for b in batches[:4])
    t0 = time.perf_counter()
    runs = {"factorised": [], "reference": []}
    for rep in range(ARGS.repeats):
        for name in ("factorised", "reference"):
            model = copy.deepcopy(fast)  # same starting weights for both
            if name == "reference":
                use_reference(model)
            runs[name].append(_common.time_train_and_infer(model, batches))
            print(f"[etgc_speed] rep {rep} {name}: train {runs[name][-1][0]:.2f} s, infer {runs[name][-1][1]:.2f} s",
                  flush=True)
    best = {k: {"train_s": min(r[0] for r in v), "infer_s": min(r[1] for r in v)} for k, v in runs.items()}
    n = len(graphs)
    result = {
        "benchmark": "etgc_speed", "command": _common.command_line(), "seed": ARGS.seed, "task": ARGS.task,
        "n_structures": n, "skipped": len(skipped), "preset": ARGS.preset, "batch_size": bs,
        "atoms": int(sum(g.num_nodes for g in graphs)), "edges": int(sum(g.edge_index.size(1) for g in graphs)),
        "line_edges": int(sum(g.lg_edge_index.size(1) for g in graphs)),
        "max_abs_prediction_difference": diff, "best": best,
        "train_speedup": best["reference"]["train_s"] / best["factorised"]["train_s"],
        "infer_speedup": best["reference"]["infer_s"] / best["factorised"]["infer_s"],
        "runs": runs, "repeats": ARGS.repeats, "hardware": _common.hardware(ARGS.threads),
        "git_commit": _common.git_commit(), "wall_s": time.perf_counter() - t0,
    }
    ARGS.out.parent.mkdir(parents=True, exist_ok=True)
    ARGS.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("train_speedup", "infer_speedup", "max_abs_prediction_difference")}))


if __name__ == "__main__":
    main()
