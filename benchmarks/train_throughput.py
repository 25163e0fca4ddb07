"""Training and inference throughput: CrysToGraph (small, paper presets) and CGCNN vs ALIGNN, same structures.

    .venv/bin/python benchmarks/train_throughput.py [--n 256] [--seed 0] [--threads 1] [--repeats 2]
    python benchmarks/train_throughput.py --device cuda --alignn-python python3 --out results/train_throughput_gpu.json

Runs in OUR venv. A seeded sample of ``--data`` (default supercon, CIF + Tc) is written to a temporary CSV;
then, one after the other (never at the same time) and ``--repeats`` times interleaved (fastest kept):

* ours: compact graphs from ``crystograph.data.build_graphs`` (not timed), then for each model one pass of
  training steps over all structures (batch ``--batch-size``, seeded shuffled order, AdamW, L1 on the raw
  target, 2 untimed warm-up steps; the RBF expansion of compact graphs happens inside the timed step, as in
  training) and one pass of ``no_grad`` inference in eval mode;
* ALIGNN: ``benchmarks/alignn_throughput.py`` in the ALIGNN venv (same loop around ALIGNN's published model).

No Lightning and no data loader workers on either side: the numbers are model step costs. With ``--device cuda``
both sides move their batches to the GPU before the clock starts and synchronise at the end of each timed pass.
Writes ``benchmarks/results/train_throughput.json``.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import _common  # noqa: E402

DEFAULT_DATA = _common.SHARED_DATA / "supercon" / "supercon.csv.gz"


def _parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--models", default="crystograph-small,crystograph-paper,crystograph-paper-bf16,cgcnn",
                   help="crystograph-<preset>[-bf16], cgcnn")
    p.add_argument("--alignn-precisions", default="fp32,bf16", help="ALIGNN runs: fp32 (its default), bf16")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="CSV(.gz) with an id column, cif and --target")
    p.add_argument("--target", default="tc_K")
    p.add_argument("--alignn-venv", type=Path, default=_common.DEFAULT_ALIGNN_VENV)
    p.add_argument("--skip-alignn", action="store_true")
    p.add_argument("--device", default="cpu", help="cpu | cuda: where both sides train and infer")
    p.add_argument("--alignn-python", type=Path, default=None,
                   help="a Python that imports alignn (default: the ALIGNN venv's)")
    p.add_argument("--out", type=Path, default=HERE / "results" / "train_throughput.json")
    return p.parse_args(argv)


ARGS = _parse_args()
_common.set_threads(ARGS.threads)
import torch  # noqa: E402

csv.field_size_limit(1 << 30)


def load_sample(path: Path, n: int, seed: int, target: str) -> list[dict[str, str]]:
    with gzip.open(path, "rt", newline="") if str(path).endswith(".gz") else open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    id_col = "material_id" if "material_id" in rows[0] else "id"
    idx = sorted(random.Random(seed).sample(range(len(rows)), min(n, len(rows))))
    return [{"id": rows[i][id_col], "cif": rows[i]["cif"], "target": rows[i][target]} for i in idx]


def our_graphs(sample):
    import warnings

    from pymatgen.core import Structure

    from crystograph.data import build_graphs
    from crystograph.structures import StructureRecord

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        records = [StructureRecord(id=r["id"], structure=Structure.from_str(r["cif"], fmt="cif"),
                                   targets={"y": float(r["target"])}, source=r["id"]) for r in sample]
    graphs, skipped = build_graphs(records, targets=["y"], progress=False)
    return graphs, [s.source for s in skipped]


def make_model(name: str):
    from crystograph.bench.baselines import CGCNN
    from crystograph.config import ModelConfig
    from crystograph.nn import CrysToGraph

    if name == "cgcnn":
        return CGCNN(n_targets=1)
    _, preset, *precision = name.split("-")  # crystograph-<preset>[-bf16]
    return CrysToGraph(ModelConfig.preset(preset, precision=precision[0] if precision else "fp32"))


def time_ours(name: str, graphs) -> dict:
    from torch_geometric.data import Batch

    torch.manual_seed(ARGS.seed)
    net = make_model(name)
    order = list(range(len(graphs)))
    random.Random(ARGS.seed).shuffle(order)
    bs = ARGS.batch_size
    batches = [Batch.from_data_list([graphs[i] for i in order[s:s + bs]]) for s in range(0, len(order), bs)]
    train_s, infer_s = _common.time_train_and_infer(net, batches, warmup=2, device=ARGS.device)
    n = len(graphs)
    return {"model": name, "n": n, "params": sum(p.numel() for p in net.parameters() if p.requires_grad),
            "train_s": train_s, "train_structures_per_s": n / train_s,
            "infer_s": infer_s, "infer_structures_per_s": n / infer_s}


def time_alignn(csv_path: Path, precision: str) -> dict:
    py = ARGS.alignn_python or ARGS.alignn_venv / "bin" / "python"
    if ARGS.alignn_python is None and not py.exists():
        raise SystemExit(f"ALIGNN venv not found at {py}; run: bash benchmarks/setup_alignn.sh (or --skip-alignn)")
    cmd = [str(py), str(HERE / "alignn_throughput.py"), str(csv_path), "--batch-size", str(ARGS.batch_size),
           "--threads", str(ARGS.threads), "--seed", str(ARGS.seed), "--precision", precision, "--device", ARGS.device]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"ALIGNN throughput failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    sample = load_sample(ARGS.data, ARGS.n, ARGS.seed, ARGS.target)
    graphs, skipped = our_graphs(sample)
    kept = {g.sample_id for g in graphs}
    hw = _common.hardware(ARGS.threads, ARGS.device)
    t0 = time.perf_counter()
    runs: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="throughput_") as tmp:
        csv_path = Path(tmp) / "sample.csv"
        with open(csv_path, "w", newline="") as fh:  # the very structures our side kept
            w = csv.DictWriter(fh, fieldnames=["id", "cif", "target"])
            w.writeheader()
            w.writerows(r for r in sample if r["id"] in kept)
        for rep in range(ARGS.repeats):
            for name in ARGS.models.split(","):
                runs.setdefault(name, []).append(time_ours(name, graphs))
                print(f"[throughput] rep {rep} {name}: train {runs[name][-1]['train_structures_per_s']:.1f}/s, "
                      f"infer {runs[name][-1]['infer_structures_per_s']:.1f}/s", flush=True)
            for precision in ([] if ARGS.skip_alignn else ARGS.alignn_precisions.split(",")):
                r = time_alignn(csv_path, precision)
                runs.setdefault(r["model"], []).append(r)
                print(f"[throughput] rep {rep} {r['model']}: train {r['train_structures_per_s']:.1f}/s, "
                      f"infer {r['infer_structures_per_s']:.1f}/s", flush=True)
    best = {name: {"train_structures_per_s": max(r["train_structures_per_s"] for r in rs),
                   "infer_structures_per_s": max(r["infer_structures_per_s"] for r in rs),
                   "params": rs[0]["params"], "n": rs[0]["n"]} for name, rs in runs.items()}
    if "alignn" in best:
        for name, b in best.items():
            b["train_vs_alignn"] = b["train_structures_per_s"] / best["alignn"]["train_structures_per_s"]
            b["infer_vs_alignn"] = b["infer_structures_per_s"] / best["alignn"]["infer_structures_per_s"]
    if "alignn-bf16" in best:  # bf16 against bf16: the same autocast on both sides
        for name, b in best.items():
            b["train_vs_alignn_bf16"] = b["train_structures_per_s"] / best["alignn-bf16"]["train_structures_per_s"]
            b["infer_vs_alignn_bf16"] = b["infer_structures_per_s"] / best["alignn-bf16"]["infer_structures_per_s"]
    result = {
        "benchmark": "train_throughput", "command": _common.command_line(), "seed": ARGS.seed,
        "data_source": _common.data_source(ARGS.data), "n_sample": len(sample), "n_used": len(graphs),
        "skipped": skipped, "batch_size": ARGS.batch_size, "repeats": ARGS.repeats, "hardware": hw,
        "git_commit": _common.git_commit(), "versions": _common.versions(["torch", "torch_geometric", "crystograph"]),
        "best": best, "runs": runs, "wall_s": time.perf_counter() - t0,
    }
    ARGS.out.parent.mkdir(parents=True, exist_ok=True)
    ARGS.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(best, indent=2))


if __name__ == "__main__":
    main()
