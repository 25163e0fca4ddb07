"""Graphs of many structures built in worker processes (`build_graphs(..., workers=N)`).

`workers=N` means N building processes: this one and N - 1 children. The records are cut into chunks of BATCH;
every process takes the next unclaimed chunk from one shared counter (a lock-protected integer in shared memory),
so the chunks are claimed in order and no process idles while one is left. A child builds its chunk with the same
code as the serial path (`build_chunk`: `graphs.bulk.build_graph_batch` on BATCH records at a time, one thread,
giving exactly `build_graph`'s graphs), reads and writes the same graph cache (its writes are atomic and
per-writer, so processes never clash), and hands the result over as plain numpy arrays, never shared-memory
tensors (a dataset would otherwise hold one file descriptor per tensor): copied through a shared memory slot
(`slots.Slots`, forked children) with only their places on the result queue, or pickled on the queue itself.
This process yields the outcomes in record order: a chunk it built, or a child's from the queue, building the next
unclaimed chunk itself while the one it needs is still in a child. So a parallel build returns exactly the serial
build's graphs and skip list.
Children are forked on Linux (no re-import of the caller's script, as PyTorch's DataLoader does) and spawned
elsewhere (macOS, Windows: the calling script needs the usual `if __name__ == "__main__":` guard); starting
them costs up to a few seconds, so small inputs stay in this process.

Why not `concurrent.futures.ProcessPoolExecutor`: its queue holds one task ahead per child and is refilled by a
thread of this process, which waits for the GIL while this process builds; the children idled ~30 % of a
2,000-structure build (`benchmarks/README.md`, graph building).
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import sys
import warnings
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crystograph.config import GraphConfig
from crystograph.data.slots import Slots
from crystograph.errors import ConfigError, InputError

if TYPE_CHECKING:
    from crystograph.structures import StructureRecord

MIN_PER_WORKER = 32  # fewer records than this per worker: the start-up cost is not worth a pool
BATCH = 64  # records built together (`build_graph_batch`): the unit a process claims
AHEAD = 8  # chunks per building process this one may hold before yielding them (bounds its memory)
POLL_S = 0.5  # while waiting for a child: how often to check that the children are still alive
SLOTS_PER_CHILD = 4  # shared memory slots per forked child for handing over its graphs (`slots.Slots`)
SLOT_BYTES = 16 << 20  # one slot: a chunk of 64 MP structures needs ~3.5 MB; a larger chunk goes on the queue


def usable_cpus() -> int:
    """CPU cores this process may run on (its affinity mask where the platform has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def processes_on_this_node() -> int:
    """Processes that share this machine's cores in a launched multi-process job (torchrun's LOCAL_WORLD_SIZE),
    else 1."""
    try:
        return max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    except ValueError:
        return 1


def resolve_workers(workers: int, n_records: int) -> int:
    """Building processes for `n_records` (this one included): `workers` (0 = every usable core, shared among the
    processes of a multi-process job on this machine), capped so each gets enough work; 1 means no children."""
    if workers < 0:
        raise ConfigError(f"graph workers must be >= 0 (0 = every usable core), not {workers}")
    wanted = max(1, usable_cpus() // processes_on_this_node()) if workers == 0 else workers
    return max(1, min(wanted, n_records // MIN_PER_WORKER))


def failure_reason(err: Exception) -> str:
    """The skip reason of a structure whose graph construction raised something other than an `InputError`."""
    return f"graph construction failed: {type(err).__name__}: {err}"


def build_one(structure, source: str, graph_config: GraphConfig, cache_root: str | None):
    """Compact graph of one structure through the cache (`build_chunk`'s step for a structure it cannot batch).

    Returns ("ok", graph), ("skip", source, reason) for an `InputError`, or ("error", source, reason, exception)
    for any other exception (a bug or an odd structure, reported against the record).
    """
    from crystograph.data.dataset import GraphCache
    from crystograph.graphs import build_graph

    cache = GraphCache(Path(cache_root)) if cache_root is not None else None
    key = _cache_key(structure, graph_config) if cache else None
    try:
        graph = cache.load(key) if key else None
        if graph is None:
            graph = build_graph(structure, graph_config, source=source, expand_features=False)
            if key:
                cache.save(key, graph)
    except InputError as err:
        return ("skip", err.source, err.reason)
    except Exception as err:
        return ("error", source, failure_reason(err), err)
    return ("ok", graph)


def build_chunk(structures: Sequence, sources: Sequence[str], graph_config: GraphConfig,
                cache_root: str | None, as_arrays: bool = False) -> list[tuple]:
    """`build_one`'s outcomes for several structures: cached graphs are loaded, the others built together by
    `build_graph_batch` (the same graphs). If the batch raises anything but a per-structure `InputError`, its
    structures are built one by one, so that the failure is reported against its own record. `as_arrays`: an
    "ok" outcome holds the graph's fields as numpy arrays (`graphs.bulk.arrays_of_graph`) instead of the graph."""
    from crystograph.data.dataset import GraphCache
    from crystograph.graphs.bulk import arrays_of_graph, build_graph_batch, graph_from_arrays

    cache = GraphCache(Path(cache_root)) if cache_root is not None else None
    outcomes: list[tuple | None] = [None] * len(structures)
    keys: list[str | None] = [None] * len(structures)
    todo = []
    for index, structure in enumerate(structures):
        keys[index] = _cache_key(structure, graph_config) if cache else None
        try:
            graph = cache.load(keys[index]) if keys[index] else None
        except Exception:  # build_one reports it against the record
            outcomes[index] = build_one(structure, sources[index], graph_config, cache_root)
            continue
        if graph is not None:
            outcomes[index] = ("ok", graph)
        else:
            todo.append(index)
    try:
        built = build_graph_batch([structures[t] for t in todo], graph_config, sources=[sources[t] for t in todo],
                                  expand_features=False, as_arrays=True) if todo else []
    except Exception:
        built = [None] * len(todo)
    for index, fields in zip(todo, built):
        if fields is None:
            outcomes[index] = build_one(structures[index], sources[index], graph_config, cache_root)
        elif isinstance(fields, InputError):
            outcomes[index] = ("skip", fields.source, fields.reason)
        else:
            graph = graph_from_arrays(fields) if keys[index] or not as_arrays else None
            try:
                if keys[index]:
                    cache.save(keys[index], graph)
            except Exception as err:
                outcomes[index] = ("error", sources[index], failure_reason(err), err)
                continue
            outcomes[index] = ("ok", fields if as_arrays else graph)
    if as_arrays:  # graphs loaded from the cache or built one by one
        outcomes = [("ok", arrays_of_graph(o[1])) if o[0] == "ok" and not isinstance(o[1], dict) else o
                    for o in outcomes]
    return outcomes


def chunk_outcomes(records: Sequence["StructureRecord"], start: int, graph_config: GraphConfig,
                   cache_root: str | None, as_arrays: bool = False) -> list[tuple]:
    """`build_chunk` outcomes of records start..start + BATCH."""
    part = records[start:start + BATCH]
    return build_chunk([r.structure for r in part], [r.source for r in part], graph_config, cache_root, as_arrays)


def built_here(records: Sequence["StructureRecord"], graph_config: GraphConfig,
               cache_root: str | None) -> Iterator[tuple]:
    """`build_chunk` outcomes of every record, in order, built in this process BATCH records at a time."""
    for start in range(0, len(records), BATCH):
        yield from chunk_outcomes(records, start, graph_config, cache_root)


def _cache_key(structure, graph_config: GraphConfig) -> str | None:
    """The structure's cache key, or None for a structure the key cannot describe (e.g. disordered sites):
    such a structure goes uncached to `build_graph`, which names what is wrong with it."""
    from crystograph.data.dataset import structure_key

    try:
        return structure_key(structure, graph_config)
    except Exception:
        return None


_SHARED: dict[str, Any] = {}  # in a child: the records, graph config and cache root of its build


def _worker_init(records: Sequence["StructureRecord"], graph_config: GraphConfig, cache_root: str | None) -> None:
    """Runs once per child: one thread (torch and BLAS), the real stdout/stderr (not a progress bar's proxy);
    the inputs arrive here (copied by fork, or pickled once for spawn), so a chunk is only its first index."""
    import torch

    sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
    torch.set_num_threads(1)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=1)  # numpy's BLAS (eigh of the positional encodings)
    except ImportError:
        pass
    _SHARED.update(records=records, graph_config=graph_config, cache_root=cache_root)


def _worker_task(start: int) -> list[tuple[tuple, list]]:
    """(`build_chunk` outcome, the warnings raised) of records start..start + BATCH in a child; graphs travel as
    numpy arrays, unexpected errors as their reason, warnings as (message, category) for the parent to
    re-issue (with the chunk's first outcome)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        outcomes = chunk_outcomes(_SHARED["records"], start, _SHARED["graph_config"], _SHARED["cache_root"],
                                  as_arrays=True)
    raised = [(str(w.message), w.category) for w in caught]
    sent = []
    for outcome in outcomes:
        if outcome[0] == "error":
            outcome = outcome[:3]  # the exception itself may not pickle; its text travels
        sent.append((outcome, raised))
        raised = []
    return sent


def n_chunks(n_records: int) -> int:
    """Chunks of BATCH records (the last may be shorter) that `n_records` records make."""
    return -(-n_records // BATCH)


def _context() -> multiprocessing.context.BaseContext:
    return multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")


class _Chunks:
    """The next unclaimed chunk, shared by every building process: `claim` returns chunks 0, 1, ... once each."""

    def __init__(self, context: multiprocessing.context.BaseContext, n: int):
        self.next, self.n = context.Value("q", 0), n

    def claim(self) -> int | None:
        with self.next.get_lock():
            k = self.next.value
            if k >= self.n:
                return None
            self.next.value = k + 1
            return k

    def close(self) -> None:
        """No chunk is handed out after this (children stop after the chunk they are building)."""
        with self.next.get_lock():
            self.next.value = self.n


def _child_main(*args) -> None:
    """A child: `_child_loop` in `_fresh_arena`'s thread."""
    with _fresh_arena() as builder:
        builder.submit(_child_loop, *args).result()


def _fresh_arena() -> ThreadPoolExecutor:
    """One thread to build chunks in: glibc gives a new thread its own malloc arena, so the arrays of a chunk
    land in private pages instead of the free space of the heap that the fork left shared between this process
    and its children, where every first write is a copy-on-write fault (~3,000 per chunk of 64 MP structures,
    each chunk ~25 % slower in both processes)."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="crystograph-graphs")


def _child_loop(records, graph_config: GraphConfig, cache_root: str | None, chunks: _Chunks, results,
                slots: Slots | None) -> None:
    """Claim chunks until none is left, put ("chunk", k, (slot, `_worker_task` result packed into the slot, or
    slot None and the result itself)) for each, then ("done", None, None); an unexpected exception ends it with
    ("failed", k, its text)."""
    _worker_init(records, graph_config, cache_root)
    k = None
    try:
        while (k := chunks.claim()) is not None:
            sent = _worker_task(k * BATCH)
            results.put(("chunk", k, slots.pack(sent) if slots is not None else (None, sent)))
    except BaseException as err:  # noqa: BLE001 - reported to the caller, which raises
        results.put(("failed", k, f"{type(err).__name__}: {err}"))
        return
    results.put(("done", None, None))


class _Children:
    """The N - 1 child processes of a build, their shared chunk counter and their result queue."""

    def __init__(self, records, graph_config: GraphConfig, cache_root: str | None, n_children: int):
        context = _context()
        self.chunks = _Chunks(context, n_chunks(len(records)))
        self.results = context.Queue()  # a child's put does not wait for this process to read
        self.finished = 0  # children that said "done"
        forked = context.get_start_method() == "fork"
        self.slots = Slots(context, SLOTS_PER_CHILD * n_children, SLOT_BYTES) if forked else None
        self.procs = [context.Process(target=_child_main, daemon=True, name=f"crystograph-graphs-{i}",
                                      args=(records, graph_config, cache_root, self.chunks, self.results, self.slots))
                      for i in range(n_children)]
        for proc in self.procs:
            proc.start()
        if self.slots is not None:
            self.slots.release_all()  # after the forks: the free list's queue thread starts here, not in a child

    def claim(self) -> int | None:
        return self.chunks.claim()

    def receive(self, block: bool) -> list[tuple[int, list]]:
        """Chunks the children have finished, as (k, `_worker_task` result); with `block`, waits for at least
        one. Raises RuntimeError for a child's unexpected error, or when a child ended without reporting."""
        got = []
        while True:
            try:
                kind, k, value = self.results.get(block=block and not got, timeout=POLL_S)
            except queue.Empty:
                if got or not block:
                    return got
                self._check_alive()
                continue
            if kind == "failed":
                where = "before claiming a chunk" if k is None else f"on records {k * BATCH}..{(k + 1) * BATCH - 1}"
                raise RuntimeError(f"a graph-building worker failed {where}: {value}")
            if kind == "done":
                self.finished += 1
            else:
                got.append((k, self.slots.unpack(*value) if self.slots is not None else value[1]))

    def _check_alive(self) -> None:
        ended = [proc.exitcode for proc in self.procs if proc.exitcode is not None]
        if len(ended) > self.finished:
            raise RuntimeError(f"a graph-building worker process ended unexpectedly (exit codes {ended}); "
                               "rerun with one graph worker to build in this process")

    def stop(self) -> None:
        """No more chunks are handed out; the children end (or are ended) before this returns."""
        self.chunks.close()
        for proc in self.procs:
            proc.join(timeout=2 * POLL_S)
        for proc in self.procs:
            if proc.is_alive():  # e.g. flushing a result nobody will read
                proc.terminate()
                proc.join()


def built_in_workers(records: Sequence["StructureRecord"], graph_config: GraphConfig, cache_root: str | None,
                     workers: int) -> Iterator[tuple]:
    """Outcomes of `build_chunk` for every record, in record order, built by `workers` processes: this one and
    `workers` - 1 children (see the module docstring). A child's unexpected error is raised here as a
    RuntimeError, its warnings are re-issued here. The children start before this returns (so before any
    progress bar's thread); closing the iterator early stops them."""
    children = _Children(records, graph_config, cache_root, workers - 1)
    return _collect(children, records, graph_config, cache_root, ahead=AHEAD * workers, builder=_fresh_arena())


def _collect(children, records: Sequence["StructureRecord"], graph_config: GraphConfig, cache_root: str | None,
             ahead: int, builder: ThreadPoolExecutor | None = None) -> Iterator[tuple]:
    """Yield every chunk's outcomes in order; while the next chunk is in a child, build the next unclaimed one
    here (holding at most `ahead` chunks; in `builder`'s thread when given, shut down at the end). `children`
    has `claim`, `receive(block)` and `stop` (`_Children`)."""
    ready: dict[int, tuple[bool, list]] = {}  # chunk -> (built here?, outcomes or a child's result)
    try:
        for chunk in range(n_chunks(len(records))):
            while chunk not in ready:
                ready.update((k, (False, sent)) for k, sent in children.receive(block=False))
                if chunk in ready:
                    break
                k = children.claim() if len(ready) < ahead else None
                if k is not None:
                    args = (records, k * BATCH, graph_config, cache_root)
                    built = builder.submit(chunk_outcomes, *args).result() if builder else chunk_outcomes(*args)
                    ready[k] = (True, built)
                else:  # every chunk left is claimed (or this process holds enough): wait for a child
                    ready.update((k, (False, sent)) for k, sent in children.receive(block=True))
            here, value = ready.pop(chunk)
            yield from (value if here else _received(value))
    finally:
        if builder is not None:
            builder.shutdown()
        children.stop()


def _received(sent: list[tuple[tuple, list]]) -> Iterator[tuple]:
    """A child's `_worker_task` result as `build_chunk` outcomes; its warnings are issued here."""
    from crystograph.graphs.bulk import graph_from_arrays

    for outcome, raised in sent:
        for message, category in raised:
            warnings.warn(message, category, stacklevel=3)
        yield ("ok", graph_from_arrays(outcome[1])) if outcome[0] == "ok" else outcome
