"""`crystograph demo` end to end on a handful of real CoRE MOF 2019 structures (a small archive cut from the
package's own, so the test needs no extraction of the full archive)."""

from __future__ import annotations

import io
import tarfile

import pytest
from typer.testing import CliRunner

from crystograph.cli import app
from crystograph.data import coremof


@pytest.fixture(scope="module")
def small_archive(tmp_path_factory):
    """The first 10 CIFs of ≤ 40 atoms from the CoRE MOF 2019-ASR archive, as a .tar.xz."""
    found = []
    with coremof._archive("2019-ASR").open("rb") as fh, tarfile.open(fileobj=fh, mode="r|xz") as tar:
        for member in tar:
            if member.isfile() and member.name.endswith(".cif"):
                data = tar.extractfile(member).read()
                n_atoms = coremof.count_atoms_cif(data.decode("utf-8", errors="replace"))
                if n_atoms and n_atoms <= 40:
                    found.append((member.name.rsplit("/", 1)[-1], data))
            if len(found) == 10:
                break
    path = tmp_path_factory.mktemp("coremof") / "small.tar.xz"
    with tarfile.open(path, "w:xz") as tar:
        for name, data in found:
            info = tarfile.TarInfo(f"CIFs/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_demo_trains_and_reports_on_a_few_mofs(small_archive, tmp_path, monkeypatch):
    monkeypatch.setattr(coremof, "_archive", lambda subset: small_archive)
    monkeypatch.setenv("CRYSTOGRAPH_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "demo"
    result = CliRunner().invoke(app, ["demo", "--limit", "10", "--epochs", "2", "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "CrysToGraph" in result.output and "mean predictor" in result.output and "Traceback" not in result.output
    assert (out / "parity.png").exists() and (out / "predictions.csv").exists()
    assert (tmp_path / "cache" / "core-mof" / "2019-ASR" / "index.csv").exists()  # never the user's cache
