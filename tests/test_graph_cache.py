"""The content-addressed graph cache: hits skip graph construction, any change to the structure or the graph
config misses, and a corrupt or foreign entry is rebuilt rather than trusted."""

from __future__ import annotations

import pytest
import torch

import crystograph.graphs
from crystograph.config import GraphConfig
from crystograph.data import GraphCache, build_graphs, structure_key
from tests.helpers_data import synthetic_records


@pytest.fixture
def records():
    return synthetic_records(3)


def _no_building(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("graph built although it was cached")

    monkeypatch.setattr(crystograph.graphs, "build_graph", refuse)


def test_second_build_comes_from_the_cache(records, tmp_path, monkeypatch):
    first, _ = build_graphs(records, targets=["a"], cache_dir=tmp_path, progress=False)
    assert len(list(tmp_path.rglob("*.pt"))) == 3
    _no_building(monkeypatch)
    again, skipped = build_graphs(records, targets=["a"], cache_dir=tmp_path, progress=False)
    assert not skipped and [g.sample_id for g in again] == [r.id for r in records]
    for a, b in zip(first, again):
        torch.testing.assert_close(a.edge_index, b.edge_index)
        torch.testing.assert_close(a.edge_vec, b.edge_vec)
        torch.testing.assert_close(a.y, b.y)


def test_key_changes_with_structure_and_config(records):
    s = records[0].structure
    key = structure_key(s, GraphConfig())
    assert structure_key(s.copy(), GraphConfig()) == key
    assert structure_key(s, GraphConfig(k=8)) != key
    moved = s.copy()
    moved.translate_sites([0], [0.01, 0, 0])
    assert structure_key(moved, GraphConfig()) != key
    other = s.copy()
    other.replace_species({other[0].specie: "Cs"})
    assert structure_key(other, GraphConfig()) != key


def test_corrupt_entry_is_rebuilt_and_rewritten(records, tmp_path):
    build_graphs(records[:1], targets=["a"], cache_dir=tmp_path, progress=False)
    (entry,) = tmp_path.rglob("*.pt")
    entry.write_bytes(b"not a torch file")
    cache = GraphCache(tmp_path)
    assert cache.load(entry.stem) is None
    graphs, skipped = build_graphs(records[:1], targets=["a"], cache_dir=tmp_path, progress=False)
    assert len(graphs) == 1 and not skipped
    assert cache.load(entry.stem) is not None  # the rebuilt graph replaced the corrupt entry


def test_unwritable_cache_never_fails_a_build(records, tmp_path):
    blocker = tmp_path / "cache"
    blocker.write_text("a file where the cache folder should be")
    with pytest.warns(UserWarning, match="could not write"):
        graphs, skipped = build_graphs(records[:1], targets=["a"], cache_dir=blocker, progress=False)
    assert len(graphs) == 1 and not skipped


def test_a_disordered_structure_is_named_as_such_with_a_cache(tmp_path):
    from pymatgen.core import Lattice, Structure

    from crystograph.structures import StructureRecord

    mixed = Structure(Lattice.cubic(4.0), [{"Na": 0.5, "K": 0.5}, "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    record = StructureRecord(id="m", structure=mixed, targets={"a": 1.0}, source="mixed.cif")
    graphs, skipped = build_graphs([record], targets=["a"], cache_dir=tmp_path, progress=False)
    assert not graphs and skipped[0].source == "mixed.cif" and "site 0 is disordered" in skipped[0].reason
