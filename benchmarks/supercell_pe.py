"""How much does a 2×2×2 supercell of the same crystal move the prediction?

The paper's positional encodings (Laplacian eigenvectors + random walk) are computed on the graph of the cell
as given, so the same crystal written as a supercell gets different encodings. This script trains (or loads)
one model per PE mode on a real dataset and reports |f(2×2×2 supercell) − f(cell)| over held-out structures,
next to the model's own test MAE. `periodic_rw` should give zero (up to float round-off).

    .venv/bin/python benchmarks/supercell_pe.py --minutes 1.5 --n 200
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "supercon" / "supercon.csv.gz"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--target", default="tc_K")
    parser.add_argument("--minutes", type=float, default=1.5, help="training budget per model")
    parser.add_argument("--n", type=int, default=200, help="held-out structures to compare")
    parser.add_argument("--runs", default="runs/supercell_pe")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "supercell_pe.json"))
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    import pandas as pd

    import crystograph
    from crystograph.structures import read_structures

    started = time.monotonic()
    report = {"command": " ".join(sys.argv), "data": args.data, "target": args.target, "seed": 0,
              "budget_minutes": args.minutes, "hardware": f"{platform.processor() or platform.machine()}, 1 thread",
              "modes": {}}
    for mode in ("laplacian+rw", "periodic_rw"):
        run = Path(args.runs) / mode.replace("+", "_")
        if not (run / "summary.json").exists():
            subprocess.run([sys.executable, "-m", "crystograph.cli", "train", args.data, "--target", args.target,
                            "--id-column", "material_id", "--out", str(run), "--max-minutes", str(args.minutes),
                            "--lr", "0.001", "--pe-mode", mode, "--no-progress"], check=True)
        summary = json.loads((run / "summary.json").read_text())
        model = crystograph.load_model(run)
        test_ids = pd.read_csv(run / "predictions.csv")["id"].astype(str).head(args.n).tolist()
        records = {r.id: r for r in read_structures(args.data, target=args.target, id_column="material_id").records}
        cells = [records[i].structure for i in test_ids if i in records]
        supercells = [s * (2, 2, 2) for s in cells]
        a = model.predict_structures(cells)[args.target].to_numpy()
        b = model.predict_structures(supercells)[args.target].to_numpy()
        shift = np.abs(a - b)
        report["modes"][mode] = {
            "n_structures": len(cells), "test_mae": summary["mean_mae"], "dummy_mae": summary["mean_dummy_mae"],
            "supercell_shift_mean": float(shift.mean()), "supercell_shift_median": float(np.median(shift)),
            "supercell_shift_max": float(shift.max()),
            "supercell_shift_over_test_mae": float(shift.mean() / summary["mean_mae"]),
        }
        print(mode, report["modes"][mode])
    report["wall_s"] = time.monotonic() - started
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
