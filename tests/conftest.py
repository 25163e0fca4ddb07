"""Shared fixtures. Tests that read ../shared/data are marked `shared_data` and skip when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("CRYSTOGRAPH_SHARED_DATA", REPO.parent / "shared" / "data"))

os.environ.setdefault("OMP_NUM_THREADS", "1")


def shared_file(relpath: str) -> Path:
    """Path of a file in ../shared/data, or skip the test when it is not there."""
    path = SHARED_DATA / relpath
    if not path.exists():
        pytest.skip(f"shared dataset not available: {path}")
    return path


@pytest.fixture(autouse=True, scope="session")
def _torch_threads():
    import torch

    torch.set_num_threads(1)
    yield


@pytest.fixture
def simple_cubic():
    from pymatgen.core import Lattice, Structure

    return Structure(Lattice.cubic(3.0), ["Po"], [[0, 0, 0]])


@pytest.fixture
def fcc_primitive():
    from pymatgen.core import Lattice, Structure

    a = 4.05
    lat = Lattice([[0, a / 2, a / 2], [a / 2, 0, a / 2], [a / 2, a / 2, 0]])
    return Structure(lat, ["Al"], [[0, 0, 0]])


@pytest.fixture
def rocksalt():
    from pymatgen.core import Lattice, Structure

    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
