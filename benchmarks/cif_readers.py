"""CIF parsing cost beside graph building: pymatgen (the reference our readers use), ASE and gemmi on the same CIFs.

    .venv/bin/python benchmarks/cif_readers.py [--n 2000] [--seed 0]

Draws the same seeded sample of ``mp_mtcgcnn/mp_eform_gap.csv.gz`` as ``graph_build.py`` and parses every CIF
string with each reader, one after the other, one thread:

* pymatgen: ``Structure.from_str(cif, fmt="cif")`` (what ``crystograph.structures`` does);
* ASE: ``ase.io.read(StringIO(cif), format="cif")`` (an ``Atoms``);
* gemmi: ``gemmi.cif.read_string`` + ``make_small_structure_from_block`` + ``get_all_unit_cell_sites`` (timed
  alone), then the same sites as a pymatgen ``Structure`` (timed with the conversion), since the graph builder
  takes a ``Structure``.

Agreement with pymatgen is checked per structure (lattice parameters, and the multiset of element + fractional
coordinates, modulo 1, to 1e-4). gemmi is not a dependency of crystograph: ``pip install gemmi`` to run its part
(it is skipped otherwise). Writes ``benchmarks/results/cif_readers.json``; ``graph_build.json`` holds the graph
building rates of the same sample.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import sys
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import _common  # noqa: E402

DEFAULT_DATA = _common.SHARED_DATA / "mp_mtcgcnn" / "mp_eform_gap.csv.gz"


def _key(species: list[str], frac: np.ndarray) -> np.ndarray:
    """Rows (Z, frac mod 1) sorted, for an order-free comparison of two structures."""
    from pymatgen.core import Element

    z = np.array([Element(s).Z for s in species], dtype=float)[:, None]
    f = np.mod(np.round(frac, 5), 1.0)
    rows = np.hstack([z, f])
    return rows[np.lexsort(rows.T[::-1])]


def _same(a, b) -> bool:
    la, lb = a[0], b[0]
    if not np.allclose(la, lb, atol=1e-4):
        return False
    ka, kb = a[1], b[1]
    return ka.shape == kb.shape and bool(np.allclose(ka, kb, atol=1e-4))


def _timed(fn, cifs):
    out, failures = [], 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        for cif in cifs:
            try:
                out.append(fn(cif))
            except Exception:  # noqa: BLE001
                out.append(None)
                failures += 1
        wall = time.perf_counter() - t0
    return out, wall, failures


def _pymatgen(cif):
    from pymatgen.core import Structure

    return Structure.from_str(cif, fmt="cif")


def _ase(cif):
    import ase.io

    return ase.io.read(io.StringIO(cif), format="cif")


def _gemmi_sites(cif):
    import gemmi

    small = gemmi.make_small_structure_from_block(gemmi.cif.read_string(cif).sole_block())
    return small.cell, small.get_all_unit_cell_sites()


def _gemmi_structure(cif):
    from pymatgen.core import Lattice, Structure

    cell, sites = _gemmi_sites(cif)
    lattice = Lattice.from_parameters(cell.a, cell.b, cell.c, cell.alpha, cell.beta, cell.gamma)
    return Structure(lattice, [s.element.name for s in sites], [[s.fract.x, s.fract.y, s.fract.z] for s in sites])


def _summary(structures) -> list:
    out = []
    for s in structures:
        if s is None:
            out.append(None)
        elif hasattr(s, "lattice"):  # pymatgen
            out.append((np.array(s.lattice.parameters), _key([x.specie.symbol for x in s], s.frac_coords)))
        else:  # ASE Atoms
            out.append((np.array(s.cell.cellpar()), _key(s.get_chemical_symbols(), s.get_scaled_positions(wrap=True))))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--out", type=Path, default=HERE / "results" / "cif_readers.json")
    args = p.parse_args()
    _common.set_threads(1)
    sample, n_rows = _common.sample_cif_rows(args.data, args.n, args.seed)
    cifs = [r["cif"] for r in sample]
    readers = {"pymatgen": _pymatgen, "ase": _ase}
    if importlib.util.find_spec("gemmi") is not None:
        readers.update({"gemmi_sites": _gemmi_sites, "gemmi_to_pymatgen": _gemmi_structure})
    else:
        print("[cif_readers] gemmi not installed: skipped", file=sys.stderr)
    _timed(_pymatgen, cifs[:5])  # imports, untimed
    results, reference = {}, None
    for name, fn in readers.items():
        if name == "ase":
            _timed(_ase, cifs[:5])
        parsed, wall, failures = _timed(fn, cifs)
        row = {"wall_s": wall, "ms_per_structure": 1e3 * wall / len(cifs), "failures": failures}
        if name != "gemmi_sites":
            summary = _summary(parsed)
            if reference is None:
                reference = summary
            row["agree_with_pymatgen"] = sum(1 for a, b in zip(summary, reference)
                                             if a is not None and b is not None and _same(a, b))
        results[name] = row
        print(f"[cif_readers] {name}: {row['ms_per_structure']:.2f} ms/structure", file=sys.stderr)
    report = {
        "benchmark": "cif_readers", "command": _common.command_line(), "seed": args.seed, "n": len(cifs),
        "data_source": {**_common.data_source(args.data), "rows_in_file": n_rows,
                        "sampling": "random.Random(seed).sample(range(rows), n), then file order (as graph_build.py)"},
        "hardware": _common.hardware(1), "results": results,
        "versions": _common.versions(["pymatgen", "ase", "gemmi", "numpy"]), "commit": _common.git_commit(),
        "notes": ["agree_with_pymatgen: lattice parameters and (Z, fractional coordinates mod 1) multisets within "
                  "1e-4 of pymatgen's parse of the same CIF",
                  "gemmi is not a crystograph dependency; gemmi_to_pymatgen includes building the Structure the "
                  "graph builder takes"],
    }
    _common.write_json(args.out, report)


if __name__ == "__main__":
    main()
