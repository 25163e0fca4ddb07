"""The gemmi fast path for plain CIFs (`crystograph.structures.fast_cif`) against pymatgen, on whole datasets.

    .venv/bin/python benchmarks/cif_fast_path.py [--n 0] [--seed 0] [--data FILE ...]

For every CIF of each dataset (``--n N``: a seeded sample of N rows per file; 0 = all rows): whether the fast
path takes it (`parse_plain_cif` returns a Structure rather than None), whether that Structure is identical to
pymatgen's ``CifParser.from_str(text).parse_structures(primitive=False)`` (lattice matrix, species, fractional
coordinates and labels compared with ``==``, no tolerance), and the parsing time of both (one thread; the fast
path's time includes the CIFs it hands back; pymatgen's is timed on every CIF). Default data: every CSV with a
``cif`` column under ``../shared/data``. Writes ``benchmarks/results/cif_fast_path.json``.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import _common  # noqa: E402

DATASETS = ("mp_mtcgcnn/mp_eform_gap.csv.gz", "qmof/qmof_bandgap_le150.csv.gz", "qmof/qmof_bandgap_gt150.csv.gz",
            "matbench/matbench_jdft2d.csv.gz", "matbench/matbench_phonons.csv.gz", "perov5/perov5_valtest.csv.gz",
            "supercon/supercon.csv.gz", "2dmatpedia/2dmatpedia_filtered.csv.gz", "c2db/c2db.csv.gz",
            "jarvis_monolayers/jarvis_monolayers_phi.csv.gz")


def _identical(a, b) -> bool:
    return (np.array_equal(a.lattice.matrix, b.lattice.matrix) and [s.species for s in a] == [s.species for s in b]
            and np.array_equal(a.frac_coords, b.frac_coords) and [s.label for s in a] == [s.label for s in b])


def _one_file(path: Path, n: int, seed: int) -> dict:
    from pymatgen.io.cif import CifParser

    from crystograph.structures.fast_cif import parse_plain_cif

    rows, n_rows = _common.sample_cif_rows(path, n if n > 0 else 10**9, seed)
    row = {"data_source": {**_common.data_source(path), "rows_in_file": n_rows}, "n": len(rows), "fast_path": 0,
           "identical": 0, "different": [], "handed_to_pymatgen": [], "fast_s": 0.0, "pymatgen_s": 0.0}
    for r in rows:
        t = time.perf_counter()
        fast = parse_plain_cif(r["cif"])
        fast_dt = time.perf_counter() - t
        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                ref = CifParser.from_str(r["cif"]).parse_structures(primitive=False, on_error="warn")
            except Exception:
                ref = []
        pymatgen_dt = time.perf_counter() - t
        row["pymatgen_s"] += pymatgen_dt
        row["fast_s"] += fast_dt + (pymatgen_dt if fast is None else 0.0)  # parse_cif then calls pymatgen
        if fast is None:
            row["handed_to_pymatgen"].append(r["id"])
            continue
        row["fast_path"] += 1
        if len(ref) == 1 and _identical(fast, ref[0]):
            row["identical"] += 1
        else:
            row["different"].append(r["id"])
    row["ms_per_cif_auto"] = 1e3 * row["fast_s"] / max(len(rows), 1)
    row["ms_per_cif_pymatgen"] = 1e3 * row["pymatgen_s"] / max(len(rows), 1)
    row["speedup"] = row["pymatgen_s"] / row["fast_s"] if row["fast_s"] else None
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=0, help="rows per file (0 = all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", type=Path, nargs="*", default=[_common.SHARED_DATA / d for d in DATASETS])
    p.add_argument("--out", type=Path, default=HERE / "results" / "cif_fast_path.json")
    args = p.parse_args()
    _common.set_threads(1)
    results = {}
    for path in args.data:
        results[path.name] = _one_file(path, args.n, args.seed)
        r = results[path.name]
        print(f"[cif_fast_path] {path.name}: {r['fast_path']}/{r['n']} fast, {r['identical']} identical, "
              f"{r['ms_per_cif_auto']:.2f} vs {r['ms_per_cif_pymatgen']:.2f} ms/CIF", file=sys.stderr, flush=True)
    total = {k: sum(r[k] for r in results.values()) for k in ("n", "fast_path", "identical", "fast_s", "pymatgen_s")}
    report = {
        "benchmark": "cif_fast_path", "command": _common.command_line(), "seed": args.seed,
        "hardware": _common.hardware(1), "total": total, "results": results,
        "versions": _common.versions(["pymatgen", "gemmi", "numpy"]), "commit": _common.git_commit(),
        "notes": ["fast_s: parse_cif's default reader (gemmi for plain CIFs, pymatgen for the CIFs it hands back, "
                  "counted at pymatgen's time for that CIF); pymatgen_s: CifParser on every CIF",
                  "identical: lattice matrix, species, fractional coordinates and labels equal with no tolerance"],
    }
    _common.write_json(args.out, report)


if __name__ == "__main__":
    main()
