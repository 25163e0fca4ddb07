"""Small real and synthetic structure sets for training tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def supercon_frame(n: int, path: Path):
    import pandas as pd

    frame = pd.read_csv(path)
    return frame.sort_values("material_id").head(n).reset_index(drop=True)


def synthetic_records(n: int = 24, seed: int = 0):
    """Rock-salt and CsCl cells with random lattice constants; target = lattice constant (learnable)."""
    from pymatgen.core import Lattice, Structure

    from crystograph.structures import StructureRecord
    from tests.conftest import rocksalt_primitive

    rng = np.random.default_rng(seed)
    records = []
    pairs = [("Na", "Cl"), ("K", "Br"), ("Mg", "O"), ("Li", "F")]
    for i in range(n):
        a = float(rng.uniform(3.0, 6.0))
        a_el, b_el = pairs[i % len(pairs)]
        if i % 2:
            s = Structure(Lattice.cubic(a), [a_el, b_el], [[0, 0, 0], [0.5, 0.5, 0.5]])
        else:
            s = rocksalt_primitive(a, a_el, b_el)
        records.append(StructureRecord(id=f"syn-{i}", structure=s, targets={"a": a}, source=f"synthetic[{i}]"))
    return records


def write_csv(records, path: Path, target: str = "a", column: str | None = None) -> Path:
    """CSV with id, cif and the `target` values under the header `column` (default: the target's name)."""
    import pandas as pd

    rows = [{"id": r.id, "cif": r.structure.to(fmt="cif"), column or target: r.targets.get(target)} for r in records]
    pd.DataFrame(rows).to_csv(path, index=False)
    return path
