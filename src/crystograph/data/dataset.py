"""Structures → graphs with targets, a content-addressed graph cache, and target normalisation.

`build_graphs` turns `StructureRecord`s into compact `CrystalGraph`s (no `edge_attr`/`lg_attr`: the model
expands the RBFs per batch, which keeps a dataset's graphs ~5x smaller) carrying `y` [1, T] and `sample_id`.
A failed build is a `Skipped` naming the record (nothing vanishes), or an error with `strict=True`.
Graphs are cached on disk as plain tensor dicts (loaded with `weights_only=True`) keyed by a hash of
the structure and the graph config, so a second run over the same data skips graph construction.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import os
import uuid
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from crystograph import __version__
from crystograph.config import GraphConfig
from crystograph.errors import InputError, Skipped

if TYPE_CHECKING:
    from crystograph.graphs import CrystalGraph
    from crystograph.structures import StructureRecord

_GRAPH_FIELDS = ("x", "z", "pos", "edge_index", "edge_vec", "lg_edge_index", "pe")


@functools.lru_cache(maxsize=1)
def _builder_fingerprint() -> str:
    """Hash of the graph-builder source, so graphs cached by an older builder are never reused."""
    import crystograph.graphs as graphs_pkg

    h = hashlib.sha1()
    for path in sorted(Path(graphs_pkg.__file__).parent.glob("*.py")):
        h.update(path.read_bytes())
    return h.hexdigest()


def structure_key(structure, graph_config: GraphConfig) -> str:
    """Hash of the lattice, species, fractional coordinates, the graph config and the builder code."""
    h = hashlib.sha1()
    h.update(_builder_fingerprint().encode())
    h.update(np.ascontiguousarray(structure.lattice.matrix, dtype=np.float64).round(8).tobytes())
    h.update(np.asarray(structure.atomic_numbers, dtype=np.int64).tobytes())
    h.update(np.ascontiguousarray(structure.frac_coords, dtype=np.float64).round(8).tobytes())
    h.update(json.dumps(dataclasses.asdict(graph_config), sort_keys=True).encode())
    h.update(__version__.encode())
    return h.hexdigest()


class GraphCache:
    """One `.pt` file of tensors per graph under `root/<key[:2]>/<key>.pt`."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.pt"

    def load(self, key: str) -> "CrystalGraph | None":
        from crystograph.graphs import CrystalGraph

        path = self._path(key)
        if not path.exists():
            return None
        try:
            tensors = torch.load(path, weights_only=True)
        except Exception:  # a half-written or foreign file: rebuild it
            return None
        return CrystalGraph(**tensors, num_nodes=int(tensors["x"].size(0)))

    def save(self, key: str, graph: "CrystalGraph") -> None:
        """Best effort: a cache that cannot be written (full disk, read-only, a race) never fails a build."""
        path = self._path(key)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")  # one per writer
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.save({name: graph[name] for name in _GRAPH_FIELDS if name in graph}, tmp)
            tmp.replace(path)  # atomic: a killed job never leaves a truncated cache entry
        except OSError as err:
            warnings.warn(f"graph cache {self.root}: could not write {path.name} ({err})", stacklevel=2)
            try:
                tmp.unlink(missing_ok=True)
            except OSError:  # e.g. the cache root is a file: there is no temporary file either
                pass


def _target_tensor(record: "StructureRecord", targets: Sequence[str]) -> torch.Tensor:
    values = []
    for name in targets:
        if name not in record.targets:
            raise InputError(record.source, f"target {name!r} is missing")
        try:
            value = float(record.targets[name])
        except (TypeError, ValueError):
            raise InputError(record.source, f"target {name!r} is not a number ({record.targets[name]!r})") from None
        if not math.isfinite(value):
            raise InputError(record.source, f"target {name!r} is not a finite number ({value})")
        values.append(value)
    return torch.tensor([values], dtype=torch.float32)  # [1, T]


