"""Loaders: cache dir, mocked downloads with SHA256 checks, MatBench JSON, UnconvBench, local filters."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import pytest

from tests.conftest import shared_file
from crystograph.bench import loaders
from crystograph.bench.registry import TASKS
from crystograph.errors import InputError


def test_cache_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("CRYSTOGRAPH_CACHE", str(tmp_path / "a"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert loaders.cache_dir() == tmp_path / "a"
    monkeypatch.delenv("CRYSTOGRAPH_CACHE")
    assert loaders.cache_dir() == tmp_path / "x" / "crystograph"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "h"))
    assert loaders.cache_dir() == tmp_path / "h" / ".cache" / "crystograph"


def _matbench_json(structures, ys, target="exfoliation_en") -> bytes:
    doc = {"index": list(range(len(ys))), "columns": ["structure", target],
           "data": [[s.as_dict(), y] for s, y in zip(structures, ys)]}
    return gzip.compress(json.dumps(doc).encode())


@pytest.fixture
def no_network(monkeypatch):
    def _refuse(*a, **k):
        raise AssertionError("tests must not download")

    monkeypatch.setattr("urllib.request.urlopen", _refuse)


def test_download_checks_sha256_and_caches(monkeypatch, tmp_path, no_network):
    payload = b"hello matbench"
    calls = []

    def fake_fetch(url, dest, timeout=120.0):
        calls.append(url)
        Path(dest).write_bytes(payload)

    monkeypatch.setattr(loaders, "_fetch", fake_fetch)
    good = hashlib.sha256(payload).hexdigest()
    dest = tmp_path / "c" / "x.json.gz"
    assert loaders.download("https://example.org/x", dest, good) == dest and dest.read_bytes() == payload
    loaders.download("https://example.org/x", dest, good)  # cached: no second fetch
    assert len(calls) == 1
    other = tmp_path / "c" / "y.json.gz"
    with pytest.raises(InputError, match="SHA256 mismatch"):
        loaders.download("https://example.org/y", other, "0" * 64)
    assert not other.exists() and not list(other.parent.glob("*.part"))


def test_load_matbench_with_mocked_download(monkeypatch, tmp_path, no_network, rocksalt, fcc_primitive):
    import dataclasses

    payload = _matbench_json([rocksalt, fcc_primitive] * 6, [float(i) for i in range(12)])
    monkeypatch.setenv("CRYSTOGRAPH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(loaders, "_fetch", lambda url, dest, timeout=120.0: Path(dest).write_bytes(payload))
    task = dataclasses.replace(TASKS["matbench_jdft2d"], sha256=hashlib.sha256(payload).hexdigest())
    loaded = loaders.load_task(task, tmp_path / "no_data", progress=False)
    assert loaded.order[:2] == ["mb-jdft2d-01", "mb-jdft2d-02"] and len(loaded.records) == 12
    assert loaded.records[3].targets == {"exfoliation_en": 3.0}
    assert (tmp_path / "cache" / "matbench" / "matbench_jdft2d.json.gz").exists()
    assert loaded.data_source["kind"] == "download" and loaded.data_source["url"] == task.url
    # the real registry hash does not match this payload: a clear error, nothing kept
    monkeypatch.setenv("CRYSTOGRAPH_CACHE", str(tmp_path / "cache2"))
    with pytest.raises(InputError, match="SHA256 mismatch"):
        loaders.load_task(TASKS["matbench_jdft2d"], tmp_path / "no_data", progress=False)
    assert not (tmp_path / "cache2" / "matbench" / "matbench_jdft2d.json.gz").exists()


def test_read_split_json_skips_bad_structure(tmp_path, rocksalt):
    doc = {"index": [0, 1], "columns": ["structure", "n"], "data": [[rocksalt.as_dict(), 1.5], [{"bad": 1}, 2.0]]}
    path = tmp_path / "d.json"
    path.write_text(json.dumps(doc))
    records, skipped, ids, ys = loaders.read_split_json(path, "mb-dielectric", "n", progress=False)
    assert [r.id for r in records] == ["mb-dielectric-1"] and ids == ["mb-dielectric-1", "mb-dielectric-2"]
    assert len(skipped) == 1 and "mb-dielectric-2" in skipped[0].source
    with pytest.raises(InputError):
        loaders.read_split_json(path, "mb-dielectric", "n", progress=False, strict=True)


def test_unconvbench_without_file_says_source_not_verified(monkeypatch, tmp_path):
    monkeypatch.setenv("CRYSTOGRAPH_CACHE", str(tmp_path / "cache"))
    with pytest.raises(InputError, match="not verified") as err:
        loaders.load_task(TASKS["2d_gap"], tmp_path, progress=False)
    assert "--data-dir" in str(err.value) or "<data_dir>" in str(err.value)
    assert "local_c2db_gap" in str(err.value) or "local_supercon" in str(err.value)


def test_unconvbench_user_file(monkeypatch, tmp_path, rocksalt):
    monkeypatch.setenv("CRYSTOGRAPH_CACHE", str(tmp_path / "cache"))
    (tmp_path / "unconvbench").mkdir()
    doc = {"index": list(range(10)), "columns": ["structure", "Tc"],
           "data": [[rocksalt.as_dict(), i] for i in range(10)]}
    (tmp_path / "unconvbench" / "ub_unconvbench_supercon.json").write_text(json.dumps(doc))
    loaded = loaders.load_task(TASKS["supercon"], tmp_path, progress=False)
    assert loaded.order[0] == "unconvbench_supercon-01" and len(loaded.records) == 10


def test_local_missing_file_is_clear(tmp_path):
    with pytest.raises(InputError, match="--data-dir"):
        loaders.load_task(TASKS["local_supercon"], tmp_path, progress=False)


@pytest.mark.shared_data
@pytest.mark.parametrize("name,rows", [("local_c2db_gap", 1679), ("local_2dmatpedia_exf", 904),
                                       ("local_bulk_s", 12345), ("local_bulk_m", 12381), ("local_bulk_l", 12012),
                                       ("local_jarvis_monolayers_phi", 1102)])
def test_local_filters_match_data_readme(name, rows):
    task = TASKS[name]
    path = shared_file(task.file)
    loaded = loaders.load_task(task, path.parent.parent, limit=3, progress=False)
    assert loaded.data_source["rows_after_filters"] - loaded.data_source["rows_without_target"] == rows
    assert len(loaded.records) == 3 and not loaded.skipped
    assert loaded.data_source["provenance"] and loaded.data_source["sha256"]


@pytest.mark.shared_data
def test_local_matbench_reads_official_fold_column():
    task = TASKS["local_matbench_phonons"]
    path = shared_file(task.file)
    loaded = loaders.load_task(task, path.parent.parent, limit=10, progress=False)
    assert loaded.records[0].id == "mb-phonons-0001" and loaded.fold_of["mb-phonons-0001"] == 4
    assert loaded.records[0].targets["last_phdos_peak"] == pytest.approx(98.58577122703691)


def test_a_non_numeric_column_names_the_file_and_column(tmp_path):
    import pandas as pd

    from crystograph.bench import loaders
    from crystograph.errors import InputError

    with pytest.raises(InputError, match=r"t.csv: column 'tc_K' must hold float values"):
        loaders._numbers(pd.Series(["1.5", "warm"]), float, tmp_path / "t.csv", "tc_K")
    assert loaders._numbers(pd.Series(["1", "2"]), int, tmp_path / "t.csv", "fold").tolist() == [1, 2]
