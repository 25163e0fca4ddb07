"""Graphs of many structures built in worker processes (`build_graphs(..., workers=N)`).

`workers=N` means N building processes: this one and N - 1 children, which take chunks of BATCH records from one
queue; this process builds whichever chunk no child has started yet while it waits for the next one in order.
Each child runs the same code as the serial path (`build_chunk`: `graphs.bulk.build_graph_batch` on BATCH records
at a time, one thread, giving exactly `build_graph`'s graphs), reads and writes the same graph cache (its writes are
atomic and per-writer, so processes never clash), and sends back plain numpy arrays, never shared-memory tensors (a
dataset would otherwise hold one file descriptor per tensor). Results come back in record order, so a parallel build
returns exactly the serial build's graphs and skip list. Workers are forked on Linux (no re-import of the caller's
script, as PyTorch's DataLoader does) and spawned elsewhere (macOS, Windows: the calling script needs the usual
`if __name__ == "__main__":` guard); starting them costs up to a few seconds, so small inputs stay in this process.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import warnings
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crystograph.config import GraphConfig
from crystograph.errors import ConfigError, InputError

if TYPE_CHECKING:
    from crystograph.structures import StructureRecord

MIN_PER_WORKER = 32  # fewer records than this per worker: the start-up cost is not worth a pool
BATCH = 64  # records built together (`build_graph_batch`), and sent to a worker as one task


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
                cache_root: str | None) -> list[tuple]:
    """`build_one`'s outcomes for several structures: cached graphs are loaded, the others built together by
    `build_graph_batch` (the same graphs). If the batch raises anything but a per-structure `InputError`, its
    structures are built one by one, so that the failure is reported against its own record."""
    from crystograph.data.dataset import GraphCache
    from crystograph.graphs.bulk import build_graph_batch

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
        built = build_graph_batch([structures[t] for t in todo], graph_config,
                                  sources=[sources[t] for t in todo], expand_features=False) if todo else []
    except Exception:
        built = [None] * len(todo)
    for index, graph in zip(todo, built):
        if graph is None:
            outcomes[index] = build_one(structures[index], sources[index], graph_config, cache_root)
        elif isinstance(graph, InputError):
            outcomes[index] = ("skip", graph.source, graph.reason)
        else:
            try:
                if keys[index]:
                    cache.save(keys[index], graph)
            except Exception as err:
                outcomes[index] = ("error", sources[index], failure_reason(err), err)
                continue
            outcomes[index] = ("ok", graph)
    return outcomes


def chunk_outcomes(records: Sequence["StructureRecord"], start: int, graph_config: GraphConfig,
                   cache_root: str | None) -> list[tuple]:
    """`build_chunk` outcomes of records start..start + BATCH."""
    part = records[start:start + BATCH]
    return build_chunk([r.structure for r in part], [r.source for r in part], graph_config, cache_root)


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


_SHARED: dict[str, Any] = {}  # in a worker: the records, graph config and cache root of its pool


def _worker_init(records: Sequence["StructureRecord"], graph_config: GraphConfig, cache_root: str | None) -> None:
    """Runs once per worker: one thread (torch and BLAS), the real stdout/stderr (not a progress bar's proxy);
    the inputs arrive here (copied by fork, or pickled once for spawn), so a task is only a record's index."""
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
    """(`build_chunk` outcome, the warnings raised) of records start..start + BATCH in a worker; graphs travel as
    numpy arrays, unexpected errors as their reason, warnings as (message, category) for the parent to
    re-issue (with the chunk's first outcome)."""
    import torch

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        outcomes = chunk_outcomes(_SHARED["records"], start, _SHARED["graph_config"], _SHARED["cache_root"])
    raised = [(str(w.message), w.category) for w in caught]
    sent = []
    for outcome in outcomes:
        if outcome[0] == "error":
            outcome = outcome[:3]  # the exception itself may not pickle; its text travels
        elif outcome[0] == "ok":
            graph = outcome[1]
            arrays = {key: graph[key].numpy() for key in graph.keys() if torch.is_tensor(graph[key])}
            outcome = ("ok", arrays, int(graph.num_nodes))
        sent.append((outcome, raised))
        raised = []
    return sent


def _context() -> multiprocessing.context.BaseContext:
    return multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")


def built_in_workers(records: Sequence["StructureRecord"], graph_config: GraphConfig, cache_root: str | None,
                     workers: int) -> Iterator[tuple]:
    """Outcomes of `build_chunk` for every record, in record order, built by `workers` processes: this one and
    `workers` - 1 children. The chunks go to the children's queue; whenever the next chunk in order is not ready,
    this process takes the first chunk no child has started (cancels it in the queue) and builds it itself, so no
    core waits while work is left and at most a few chunks are held ahead of the caller. A child's unexpected
    error comes back as ("error", source, reason) without the exception, its warnings are re-issued here. The
    children start before this returns (so before any progress bar's thread); closing the iterator early cancels
    the pending work."""
    pool = ProcessPoolExecutor(max_workers=workers - 1, mp_context=_context(), initializer=_worker_init,
                               initargs=(records, graph_config, cache_root))
    try:
        futures = [pool.submit(_worker_task, start) for start in range(0, len(records), BATCH)]  # starts them now
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    return _collect(pool, futures, records, graph_config, cache_root)


def _collect(pool: ProcessPoolExecutor, futures: list[Future], records: Sequence["StructureRecord"],
             graph_config: GraphConfig, cache_root: str | None) -> Iterator[tuple]:
    stolen: dict[int, list[tuple]] = {}  # chunk -> outcomes built in this process
    scan = 0  # chunks before this one have started in a child or been taken here
    try:
        for chunk, future in enumerate(futures):
            while chunk not in stolen and not future.done():
                scan = max(scan, chunk)
                while scan < len(futures) and (scan in stolen or not futures[scan].cancel()):
                    scan += 1  # a chunk a child has started stays with it (the queue is first in, first out)
                if scan == len(futures):
                    break  # every chunk left is running in a child: wait for this one
                stolen[scan] = chunk_outcomes(records, scan * BATCH, graph_config, cache_root)
            if chunk in stolen:
                yield from stolen.pop(chunk)
            else:
                yield from _received(future.result())
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _received(sent: list[tuple[tuple, list]]) -> Iterator[tuple]:
    """A child's `_worker_task` result as `build_chunk` outcomes; its warnings are issued here."""
    import torch

    from crystograph.graphs import CrystalGraph

    for outcome, raised in sent:
        for message, category in raised:
            warnings.warn(message, category, stacklevel=3)
        if outcome[0] == "ok":
            _, arrays, n = outcome
            tensors = {key: torch.from_numpy(value) for key, value in arrays.items()}
            yield ("ok", CrystalGraph(**tensors, num_nodes=n))
        else:
            yield outcome
