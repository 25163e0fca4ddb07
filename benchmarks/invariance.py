"""Same crystal, same prediction? Prediction change under rotation and change of cell vectors, lab vs canonical frame.

One small model per frame mode (`--frame lab`, the paper's features measured in the file's Cartesian frame, and
`--frame canonical`, the default) is trained on a real dataset for a few minutes (holdout split, seed 0). Then
`--n` structures of the dataset are predicted as written, after a random proper rotation, and after a random
unimodular change of cell vectors (with a random origin shift and atom order). Reported per mode: the largest
and the median |change| in target units and relative to the target's standard deviation.

    .venv/bin/python benchmarks/invariance.py --n 200 --minutes 2
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHARED_DATA, command_line, git_commit, hardware, write_json  # noqa: E402

DATA = SHARED_DATA / "matbench" / "matbench_jdft2d.csv.gz"


def random_rotation(rng) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def random_unimodular(rng) -> np.ndarray:
    while True:
        m = rng.integers(-2, 3, size=(3, 3))
        if round(abs(np.linalg.det(m))) == 1:
            return m


def rotated(structure, rng):
    from pymatgen.core import Lattice, Structure

    rot = random_rotation(rng)
    return Structure(Lattice(structure.lattice.matrix @ rot.T), structure.species, structure.frac_coords)


def other_cell(structure, rng):
    """Same crystal in other cell vectors, with another origin and atom order."""
    from pymatgen.core import Lattice, Structure

    order = rng.permutation(len(structure))
    lattice = Lattice(random_unimodular(rng) @ structure.lattice.matrix)
    cart = structure.cart_coords[order] + rng.normal(size=3)
    return Structure(lattice, [structure.species[i] for i in order], cart, coords_are_cartesian=True,
                     to_unit_cell=True)


def _stats(delta: np.ndarray, scale: float) -> dict:
    return {"max": float(delta.max()), "median": float(np.median(delta)),
            "max_over_target_std": float(delta.max() / scale),
            "median_over_target_std": float(np.median(delta) / scale)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--target", default="exfoliation_en")
    parser.add_argument("--id-column", default="mbid")
    parser.add_argument("--n", type=int, default=200, help="structures compared")
    parser.add_argument("--minutes", type=float, default=2.0, help="training budget per model")
    parser.add_argument("--runs", default="runs/invariance")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "invariance.json"))
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    import crystograph
    from crystograph.structures import read_structures

    started = time.monotonic()
    records = read_structures(args.data, target=args.target, id_column=args.id_column).records
    scale = float(np.std([r.targets[args.target] for r in records]))
    records = records[: args.n]
    rng = np.random.default_rng(0)
    cells = [r.structure for r in records]
    turned = [rotated(s, rng) for s in cells]
    rebased = [other_cell(s, rng) for s in cells]
    report = {"data": str(Path(args.data).name), "target": args.target, "target_std": scale, "n_structures": len(cells),
              "budget_minutes_per_model": args.minutes, "seed": 0, "modes": {}}
    for frame in ("lab", "canonical"):
        run = Path(args.runs) / frame
        if not (run / "summary.json").exists():
            subprocess.run([sys.executable, "-m", "crystograph.cli", "train", args.data, "--target", args.target,
                            "--id-column", args.id_column, "--out", str(run), "--max-minutes", str(args.minutes),
                            "--preset", "small", "--lr", "0.001", "--frame", frame, "--no-progress"], check=True)
        model = crystograph.load_model(run)
        predict = lambda structures: model.predict_structures(structures)[args.target].to_numpy()  # noqa: E731
        base = predict(cells)
        report["modes"][frame] = {
            "rotation": _stats(np.abs(predict(turned) - base), scale),
            "cell_vectors_origin_order": _stats(np.abs(predict(rebased) - base), scale),
        }
        print(frame, report["modes"][frame], flush=True)
    report.update(command=command_line(), commit=git_commit(), hardware=hardware(1),
                  wall_s=round(time.monotonic() - started, 1))
    write_json(Path(args.out), report)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