def build_graphs(
    records: Sequence["StructureRecord"],
    graph_config: GraphConfig | None = None,
    *,
    targets: Sequence[str] | None = None,
    cache_dir: Path | str | None = None,
    progress: bool = True,
    strict: bool = False,
    description: str = "building graphs",
    store_dir: Path | str | None = None,
    workers: int = 1,
) -> tuple[list["CrystalGraph"], list[Skipped]]:
    """Build (or load from cache) one graph per record; failures are returned as `Skipped`. With `store_dir`,
    the graphs go to a `GraphStore` under ``store_dir/<store_key>`` (read back one graph at a time, so memory does
    not grow with the dataset) and that store is returned; a finished store of the same records is reused.
    `workers` > 1 builds in that many processes (0: every usable core; `data.parallel`), with the same result."""
    from crystograph.data.parallel import built_here, built_in_workers, resolve_workers
    from crystograph.data.store import GraphStore, GraphStoreWriter, is_current
    from crystograph.progress import track

    graph_config = graph_config or GraphConfig()
    n_workers = resolve_workers(workers, len(records))  # checks the option before any work
    writer = None
    if store_dir is not None:
        root = Path(store_dir) / store_key(records, graph_config, targets)
        if is_current(root) and (root / "skipped.json").exists():  # a store of another version is rebuilt
            done = json.loads((root / "skipped.json").read_text())
            return GraphStore(root), [Skipped(s, r) for s, r in done]
        writer = GraphStoreWriter(root)
    cache_root = str(cache_dir) if cache_dir is not None else None
    if n_workers > 1:
        outcomes = built_in_workers(records, graph_config, cache_root, n_workers)
    else:
        outcomes = built_here(records, graph_config, cache_root)
    graphs: list[CrystalGraph] = []
    skipped: list[Skipped] = []
    try:
        for record, outcome in zip(track(records, description=description, enabled=progress), outcomes):
            try:
                y = _target_tensor(record, targets) if targets else None
                graph = _graph_of(outcome)
            except InputError as err:
                if strict:
                    raise
                skipped.append(Skipped(err.source, err.reason))
                continue
            if y is not None:
                graph.y = y
            graph.sample_id = record.id
            if writer is not None:
                writer.append(graph)
            else:
                graphs.append(graph)
    finally:
        outcomes.close()  # stops the workers when a strict error ends the loop early
    if writer is not None:
        store = writer.close()
        (store.root / "skipped.json").write_text(json.dumps([[s.source, s.reason] for s in skipped]))
        return store, skipped
    return graphs, skipped


def _graph_of(outcome: tuple) -> "CrystalGraph":
    """The graph of a `build_one` outcome, or the `InputError` naming its record and reason (from the exception
    behind it, when it came from this process)."""
    if outcome[0] == "ok":
        return outcome[1]
    raise InputError(outcome[1], outcome[2]) from (outcome[3] if len(outcome) > 3 else None)


@dataclasses.dataclass
class TargetScaler:
    """Standardises regression targets: y' = (y - mean) / std, per target column."""

    mean: list[float]
    std: list[float]

    @classmethod
    def fit(cls, y: np.ndarray) -> "TargetScaler":
        y = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
        std = y.std(axis=0)
        std[~(std > 1e-12)] = 1.0
        return cls(mean=y.mean(axis=0).tolist(), std=std.tolist())

    @classmethod
    def identity(cls, n_targets: int) -> "TargetScaler":
        return cls(mean=[0.0] * n_targets, std=[1.0] * n_targets)


def stack_targets(graphs: Sequence["CrystalGraph"]) -> np.ndarray:
    """Targets of a graph list (or a graph store, without reading its graphs) as an array [N, T]."""
    if hasattr(graphs, "targets"):
        return np.asarray(graphs.targets(), dtype=np.float32)
    return torch.cat([g.y for g in graphs], dim=0).numpy()


def store_key(records: Sequence["StructureRecord"], graph_config: GraphConfig, targets: Sequence[str] | None) -> str:
    """Hash of every record's id, structure key and targets: the name of their graph store."""
    h = hashlib.sha1()
    for record in records:
        h.update(str(record.id).encode())
        try:
            h.update(structure_key(record.structure, graph_config).encode())
        except Exception:  # e.g. a disordered structure: build_graphs reports it; its text still names it
            h.update(str(record.structure).encode())
        for name in targets or ():
            h.update(repr(record.targets.get(name)).encode())
    return h.hexdigest()
