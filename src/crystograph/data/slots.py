"""A child's graph arrays handed to the parent through shared memory instead of the result queue's pipe.

A multiprocessing queue pickles a chunk's arrays (~3.5 MB for 64 MP structures) in the child and pushes them
through a 64 KB pipe to the parent, which unpickles them; on a 2-core machine this costs a fifth of a parallel
build (the parent blocked in the pipe read, the child's building slowed while its queue thread pickles).

`Slots` is one anonymous shared `mmap` (MAP_SHARED, created before the children are forked, so every process
sees the same pages) cut into `n_slots` slots of `slot_bytes`. A child takes a free slot, copies its arrays
into it and sends only their places (dtype, shape, offset) on the queue; the parent copies them out (each graph
owns its memory, as before) and frees the slot at once. A child that finds no free slot, or a chunk too large
for one, sends its arrays on the queue as before, so a slot shortage never blocks a child. Only for forked
children (Linux): spawned processes do not share an anonymous mapping, and `Slots` is then not used.
"""

from __future__ import annotations

import mmap
import queue
from typing import Any

import numpy as np

ALIGN = 64  # bytes: each array starts at a multiple of this inside its slot

# A chunk's `_worker_task` result: [(outcome, warnings)], outcome ("ok", {key: array}) or a skip/error.
Sent = list[tuple[tuple, list]]


class Slots:
    """`n_slots` shared slots of `slot_bytes`; create before forking, then `pack` in a child, `unpack` here."""

    def __init__(self, context, n_slots: int, slot_bytes: int):
        self.n_slots, self.slot_bytes = n_slots, slot_bytes
        self.buffer = mmap.mmap(-1, n_slots * slot_bytes)  # anonymous and MAP_SHARED: inherited by fork
        self.free = context.Queue()  # ids of free slots; empty until `release_all`

    def release_all(self) -> None:
        """Every slot free (call once, in the parent, after forking: a queue's first put starts its thread)."""
        for slot in range(self.n_slots):
            self.free.put(slot)

    def pack(self, sent: Sent) -> tuple[int | None, Any]:
        """(slot, `sent` with each array replaced by its place in the slot), or (None, `sent` unchanged) when no
        slot is free or the arrays do not fit in one."""
        arrays = [a for outcome, _ in sent if outcome[0] == "ok" for a in outcome[1].values()]
        if _packed_size(arrays) > self.slot_bytes:
            return None, sent
        try:
            slot = self.free.get(block=False)
        except queue.Empty:
            return None, sent
        offset = slot * self.slot_bytes
        packed = []
        for outcome, raised in sent:
            if outcome[0] == "ok":
                places = {}
                for key, array in outcome[1].items():
                    array = np.ascontiguousarray(array)
                    view = np.ndarray(array.shape, array.dtype, buffer=self.buffer, offset=offset)
                    view[...] = array
                    places[key] = (array.dtype.str, array.shape, offset)
                    offset += _aligned(array.nbytes)
                outcome = ("ok", places, *outcome[2:])
            packed.append((outcome, raised))
        return slot, packed

    def unpack(self, slot: int | None, packed: Any) -> Sent:
        """`pack`'s input back, each array a copy that owns its memory; the slot is free again."""
        if slot is None:
            return packed
        sent = []
        for outcome, raised in packed:
            if outcome[0] == "ok":
                arrays = {key: np.ndarray(shape, np.dtype(dtype), buffer=self.buffer, offset=offset).copy()
                          for key, (dtype, shape, offset) in outcome[1].items()}
                outcome = ("ok", arrays, *outcome[2:])
            sent.append((outcome, raised))
        self.release(slot)
        return sent

    def release(self, slot: int) -> None:
        """The slot is free again."""
        self.free.put(slot)


def _aligned(nbytes: int) -> int:
    return -(-nbytes // ALIGN) * ALIGN


def _packed_size(arrays: list[np.ndarray]) -> int:
    return sum(_aligned(a.nbytes) for a in arrays)
