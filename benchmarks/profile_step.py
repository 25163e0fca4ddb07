"""Where a training step's time goes: torch profiler on seeded MP batches, grouped by operator and shape.

    .venv/bin/python benchmarks/profile_step.py [--preset small] [--precision fp32] [--batch-size 32] [--rows 25]

Builds graphs for 3 seeded batches of MP structures (``mp_mtcgcnn``, seed 0), times full training steps (AdamW,
L1, no Lightning; fastest of 2 passes over the 3 batches, after one warm-up step), then profiles one step and
prints the operators by self CPU time with their input shapes, and the share of the step taken by element-wise
operators on line-graph-sized tensors vs matrix products. Writes ``benchmarks/results/profile_step_<preset>.json``
(shares only: absolute times move with the machine's load).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import random
import sys
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import _common  # noqa: E402

ELEMENTWISE = {"aten::mul", "aten::add", "aten::sum", "aten::div", "aten::sub", "aten::scatter_add_",
               "aten::index_select", "aten::copy_", "aten::gelu", "aten::gelu_backward", "aten::softmax",
               "aten::_softmax", "aten::_softmax_backward_data", "aten::exp"}
MATMUL = {"aten::mm", "aten::addmm", "aten::bmm"}


def batches(n_batches: int, batch_size: int, seed: int):
    from pymatgen.core import Structure
    from torch_geometric.data import Batch

    from crystograph.data import build_graphs
    from crystograph.structures import StructureRecord

    csv.field_size_limit(1 << 30)
    path = _common.SHARED_DATA / "mp_mtcgcnn" / "mp_eform_gap.csv.gz"
    rows = list(csv.DictReader(gzip.open(path, "rt")))
    picked = random.Random(seed).sample(range(len(rows)), n_batches * batch_size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        records = [StructureRecord(id=rows[i]["material_id"], structure=Structure.from_str(rows[i]["cif"], fmt="cif"),
                                   targets={"y": float(rows[i]["formation_energy_per_atom"])}, source=str(i))
                   for i in picked]
    graphs, _ = build_graphs(records, targets=["y"], progress=False)
    return [Batch.from_data_list(graphs[s:s + batch_size]) for s in range(0, len(graphs), batch_size)]


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="small")
    p.add_argument("--precision", default="fp32")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rows", type=int, default=25)
    args = p.parse_args(argv)
    _common.set_threads(args.threads)
    import torch
    from torch.profiler import profile

    from crystograph.config import ModelConfig
    from crystograph.nn import CrysToGraph

    data = batches(3, args.batch_size, args.seed)
    torch.manual_seed(args.seed)
    model = CrysToGraph(ModelConfig.preset(args.preset, precision=args.precision))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def step(b):
        opt.zero_grad()
        loss = (model(b).squeeze(-1) - b.y.view(-1)).abs().mean()
        loss.backward()
        opt.step()

    step(data[0])
    passes = []
    for _ in range(2):
        t = time.perf_counter()
        for b in data:
            step(b)
        passes.append((time.perf_counter() - t) / len(data))
    with profile(record_shapes=True) as prof:
        step(data[1])
    events = prof.key_averages(group_by_input_shape=True)
    print(events.table(sort_by="self_cpu_time_total", row_limit=args.rows, max_name_column_width=28,
                       max_shapes_column_width=70))
    total = sum(e.self_cpu_time_total for e in events)
    line_edges = int(data[1].lg_edge_index.size(1))
    share = {"elementwise": sum(e.self_cpu_time_total for e in events if e.key in ELEMENTWISE) / total,
             "matmul": sum(e.self_cpu_time_total for e in events if e.key in MATMUL) / total}
    out = {"benchmark": "profile_step", "command": _common.command_line(), "preset": args.preset,
           "precision": args.precision, "batch_size": args.batch_size, "seed": args.seed,
           "step_s_fastest_pass": min(passes),
           "profiled_batch": {"atoms": int(data[1].num_nodes), "edges": int(data[1].edge_index.size(1)),
                              "line_edges": line_edges},
           "share_of_self_cpu_time": share, "hardware": _common.hardware(args.threads),
           "commit": _common.git_commit()}
    print({k: round(v, 3) for k, v in share.items()}, f"step {min(passes):.2f} s")
    _common.write_json(HERE / "results" / f"profile_step_{args.preset}.json", out)


if __name__ == "__main__":
    main()
