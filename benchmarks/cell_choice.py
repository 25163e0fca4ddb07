"""Does the cell a crystal is written in move a shipped model's prediction?

The paper's positional encodings (Laplacian eigenvectors + random walk) are computed on the graph of the cell as
given, so the same crystal written as its primitive cell, its conventional standard cell or a 2×2×2 supercell
gets different encodings (the primitive and conventional cells keep every atom where it was; a fifth choice,
pymatgen's idealised conventional cell, also moves atoms onto ideal positions). This script predicts a shipped
model's held-out test structures (the card's test ids) in each of those cells and reports the shifts against the
cell as stored, next to the test MAE of each choice. It trains nothing.

    .venv/bin/python benchmarks/cell_choice.py mp-e-form --n 300
    .venv/bin/python benchmarks/cell_choice.py mp-e-form --model-dir runs/... --n 300   # a model not shipped yet
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402
from shipped_models import MODELS, RESULTS, ROOT  # noqa: E402
SYMPREC = 1e-3  # spglib tolerance (Å) for the primitive and conventional cells


def _spglib_cell(structure, to_primitive: bool):
    """The same crystal in spglib's primitive or conventional standard basis with every atom where it was
    (``no_idealize``: no rotation, no symmetrisation), or None where spglib finds no cell."""
    from pymatgen.core import Structure

    from crystograph.graphs.cell import spglib_cell

    found = spglib_cell(structure.lattice.matrix, structure.frac_coords, [site.specie.Z for site in structure],
                        SYMPREC, to_primitive=to_primitive)
    return None if found is None else Structure(found[0], found[2], found[1])


def cells_of(structure) -> dict:
    """The crystal written five ways: as stored, primitive and conventional standard cells (atoms not moved),
    pymatgen's conventional standard cell (atoms moved onto their ideal positions: a slightly different
    crystal), and a 2×2×2 supercell."""
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    sga = SpacegroupAnalyzer(structure, symprec=SYMPREC)
    return {"as_stored": structure, "primitive": _spglib_cell(structure, True) or structure,
            "conventional": _spglib_cell(structure, False) or structure,
            "conventional_idealised": sga.get_conventional_standard_structure(),
            "supercell_2x2x2": structure * (2, 2, 2)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name", choices=sorted(MODELS))
    p.add_argument("--model-dir", type=Path, default=None, help="a trained model folder (default: the shipped one)")
    p.add_argument("--n", type=int, default=300, help="test structures (the first N test ids)")
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)

    import torch

    import crystograph
    from crystograph.bench.loaders import load_task
    from crystograph.bench.registry import get_task

    torch.set_num_threads(1)
    started = time.monotonic()
    task_name, target, unit, _ = MODELS[args.name]
    model = crystograph.load_model(args.model_dir or args.name)
    test_ids = (RESULTS / args.name / "test_ids.txt").read_text().split()[: args.n]
    loaded = load_task(get_task(task_name), args.data_dir, ids=test_ids, progress=False)
    records = {str(r.id): r for r in loaded.records}
    ids = [i for i in test_ids if i in records]
    truth = np.array([float(records[i].targets[target]) for i in ids])
    written = [cells_of(records[i].structure) for i in ids]
    preds, sizes = {}, {}
    for choice in written[0]:
        cells = [w[choice] for w in written]
        sizes[choice] = float(np.mean([len(c) for c in cells]))
        preds[choice] = model.predict_structures(cells)[model.targets[0]].to_numpy()
    base = preds["as_stored"]
    report = {
        "model": args.name, "model_dir": str(args.model_dir or "shipped"), "task": task_name, "unit": unit,
        "n_structures": len(ids), "symprec": SYMPREC, "command": "python " + " ".join(sys.argv),
        "commit": _common.git_commit(), "hardware": _common.hardware(threads=1),
        "pe_mode": model.graph_config.pe_mode, "layout": model.model_config.layout,
        "cell": model.graph_config.cell, "graph_symprec": model.graph_config.symprec,
        "choices": {},
    }
    for choice, pred in preds.items():
        shift = np.abs(pred - base)
        report["choices"][choice] = {
            "mean_atoms": sizes[choice], "test_mae": float(np.abs(pred - truth).mean()),
            "changed_atom_count": int(sum(len(w[choice]) != len(w["as_stored"]) for w in written)),
            "shift_mean": float(shift.mean()), "shift_median": float(np.median(shift)),
            "shift_p95": float(np.quantile(shift, 0.95)), "shift_max": float(shift.max()),
            "worst": ids[int(shift.argmax())],
        }
        print(choice, json.dumps(report["choices"][choice]))
    report["wall_s"] = time.monotonic() - started
    out = args.out or ROOT / "benchmarks" / "results" / f"cell_choice_{args.name}_{model.graph_config.cell}.json"
    _common.write_json(out, report)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
