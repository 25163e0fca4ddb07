"""Shared fixtures. Tests that read ../shared/data are marked `shared_data` and skip when it is absent; tests
marked `slow` (over a few seconds) run under `make test-all` only. The whole session uses a temporary
crystograph cache (`CRYSTOGRAPH_CACHE`), never the user's ~/.cache."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("CRYSTOGRAPH_SHARED_DATA", REPO.parent / "shared" / "data"))

os.environ.setdefault("OMP_NUM_THREADS", "1")

SLOW_PARAMS = ("big_3000_atoms",)  # parametrised cases over a few seconds each


def pytest_collection_modifyitems(config, items):
    for item in items:
        if any(f"[{p}" in item.nodeid or f"-{p}" in item.nodeid for p in SLOW_PARAMS):
            item.add_marker(pytest.mark.slow)


_running: list = []  # the test being set up or run (for shared_file's marker check)


def pytest_runtest_setup(item):
    # tests import this file both as `conftest` and as `tests.conftest`: tell both copies
    for name in ("conftest", "tests.conftest"):
        running = getattr(sys.modules.get(name), "_running", None)
        if running is not None:
            running[:] = [item]


def shared_file(relpath: str) -> Path:
    """Path of a file in ../shared/data, or skip the test when it is not there. Only tests marked
    `shared_data` may call it, so that `-m "not shared_data"` really runs without the datasets."""
    if _running and _running[0].get_closest_marker("shared_data") is None:
        raise AssertionError(f"{_running[0].nodeid} reads {relpath} from the shared data: "
                             "mark it @pytest.mark.shared_data")
    path = SHARED_DATA / relpath
    if not path.exists():
        pytest.skip(f"shared dataset not available: {path}")
    return path


def bench_script(name: str):
    """A script of benchmarks/ imported as a module (they are not a package)."""
    import importlib.util

    path = REPO / "benchmarks" / f"{name}.py"
    sys.path.insert(0, str(path.parent))  # the scripts import their sibling _common
    spec = importlib.util.spec_from_file_location(f"bench_script_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True, scope="session")
def _torch_threads():
    import torch

    torch.set_num_threads(1)
    yield


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """Graph caches, CoRE MOF extraction and downloads go to a temporary folder for the whole session."""
    previous = os.environ.get("CRYSTOGRAPH_CACHE")
    os.environ["CRYSTOGRAPH_CACHE"] = str(tmp_path_factory.mktemp("crystograph-cache"))
    yield Path(os.environ["CRYSTOGRAPH_CACHE"])
    if previous is None:
        os.environ.pop("CRYSTOGRAPH_CACHE", None)
    else:
        os.environ["CRYSTOGRAPH_CACHE"] = previous


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """One tiny run trained through the CLI on 12 synthetic crystals (target `a`, 2 epochs), shared by the
    predict / API / rerun tests. Tests must not write into it; copy it first (`shutil.copytree`)."""
    from typer.testing import CliRunner

    from crystograph.cli import app
    from tests.helpers_data import synthetic_records, write_csv

    root = tmp_path_factory.mktemp("trained")
    records = synthetic_records(12)
    data = write_csv(records, root / "syn.csv")
    run = root / "run"
    args = ["train", str(data), "--target", "a", "--out", str(run), "--epochs", "2", "--batch-size", "4",
            "--no-progress"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return SimpleNamespace(run=run, data=data, records=records, args=args, output=result.output)


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


ROCKSALT_FRAC = [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5],
                 [0.5, 0.5, 0.5], [0, 0, 0.5], [0, 0.5, 0], [0.5, 0, 0]]


def rocksalt_cell(a: float = 5.64, cation: str = "Na", anion: str = "Cl"):
    """The conventional 8-atom rock-salt cell, sites in the order of `Structure.from_spacegroup("Fm-3m", ...)`
    (which takes over a second per call)."""
    from pymatgen.core import Lattice, Structure

    return Structure(Lattice.cubic(a), [cation] * 4 + [anion] * 4, ROCKSALT_FRAC)


def rocksalt_primitive(a: float, cation: str = "Na", anion: str = "Cl"):
    """The 2-atom primitive cell of rock salt with conventional lattice constant `a`."""
    from pymatgen.core import Lattice, Structure

    h = -a / 2
    return Structure(Lattice([[h, h, 0], [h, 0, h], [0, h, h]]), [anion, cation], [[0.5, 0.5, 0.5], [0, 0, 0]])


@pytest.fixture
def rocksalt():
    return rocksalt_cell()
