"""Time and memory vs atoms per cell (issue 13, item 4): graph build, inference, one training step.

Cases: supercells of rocksalt NaCl (conventional 8-atom cell x m^3: highly symmetric, so the Laplacian has
eigenspaces of multiplicity up to 24 — the worst case for the sparse eigensolver) and of a QMOF metal-organic
framework (low symmetry; 384 atoms x 1, 2, 4, 8). Each case runs in its own subprocess (`--one`), so its
peak RSS (`resource.getrusage` ru_maxrss, a high-water mark) is its own. Per case, in this order:

  * neighbours_s: the k-NN search (`neighbors.knn`, as `build_graph` calls it);
  * pe_sparse_s: `positional_encoding` as shipped (sparse paths above `encodings.SPARSE_MIN_ATOMS` atoms);
  * build_s: the whole `build_graph` (k-NN, features, line graph, PE);
  * infer_s, train_step_s: the `small` preset on a batch of this one crystal (one untimed warm-up call each;
    training = AdamW + L1 backward), peak_rss_mb = ru_maxrss after these (what predicting it costs);
  * pe_dense_s: the same PE forced onto the dense paths (the code before this change), run last, so its
    memory (peak_rss_dense_pe_mb) does not count in peak_rss_mb; pe_max_abs_diff = |sparse - dense| max.

    .venv/bin/python benchmarks/scaling.py            # all cases -> benchmarks/results/scaling.json
    .venv/bin/python benchmarks/scaling.py --quick    # the small cases only, printed, not saved
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

THREADS = 1
_common.set_threads(THREADS)

QMOF_FILE = "qmof/qmof_bandgap_gt150.csv.gz"
QMOF_ID = "qmof-6da396d"  # 384 atoms
CASES = [("rocksalt", m) for m in range(1, 8)] + [("qmof", s) for s in ("1x1x1", "2x1x1", "2x2x1", "2x2x2")]


def _structure(kind: str, size):
    from pymatgen.core import Lattice, Structure

    if kind == "rocksalt":
        s = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
        return s * ((int(size),) * 3), f"NaCl conventional cell x {size}x{size}x{size}"
    import pandas as pd

    df = pd.read_csv(_common.REPO_ROOT.parent / "shared" / "data" / QMOF_FILE)
    cif = df.loc[df.qmof_id == QMOF_ID, "cif"].iloc[0]
    s = Structure.from_str(cif, fmt="cif")
    mult = tuple(int(x) for x in str(size).split("x"))
    return s * mult, f"{QMOF_ID} ({s.composition.reduced_formula}) x {size}"


def _maxrss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def run_one(kind: str, size) -> dict:
    import numpy as np
    import torch
    from torch_geometric.data import Batch

    import crystograph.graphs.encodings as enc
    from crystograph.config import GraphConfig, ModelConfig
    from crystograph.graphs import build_graph
    from crystograph.graphs.neighbors import knn
    from crystograph.nn import CrysToGraph

    torch.manual_seed(0)
    enc.positional_encoding(np.array([0, 1]), np.array([1, 0]), None, 2)  # imports scipy (not timed)
    structure, label = _structure(kind, size)
    cfg = GraphConfig()
    n = len(structure)
    row = {"case": f"{kind}-{size}", "structure": label, "atoms": n, "rss_start_mb": round(_maxrss_mb(), 1)}

    z = np.array([site.specie.Z for site in structure])
    t = time.perf_counter()
    nb = knn(np.asarray(structure.cart_coords), np.asarray(structure.lattice.matrix), cfg.k, cfg.max_radius,
             atomic_numbers=z, periodic=(True, True, True), frame=cfg.frame)
    row["neighbours_s"] = time.perf_counter() - t
    row["edges"] = int(nb.neighbor.size)

    outcomes = []  # did the sparse eigensolver certify its result (False: dense fallback)?
    solver = enc._sparse_smallest_eigs

    def traced(*a, **kw):
        res = solver(*a, **kw)
        outcomes.append(res is not None)
        return res

    enc._sparse_smallest_eigs = traced
    t = time.perf_counter()
    pe = enc.positional_encoding(nb.neighbor, nb.centre, nb.shift, n, cfg).numpy()
    row["pe_sparse_s"] = time.perf_counter() - t
    row["pe_path"] = "dense" if n <= enc.SPARSE_MIN_ATOMS else ("sparse" if outcomes[0] else "sparse->dense fallback")
    enc._sparse_smallest_eigs = solver

    t = time.perf_counter()
    graph = build_graph(structure, cfg)
    row["build_s"] = time.perf_counter() - t
    row["line_edges"] = int(graph.lg_edge_index.size(1))
    row["rss_after_build_mb"] = round(_maxrss_mb(), 1)

    model = CrysToGraph(ModelConfig.preset("small"))
    batch = Batch.from_data_list([graph])
    batch.y = torch.zeros(1)
    model.eval()
    with torch.no_grad():
        model(batch)
        t = time.perf_counter()
        model(batch)
        row["infer_s"] = time.perf_counter() - t
    row["rss_after_infer_mb"] = round(_maxrss_mb(), 1)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    for timed in (False, True):
        t = time.perf_counter()
        opt.zero_grad()
        (model(batch).reshape(-1) - batch.y).abs().mean().backward()
        opt.step()
        if timed:
            row["train_step_s"] = time.perf_counter() - t
    row["peak_rss_mb"] = round(_maxrss_mb(), 1)

    enc.SPARSE_MIN_ATOMS = 1 << 62  # the dense paths = the code before this change
    t = time.perf_counter()
    pe_dense = enc.positional_encoding(nb.neighbor, nb.centre, nb.shift, n, cfg).numpy()
    row["pe_dense_s"] = time.perf_counter() - t
    row["peak_rss_dense_pe_mb"] = round(_maxrss_mb(), 1)
    row["pe_max_abs_diff"] = float(np.abs(pe - pe_dense).max())
    for key, val in row.items():
        if key.endswith("_s"):
            row[key] = round(val, 4)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--one", nargs=2, metavar=("KIND", "SIZE"), help=argparse.SUPPRESS)
    ap.add_argument("--quick", action="store_true", help="small cases only; print, do not save")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "scaling.json"))
    args = ap.parse_args()
    if args.one:
        print(json.dumps(run_one(*args.one)))
        return
    cases = [c for c in CASES if c[0] == "rocksalt" and int(c[1]) <= 4] if args.quick else CASES
    env = dict(os.environ, **{v: str(THREADS) for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")})
    rows, start = [], time.perf_counter()
    for kind, size in cases:
        proc = subprocess.run([sys.executable, __file__, "--one", kind, str(size)], capture_output=True, text=True,
                              env=env, check=False)
        if proc.returncode != 0:
            print(proc.stderr[-3000:], file=sys.stderr)
            raise SystemExit(f"case {kind} {size} failed")
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        row["load_avg_1m_after"] = round(os.getloadavg()[0], 2)
        rows.append(row)
        print(f"{row['case']:>16} n={row['atoms']:5d} knn {row['neighbours_s']:.3f}s  "
              f"PE sparse {row['pe_sparse_s']:.3f}s "
              f"dense {row['pe_dense_s']:.3f}s ({row['pe_path']}, diff {row['pe_max_abs_diff']:.1e})  "
              f"build {row['build_s']:.3f}s  "
              f"infer {row['infer_s']:.3f}s  train {row['train_step_s']:.3f}s  peak {row['peak_rss_mb']:.0f} MB "
              f"(dense PE {row['peak_rss_dense_pe_mb']:.0f} MB)  load {row['load_avg_1m_after']}", flush=True)
    if args.quick:
        return
    import crystograph.graphs.encodings as enc

    result = {
        "benchmark": "scaling",
        "command": _common.command_line(),
        "commit": _common.git_commit(),
        "hardware": _common.hardware(THREADS),
        "threads": THREADS,
        "sparse_min_atoms": enc.SPARSE_MIN_ATOMS,
        "preset": "small",
        "note": "one run per case, each in its own subprocess; the machine's 2 cores were shared with other jobs "
                "(load_avg_1m_after per row); peak_rss_mb = ru_maxrss after build + inference + one training step, "
                "before the dense-PE comparison",
        "wall_s": round(time.perf_counter() - start, 1),
        "rows": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
