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
@pytest.mark.parametrize("slot_bytes", [None, 64])  # 64: no chunk fits a shared slot, all go on the queue
def test_workers_give_the_serial_graphs_and_skips(tmp_path, monkeypatch, slot_bytes):
    import crystograph.data.parallel as parallel

    if slot_bytes is not None:
        monkeypatch.setattr(parallel, "SLOT_BYTES", slot_bytes)
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


class _FakeChildren:
    """`_collect`'s view of the children, played by threads of this process: `plan[k]` = seconds after which a
    child delivers chunk k, for the chunks a child claims at the start (the others are left to the caller)."""

    def __init__(self, records, plan: dict[int, float]):
        import queue
        import threading

        import crystograph.data.parallel as parallel
        from crystograph.config import GraphConfig

        self.n = parallel.n_chunks(len(records))
        self.next = max(plan, default=-1) + 1  # chunks 0..max(plan) are claimed by "children"
        assert set(plan) == set(range(self.next))
        self.built_here, self.stopped, self.results = [], False, queue.Queue()
        parallel._SHARED.update(records=records, graph_config=GraphConfig(), cache_root=None)
        self.timers = [threading.Timer(delay, lambda k=k: self.results.put((k, parallel._worker_task(
            k * parallel.BATCH)))) for k, delay in plan.items()]
        for timer in self.timers:
            timer.start()

    def claim(self):
        if self.next >= self.n:
            return None
        self.next += 1
        self.built_here.append(self.next - 1)
        return self.next - 1

    def receive(self, block: bool):
        import queue

        try:
            return [self.results.get(block=block, timeout=5)]
        except queue.Empty:
            assert not block, "waited for a chunk no child builds"
            return []

    def stop(self):
        self.stopped = True
        for timer in self.timers:
            timer.join()


def test_the_calling_process_builds_the_chunks_no_child_has_claimed():
    """Chunk 0 comes from a child at once, chunk 1 from a child later; chunk 2 nobody has claimed, so the caller
    builds it while it waits for chunk 1. Record order is kept and the children are stopped."""
    import crystograph.data.parallel as parallel
    from crystograph.config import GraphConfig

    records = _records_with_bad_ones(2 * parallel.BATCH + 3)
    children = _FakeChildren(records, {0: 0.0, 1: 0.5})
    got = list(parallel._collect(children, records, GraphConfig(), None, ahead=8))
    assert children.built_here == [2] and children.stopped
    _same_outcomes(got, list(parallel.built_here(records, GraphConfig(), None)))
    assert {o[1] for o in got if o[0] == "skip"} == {"lonely.cif", "mixed.cif"}


def test_with_no_child_started_the_caller_builds_everything():
    import crystograph.data.parallel as parallel
    from crystograph.config import GraphConfig

    records = _records_with_bad_ones(2 * parallel.BATCH + 3)
    children = _FakeChildren(records, {})
    got = list(parallel._collect(children, records, GraphConfig(), None, ahead=8))
    assert children.built_here == [0, 1, 2]
    _same_outcomes(got, list(parallel.built_here(records, GraphConfig(), None)))


def test_the_caller_holds_at_most_ahead_chunks():
    """With `ahead=1` the caller, holding the chunk it built, waits for the child instead of claiming more."""
    import crystograph.data.parallel as parallel
    from crystograph.config import GraphConfig

    records = synthetic_records(4 * parallel.BATCH)
    children = _FakeChildren(records, {0: 0.3})
    outcomes = parallel._collect(children, records, GraphConfig(), None, ahead=1)
    next(outcomes)  # chunk 0's first outcome: the caller built chunk 1 meanwhile, and no more
    assert children.built_here == [1]
    assert len(list(outcomes)) == 4 * parallel.BATCH - 1 and children.built_here == [1, 2, 3]


def _exit_now(start):
    import os

    os._exit(3)


def _raise_now(start):
    raise ZeroDivisionError("a bug in a worker")


@pytest.mark.slow  # starts worker processes
@pytest.mark.parametrize("task, message", [(_exit_now, r"ended unexpectedly \(exit codes \[3\]\)"),
                                           (_raise_now, "failed on records .*ZeroDivisionError: a bug in a worker")])
def test_a_worker_that_dies_or_fails_is_an_error_not_a_hang(monkeypatch, task, message):
    import crystograph.data.parallel as parallel

    if parallel._context().get_start_method() != "fork":
        pytest.skip("the patched task reaches the child by fork")
    monkeypatch.setattr(parallel, "_worker_task", task)
    monkeypatch.setattr(parallel, "chunk_outcomes", lambda *args: __import__("time").sleep(0.3) or [])
    records = synthetic_records(4 * parallel.BATCH)
    with pytest.raises(RuntimeError, match=message):
        build_graphs(records, targets=["a"], progress=False, workers=2)


def _pack_into_a_slot(slots, sent):
    """`slots.pack(sent)` once a slot is free (a freed slot id reaches the queue through its thread)."""
    import time

    deadline = time.monotonic() + 10
    while (result := slots.pack(sent))[0] is None and time.monotonic() < deadline:
        time.sleep(0.01)
    return result


def test_shared_slots_hand_over_copies_and_fall_back_to_the_queue():
    import multiprocessing

    import numpy as np

    from crystograph.data.slots import Slots

    slots = Slots(multiprocessing.get_context("fork"), n_slots=2, slot_bytes=4096)
    slots.release_all()
    graph = {"x": np.arange(12, dtype=np.float32).reshape(3, 4), "edge_index": np.array([[0, 1], [1, 2]]),
             "empty": np.zeros((0, 3), dtype=np.float32)}
    sent = [(("ok", graph), []), (("skip", "row 7", "no atoms"), [("careful", UserWarning)])]
    slot, packed = _pack_into_a_slot(slots, sent)
    assert slot is not None and packed[1] == sent[1]
    assert all(isinstance(place, tuple) for place in packed[0][0][1].values())  # places, not arrays
    back = slots.unpack(slot, packed)
    assert back[1] == sent[1] and back[0][0][0] == "ok" and len(back[0][0]) == 2
    for key, array in graph.items():
        got = back[0][0][1][key]
        assert got.dtype == array.dtype and got.shape == array.shape and np.array_equal(got, array)
        assert got.flags.owndata  # a copy: no graph keeps the shared buffer alive
    first, second = _pack_into_a_slot(slots, sent)[0], _pack_into_a_slot(slots, sent)[0]
    assert {first, second} == {0, 1}
    assert slots.pack(sent) == (None, sent)  # no slot free: the chunk goes on the queue as it is
    slots.release(first)
    big = [(("ok", {"x": np.zeros(2048, dtype=np.float32)}), [])]  # 8 KB: larger than a slot
    assert slots.pack(big) == (None, big)
    assert _pack_into_a_slot(slots, sent)[0] == first
