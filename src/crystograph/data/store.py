"""A dataset's graphs on disk, read one graph at a time: training memory that does not grow with the dataset.

Layout of a store directory (no pickles; plain little-endian arrays + JSON)::

    STORE/meta.json           fields (dtype, trailing shape, which count they grow with), ids, n, version
    STORE/<field>.bin         every graph's rows of one field, concatenated in graph order
    STORE/offsets.bin         int64 [N + 1, 3]: where graph i's nodes, edges and line edges start
    STORE/y.bin               float32 [N, T] targets (also kept in memory: they are small)

A field grows with the nodes (``x, z, pos, pe``), the edges (``edge_index`` stored as [E, 2], ``edge_vec``) or the
line edges (``lg_edge_index`` stored as [L, 2]). Index fields are stored as int32 (< 2**31 rows per graph) and
returned as int64. Reading graph i is one positioned read per field (``np.fromfile(offset=…)``), through the
operating system's file cache, so the training process holds only the targets, the offsets and the batch being
used. `GraphStore` and its `subset` views are sequences of `CrystalGraph`s: `fit`, `predict` and the
DataLoader take them where they take a list.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch

from crystograph.errors import InputError

STORE_VERSION = 1
# field -> (count it grows with: 0 nodes, 1 edges, 2 line edges; stored dtype; transposed on disk)
FIELDS: dict[str, tuple[int, str, bool]] = {
    "x": (0, "float32", False), "z": (0, "int32", False), "pos": (0, "float32", False), "pe": (0, "float32", False),
    "edge_index": (1, "int32", True), "edge_vec": (1, "float32", False), "lg_edge_index": (2, "int32", True),
}
_INDEX_FIELDS = {"z", "edge_index", "lg_edge_index"}


def _counts(graph) -> tuple[int, int, int]:
    return int(graph.num_nodes), int(graph.edge_index.size(1)), int(graph.lg_edge_index.size(1))


class GraphStoreWriter:
    """Append graphs one at a time; `close()` writes the offsets and meta.json last, so a store without
    meta.json is an unfinished write and is never read."""

    def __init__(self, root: Path | str):
        self.root = Path(root)
        if self.root.exists():
            shutil.rmtree(self.root)
        self.tmp = self.root.with_name(self.root.name + f".{os.getpid()}.partial")
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.tmp.mkdir(parents=True)
        self.files: dict = {}
        self.shapes: dict[str, list[int]] = {}
        self.offsets = [(0, 0, 0)]
        self.ids: list[str] = []
        self.ys: list[np.ndarray] = []

    def append(self, graph) -> None:
        if not self.files:  # the first graph fixes the fields and their trailing shapes
            for name in FIELDS:
                if name in graph:
                    self.files[name] = open(self.tmp / f"{name}.bin", "wb")
                    value = graph[name].t() if FIELDS[name][2] else graph[name]
                    self.shapes[name] = list(value.shape[1:])
        for name, handle in self.files.items():
            value = graph[name].t() if FIELDS[name][2] else graph[name]
            if list(value.shape[1:]) != self.shapes[name]:
                raise ValueError(f"graph {len(self.ids)}: {name} has shape {tuple(value.shape)}, the store holds "
                                 f"[*, {', '.join(map(str, self.shapes[name]))}]")
            handle.write(np.ascontiguousarray(value.detach().cpu().numpy(), dtype=FIELDS[name][1]).tobytes())
        n, e, n_line = _counts(graph)
        last = self.offsets[-1]
        self.offsets.append((last[0] + n, last[1] + e, last[2] + n_line))
        self.ids.append(str(getattr(graph, "sample_id", len(self.ids))))
        y = getattr(graph, "y", None)
        self.ys.append(np.zeros((1, 0), np.float32) if y is None else y.detach().cpu().numpy().reshape(1, -1))

    def close(self) -> "GraphStore":
        for handle in self.files.values():
            handle.close()
        np.asarray(self.offsets, dtype=np.int64).tofile(self.tmp / "offsets.bin")
        y = np.concatenate(self.ys).astype(np.float32) if self.ys else np.zeros((0, 0), np.float32)
        y.tofile(self.tmp / "y.bin")
        meta = {"version": STORE_VERSION, "n": len(self.ids), "ids": self.ids, "n_targets": int(y.shape[1]),
                "fields": {k: {"shape": self.shapes[k], "dtype": FIELDS[k][1], "count": FIELDS[k][0],
                               "transposed": FIELDS[k][2]} for k in self.files}}
        (self.tmp / "meta.json").write_text(json.dumps(meta))
        os.replace(self.tmp, self.root)
        return GraphStore(self.root)


def write_store(graphs: Iterable, root: Path | str) -> "GraphStore":
    """Write `graphs` (any iterable, consumed once) to a store at `root` and open it."""
    writer = GraphStoreWriter(root)
    for graph in graphs:
        writer.append(graph)
    return writer.close()


def is_current(root: Path | str) -> bool:
    """True when `root` holds a finished store this version of crystograph reads."""
    meta_path = Path(root) / "meta.json"
    try:
        return json.loads(meta_path.read_text()).get("version") == STORE_VERSION
    except (OSError, ValueError):
        return False


class GraphStore(Sequence):
    """The graphs of a store directory, read from disk on access (see the module docstring)."""

    def __init__(self, root: Path | str):
        self.root = Path(root)
        meta_path = self.root / "meta.json"
        if not meta_path.exists():
            raise InputError(str(self.root), "not a finished graph store (no meta.json); build it again")
        try:
            self.meta = json.loads(meta_path.read_text())
        except ValueError as err:
            raise InputError(str(meta_path), f"not valid JSON ({err}); delete the folder to build it again") from err
        if self.meta.get("version") != STORE_VERSION:
            raise InputError(str(self.root), f"graph store version {self.meta.get('version')}, this crystograph "
                             f"reads version {STORE_VERSION}; delete the folder to build it again")
        n = self.meta["n"]
        self.ids: list[str] = self.meta["ids"]
        self.offsets = np.fromfile(self.root / "offsets.bin", dtype=np.int64).reshape(n + 1, 3)
        self.y = np.fromfile(self.root / "y.bin", dtype=np.float32).reshape(n, self.meta["n_targets"])

    def __len__(self) -> int:
        return self.meta["n"]

    def _read(self, name: str, start: int, stop: int) -> torch.Tensor:
        spec = self.meta["fields"][name]
        dtype = np.dtype(spec["dtype"])
        row = int(np.prod(spec["shape"], dtype=np.int64)) if spec["shape"] else 1
        values = np.fromfile(self.root / f"{name}.bin", dtype=dtype, count=(stop - start) * row,
                             offset=start * row * dtype.itemsize).reshape(stop - start, *spec["shape"])
        tensor = torch.from_numpy(values)
        if name in _INDEX_FIELDS:
            tensor = tensor.long()
        return tensor.t().contiguous() if spec["transposed"] else tensor

    def __getitem__(self, i):
        if isinstance(i, slice):
            return self.subset(range(len(self))[i])
        from crystograph.graphs import CrystalGraph

        i = int(i)
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"graph {i} of a store of {len(self)}")
        start, stop = self.offsets[i], self.offsets[i + 1]
        tensors = {name: self._read(name, int(start[spec["count"]]), int(stop[spec["count"]]))
                   for name, spec in self.meta["fields"].items()}
        graph = CrystalGraph(**tensors, num_nodes=int(stop[0] - start[0]))
        if self.y.shape[1]:
            graph.y = torch.from_numpy(self.y[i : i + 1].copy())
        graph.sample_id = self.ids[i]
        return graph

    def subset(self, indices: Sequence[int]) -> "GraphSubset":
        return GraphSubset(self, np.asarray(indices, dtype=np.int64))

    def targets(self) -> np.ndarray:
        return self.y

    def domain(self) -> dict:
        """Elements (atomic numbers) and atoms-per-cell range of every graph (as `training_domain`)."""
        return _domain(self, np.arange(len(self)))


class GraphSubset(Sequence):
    """Some graphs of a store, in the given order, without reading them."""

    def __init__(self, store: GraphStore, indices: np.ndarray):
        self.store, self.indices = store, indices

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return GraphSubset(self.store, self.indices[i])
        return self.store[int(self.indices[i])]

    def subset(self, indices: Sequence[int]) -> "GraphSubset":
        return GraphSubset(self.store, self.indices[np.asarray(indices, dtype=np.int64)])

    @property
    def ids(self) -> list[str]:
        return [self.store.ids[i] for i in self.indices]

    def targets(self) -> np.ndarray:
        return self.store.y[self.indices]

    def domain(self) -> dict:
        return _domain(self.store, self.indices)


def _domain(store: GraphStore, indices: np.ndarray) -> dict:
    all_sizes = np.diff(store.offsets[:, 0])
    sizes = all_sizes[indices]
    chosen = np.zeros(len(store), dtype=bool)
    chosen[indices] = True
    z = np.fromfile(store.root / "z.bin", dtype=np.int32)
    elements = sorted(int(v) for v in np.unique(z[np.repeat(chosen, all_sizes)]))
    return {"elements": elements, "n_atoms": [int(sizes.min()), int(sizes.max())] if len(sizes) else [0, 0]}


def take(graphs: Sequence, indices: Sequence[int]) -> Sequence:
    """`graphs[i] for i in indices`: a list for a list, a lazy view for a store (nothing is read)."""
    if isinstance(graphs, (GraphStore, GraphSubset)):
        return graphs.subset(indices)
    return [graphs[int(i)] for i in indices]


def sample_ids(graphs: Sequence) -> list[str]:
    """Every graph's `sample_id` (its position where it has none), without reading a store's graphs."""
    if isinstance(graphs, (GraphStore, GraphSubset)):
        return list(graphs.ids)
    return [str(getattr(g, "sample_id", i)) for i, g in enumerate(graphs)]


__all__ = ["GraphStore", "GraphStoreWriter", "GraphSubset", "sample_ids", "take", "write_store"]
