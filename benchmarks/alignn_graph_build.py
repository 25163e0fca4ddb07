"""Time ALIGNN's DGL-free graph builder on a CSV of CIFs.  Runs INSIDE the ALIGNN venv.

    $ALIGNN_VENV/bin/python benchmarks/alignn_graph_build.py structures.csv \
        [--cutoff 8] [--max-neighbors 12] [--threads 1] [--out result.json] [--per-structure counts.csv]

Input CSV columns: ``id, cif``. For every row:

1. CIF -> ``jarvis.core.atoms.Atoms`` (via ASE's CIF reader, which keeps the cell exactly as written;
   jarvis' own ``Atoms.from_cif`` reduces to a primitive cell, which would make the structures differ
   from the ones our builder sees). Timed separately as ``convert_wall_s``; NOT part of the graph time.
2. ``alignn.torch_graph_builder.build_pure_torch_graph(atoms, two_body_cutoff=8, three_body_cutoff=8,
   max_neighbors=12, atom_features="cgcnn", compute_line_graph=True)`` -- the builder ALIGNN's own
   ``neighbor_strategy="pure_torch"`` data path calls (alignn.graphs). Only this call is timed.
   ``three_body_cutoff = cutoff`` puts every edge into the line graph, as in the original ALIGNN
   (the 3.5 A default of newer alignn configs is meant for force fields).

The first structure is built once untimed (warm-up: lazy imports, allocator). Prints one JSON
object (n, wall_s, structures_per_s, failures, ...) on the last stdout line and writes it to --out.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
import time
from pathlib import Path


def _parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("csv", type=Path, help="CSV with columns id, cif")
    p.add_argument("--cutoff", type=float, default=8.0, help="two-body cutoff in A (default 8)")
    p.add_argument("--three-body-cutoff", type=float, default=None,
                   help="line-graph cutoff in A (default: = --cutoff)")
    p.add_argument("--max-neighbors", type=int, default=12)
    p.add_argument("--threads", type=int, default=1, help="torch/OpenMP threads (0 = library default)")
    p.add_argument("--limit", type=int, default=None, help="only the first N rows")
    p.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    p.add_argument("--per-structure", type=Path, default=None,
                   help="write id,natoms,edges,line_edges,seconds per structure to this CSV")
    return p.parse_args(argv)


ARGS = _parse_args()
if ARGS.threads > 0:  # before torch is imported, so OpenMP picks it up
    for _v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[_v] = str(ARGS.threads)

import numpy as np  # noqa: E402
import torch  # noqa: E402
from ase.io import read as ase_read  # noqa: E402
from jarvis.core.atoms import Atoms  # noqa: E402

from alignn.torch_graph_builder import build_pure_torch_graph  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

csv.field_size_limit(1 << 30)


def cif_to_atoms(cif: str) -> Atoms:
    """CIF text -> jarvis Atoms, keeping the written cell and site order."""
    a = ase_read(io.StringIO(cif), format="cif")
    return Atoms(
        lattice_mat=np.asarray(a.cell[:], dtype=float),
        coords=np.asarray(a.get_scaled_positions(wrap=False), dtype=float),
        elements=list(a.get_chemical_symbols()),
        cartesian=False,
    )


def build(atoms: Atoms, args: argparse.Namespace):
    return build_pure_torch_graph(
        atoms=atoms,
        two_body_cutoff=args.cutoff,
        three_body_cutoff=args.three_body_cutoff if args.three_body_cutoff is not None else args.cutoff,
        max_neighbors=args.max_neighbors,
        atom_features="cgcnn",
        compute_line_graph=True,
    )


def main(args: argparse.Namespace) -> dict:
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    with open(args.csv, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if args.limit is not None:
        rows = rows[: args.limit]

    failures: list[dict] = []
    converted: list[tuple[str, Atoms]] = []
    t0 = time.perf_counter()
    for row in rows:
        try:
            converted.append((row["id"], cif_to_atoms(row["cif"])))
        except Exception as exc:  # noqa: BLE001 - reported, not fatal
            failures.append({"id": row["id"], "stage": "convert", "error": f"{type(exc).__name__}: {exc}"})
    convert_wall = time.perf_counter() - t0

    if converted:  # warm-up, untimed
        build(converted[0][1], args)

    per: list[tuple[str, int, int, int, float]] = []
    c_start = time.process_time()
    t_start = time.perf_counter()
    for sid, atoms in converted:
        t = time.perf_counter()
        try:
            g, lg = build(atoms, args)
        except Exception as exc:  # noqa: BLE001
            failures.append({"id": sid, "stage": "build", "error": f"{type(exc).__name__}: {exc}"})
            continue
        dt = time.perf_counter() - t
        per.append((sid, g.num_nodes, g.num_edges, int(lg.src.numel()), dt))
    wall = time.perf_counter() - t_start
    cpu = time.process_time() - c_start

    n_ok = len(per)
    result = {
        "builder": "alignn.torch_graph_builder.build_pure_torch_graph",
        "params": {
            "two_body_cutoff": args.cutoff,
            "three_body_cutoff": args.three_body_cutoff if args.three_body_cutoff is not None else args.cutoff,
            "max_neighbors": args.max_neighbors,
            "atom_features": "cgcnn",
            "compute_line_graph": True,
        },
        "n": n_ok,
        "n_input": len(rows),
        "wall_s": wall,
        "sum_per_structure_s": sum(p[4] for p in per),
        "structures_per_s": n_ok / wall if wall > 0 else None,
        "cpu_s": cpu,
        "structures_per_cpu_s": n_ok / cpu if cpu > 0 else None,
        "convert_wall_s": convert_wall,
        "convert_note": "CIF -> jarvis Atoms via ase.io.read(format='cif'); not included in wall_s",
        "failures": failures,
        "edges": _common.describe([p[2] for p in per]),
        "line_edges": _common.describe([p[3] for p in per]),
        "natoms": _common.describe([p[1] for p in per]),
        "threads": torch.get_num_threads(),
        "hardware": _common.hardware(args.threads),
        "versions": _common.versions(["alignn", "torch", "jarvis-tools", "ase", "numpy"]),
        "matscipy_available": _has_matscipy(),
    }
    if args.per_structure is not None:
        args.per_structure.parent.mkdir(parents=True, exist_ok=True)
        with open(args.per_structure, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["id", "natoms", "edges", "line_edges", "seconds"])
            w.writerows(per)
    return result


def _has_matscipy() -> bool:
    try:
        import matscipy  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    res = main(ARGS)
    if ARGS.out is not None:
        _common.write_json(ARGS.out, res)
    print(json.dumps(res))
