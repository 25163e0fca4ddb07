"""Graphs built in worker processes equal the serial build: same graphs, same order, same skips, same errors."""

from __future__ import annotations

import pytest
import torch
from pymatgen.core import Lattice, Structure

from crystograph.data import build_graphs
from crystograph.data.parallel import MIN_PER_WORKER, resolve_workers, usable_cpus
from crystograph.errors import InputError
from crystograph.structures import StructureRecord
from tests.helpers_data import synthetic_records


def _records_with_bad_ones(n: int) -> list[StructureRecord]:
    records = synthetic_records(n)
    isolated = Structure(Lattice.cubic(60.0), ["Na"], [[0, 0, 0]])  # no 12 neighbours within 20 Å
    disordered = Structure(Lattice.cubic(4.0), [{"Na": 0.5, "K": 0.5}, "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    records[5] = StructureRecord(id="lonely", structure=isolated, targets={"a": 1.0}, source="lonely.cif")
    records[40] = StructureRecord(id="mixed", structure=disordered, targets={"a": 1.0}, source="mixed.cif")
    records[50] = StructureRecord(id="no-target", structure=records[50].structure, targets={}, source="row 50")
    return records


def test_worker_count_is_checked_and_capped():
    with pytest.raises(ValueError, match=">= 0"):
        resolve_workers(-1, 1000)
    assert resolve_workers(1, 10_000) == 1
    assert resolve_workers(4, 10) == 1  # too few records for a pool
    assert resolve_workers(4, 2 * MIN_PER_WORKER) == 2
    assert resolve_workers(0, 10_000) == min(usable_cpus(), 10_000 // MIN_PER_WORKER)


def test_every_core_is_shared_among_the_processes_of_a_launched_job(monkeypatch):
    import crystograph.data.parallel as parallel

    monkeypatch.setattr(parallel, "usable_cpus", lambda: 16)
    big = 100 * MIN_PER_WORKER
    assert resolve_workers(0, big) == 16
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")  # torchrun, 4 processes on this machine
    assert resolve_workers(0, big) == 4
    assert resolve_workers(3, big) == 3  # an explicit count is taken as given
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "32")
    assert resolve_workers(0, big) == 1


def test_build_graphs_refuses_a_negative_worker_count_before_any_work(tmp_path):
    with pytest.raises(ValueError, match="graph workers"):
        build_graphs(synthetic_records(2), targets=["a"], cache_dir=tmp_path, progress=False, workers=-2)
    assert not list(tmp_path.rglob("*.pt"))


@pytest.mark.slow  # starts worker interpreters
def test_workers_give_the_serial_graphs_and_skips(tmp_path):
    records = _records_with_bad_ones(2 * MIN_PER_WORKER + 3)
    serial, serial_skips = build_graphs(records, targets=["a"], progress=False, workers=1)
    pooled, pooled_skips = build_graphs(records, targets=["a"], cache_dir=tmp_path, progress=False, workers=2)
    assert [(s.source, s.reason) for s in pooled_skips] == [(s.source, s.reason) for s in serial_skips]
    assert {s.source for s in serial_skips} == {"lonely.cif", "mixed.cif", "row 50"}
    assert [g.sample_id for g in pooled] == [g.sample_id for g in serial]
    for a, b in zip(serial, pooled):
        assert set(a.keys()) == set(b.keys()) and a.num_nodes == b.num_nodes
        for key in a.keys():
            if torch.is_tensor(a[key]):
                assert a[key].dtype == b[key].dtype and torch.equal(a[key], b[key]), key
    assert len(list(tmp_path.rglob("*.pt"))) == len(pooled) + 1  # the workers filled the cache (+ "row 50")
    again, _ = build_graphs(records, targets=["a"], cache_dir=tmp_path, progress=False, workers=2)
    assert all(torch.equal(a.edge_vec, b.edge_vec) for a, b in zip(serial, again))


@pytest.mark.slow  # starts worker interpreters
def test_strict_stops_at_the_first_bad_record_with_workers():
    records = _records_with_bad_ones(2 * MIN_PER_WORKER + 3)
    with pytest.raises(InputError) as caught:
        build_graphs(records, targets=["a"], progress=False, strict=True, workers=2)
    assert caught.value.source == "lonely.cif"


@pytest.mark.slow  # starts worker interpreters
def test_worker_warnings_reach_the_caller(tmp_path):
    blocked = tmp_path / "cache"
    blocked.write_text("a file where the cache folder should be")
    records = synthetic_records(2 * MIN_PER_WORKER)
    with pytest.warns(UserWarning, match="could not write"):
        graphs, skipped = build_graphs(records, targets=["a"], cache_dir=blocked, progress=True, workers=2)
    assert len(graphs) == len(records) and not skipped


def test_a_target_that_is_not_a_number_is_a_skip():
    records = synthetic_records(3)
    records[1] = StructureRecord(id="x", structure=records[1].structure, targets={"a": "n/a"}, source="row 1")
    records[2] = StructureRecord(id="y", structure=records[2].structure, targets={"a": None}, source="row 2")
    graphs, skipped = build_graphs(records, targets=["a"], progress=False)
    assert len(graphs) == 1
    assert [(s.source, s.reason) for s in skipped] == [("row 1", "target 'a' is not a number ('n/a')"),
                                                       ("row 2", "target 'a' is not a number (None)")]


def _same_outcomes(got: list[tuple], want: list[tuple]) -> None:
    assert [o[0] for o in got] == [o[0] for o in want]
    for a, b in zip(got, want):
        if a[0] != "ok":
            assert a[1:3] == b[1:3]
            continue
        assert set(a[1].keys()) == set(b[1].keys())
        for key in b[1].keys():
            if torch.is_tensor(b[1][key]):
                assert torch.equal(a[1][key], b[1][key]), key


def test_the_calling_process_builds_the_chunks_no_child_has_started(monkeypatch):
    """`_collect` with hand-made futures: chunk 0 finished in a child, chunk 1 running in a child (finishes
    later), chunk 2 still queued. The caller takes chunk 2 off the queue and builds it; record order is kept."""
    import threading
    from concurrent.futures import Future

    import crystograph.data.parallel as parallel
    from crystograph.config import GraphConfig

    records = _records_with_bad_ones(2 * parallel.BATCH + 3)
    cfg = GraphConfig()
    want = list(parallel.built_here(records, cfg, None))
    monkeypatch.setitem(parallel._SHARED, "records", records)
    monkeypatch.setitem(parallel._SHARED, "graph_config", cfg)
    monkeypatch.setitem(parallel._SHARED, "cache_root", None)
    futures = [Future() for _ in range(3)]
    futures[0].set_running_or_notify_cancel()
    futures[0].set_result(parallel._worker_task(0))
    futures[1].set_running_or_notify_cancel()
    late = threading.Timer(0.5, lambda: futures[1].set_result(parallel._worker_task(parallel.BATCH)))
    late.start()

    class Pool:
        def shutdown(self, **kwargs):
            self.closed = True

    pool = Pool()
    got = list(parallel._collect(pool, futures, records, cfg, None))
    late.join()
    assert futures[2].cancelled() and not futures[1].cancelled() and pool.closed
    _same_outcomes(got, want)
    assert {o[1] for o in got if o[0] == "skip"} == {"lonely.cif", "mixed.cif"}


def test_with_no_child_started_the_caller_builds_everything():
    from concurrent.futures import Future

    import crystograph.data.parallel as parallel
    from crystograph.config import GraphConfig

    records = _records_with_bad_ones(2 * parallel.BATCH + 3)
    futures = [Future() for _ in range(3)]

    class Pool:
        def shutdown(self, **kwargs):
            pass

    got = list(parallel._collect(Pool(), futures, records, GraphConfig(), None))
    assert all(f.cancelled() for f in futures)
    _same_outcomes(got, list(parallel.built_here(records, GraphConfig(), None)))
