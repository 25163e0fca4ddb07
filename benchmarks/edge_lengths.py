"""How long are the k-NN edges? The distribution that sets the distance RBF range (GraphConfig.r_max).

For every local task under ../shared/data and for CoRE MOF 2019 (≤ 200 atoms), a seeded random sample of
structures (from the first --read-limit rows of each file) is taken, their k = 12 neighbour lists built (the graph's
own `neighbors.knn`), and the percentiles
of the edge length, the largest edge and the share of edges beyond 8, 10, 15 and 20 Å are written to
benchmarks/results/edge_lengths.json.

    .venv/bin/python benchmarks/edge_lengths.py --n 300
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import command_line, git_commit, hardware, write_json  # noqa: E402

TASKS = ("local_matbench_jdft2d", "local_matbench_phonons", "local_supercon", "local_c2db_gap",
         "local_2dmatpedia_exf", "local_jarvis_monolayers_phi", "local_perov5", "local_mp_e_form", "local_qmof_gap")
PERCENTILES = (50, 90, 99, 99.9, 100)


def _sample(records, n: int, seed: int):
    records = list(records)
    random.Random(seed).shuffle(records)
    return records[:n]


def _lengths(structures) -> np.ndarray:
    from crystograph.config import GraphConfig
    from crystograph.graphs.neighbors import knn

    cfg = GraphConfig()
    out = []
    for s in structures:
        nb = knn(s.cart_coords, s.lattice.matrix, cfg.k, cfg.max_radius, on_isolated_atoms="ignore", frame="lab")
        out.append(nb.dist)
    return np.concatenate(out)


def _summary(d: np.ndarray, n_structures: int) -> dict:
    return {
        "structures": n_structures,
        "edges": int(d.size),
        "percentiles_A": {str(p): round(float(np.percentile(d, p)), 3) for p in PERCENTILES},
        "share_beyond_A": {str(c): float((d > c).mean()) for c in (8, 10, 15, 20)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=300, help="structures per dataset (seeded random sample)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--read-limit", type=int, default=3000,
                        help="rows read per dataset (file order) before sampling; parsing all of MP takes minutes")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "edge_lengths.json"))
    args = parser.parse_args()

    from crystograph.bench.loaders import load_task
    from crystograph.bench.registry import get_task
    from crystograph.data.coremof import load_coremof

    results, start = {}, time.perf_counter()
    for name in TASKS:
        loaded = load_task(get_task(name), strict=False, progress=False, limit=args.read_limit)
        records = _sample(loaded.records, args.n, args.seed)
        results[name] = _summary(_lengths([r.structure for r in records]), len(records))
        print(name, results[name]["percentiles_A"], flush=True)
    mofs = load_coremof("LCD", max_atoms=200, progress=False)
    records = _sample(mofs.records, args.n, args.seed)
    results["coremof_2019_le200"] = _summary(_lengths([r.structure for r in records]), len(records))
    print("coremof", results["coremof_2019_le200"]["percentiles_A"], flush=True)
    everything = {k: v["percentiles_A"]["100"] for k, v in results.items()}
    write_json(Path(args.out), {
        "what": "k-NN (k=12, max_radius 20 Å) edge lengths per dataset, seeded random sample",
        "datasets": results, "largest_edge_A": max(everything.values()), "seed": args.seed,
        "command": command_line(), "commit": git_commit(), "hardware": hardware(1),
        "wall_s": round(time.perf_counter() - start, 1),
    })


if __name__ == "__main__":
    main()
