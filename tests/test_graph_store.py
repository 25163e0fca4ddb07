"""The on-disk graph store: exact round trip, lazy subsets, reuse of a finished store, and training on a store
giving the same model as training on the in-memory list."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from crystograph.config import ModelConfig, TrainConfig
from crystograph.data import build_graphs, stack_targets
from crystograph.data.store import GraphStore, sample_ids, take, write_store
from crystograph.train.run import training_domain
from tests.helpers_data import synthetic_records

FIELDS = ("x", "z", "pos", "pe", "edge_index", "edge_vec", "lg_edge_index", "y")


@pytest.fixture(scope="module")
def graphs():
    graphs, _ = build_graphs(synthetic_records(10), targets=["a"], progress=False)
    return graphs


def test_round_trip_is_exact(graphs, tmp_path):
    store = write_store(graphs, tmp_path / "s")
    again = GraphStore(tmp_path / "s")  # reopened from disk
    assert len(again) == len(graphs) and again.ids == [g.sample_id for g in graphs]
    for g, h in zip(graphs, again):
        assert h.num_nodes == g.num_nodes and h.sample_id == g.sample_id
        for name in FIELDS:
            assert h[name].dtype == g[name].dtype, name
            torch.testing.assert_close(h[name], g[name], rtol=0, atol=0, msg=name)
    np.testing.assert_array_equal(stack_targets(store), stack_targets(graphs))


def test_subsets_read_nothing_until_indexed_and_keep_order(graphs, tmp_path):
    store = write_store(graphs, tmp_path / "s")
    view = take(store, [7, 2, 5])
    assert [g.sample_id for g in view] == [graphs[i].sample_id for i in (7, 2, 5)]
    inner = take(view, [2, 0])
    assert sample_ids(inner) == [graphs[5].sample_id, graphs[7].sample_id]
    np.testing.assert_array_equal(stack_targets(inner), stack_targets([graphs[5], graphs[7]]))
    assert training_domain(inner) == training_domain([graphs[5], graphs[7]])
    assert training_domain(store) == training_domain(graphs)
    assert store[-1].sample_id == graphs[-1].sample_id
    with pytest.raises(IndexError):
        store[len(graphs)]


def test_build_graphs_reuses_a_finished_store_and_reports_its_skips(tmp_path):
    from pymatgen.core import Lattice, Structure

    from crystograph.structures import StructureRecord

    records = synthetic_records(6)
    bad = Structure(Lattice.cubic(3.0), [{"Na": 0.5, "K": 0.5}], [[0, 0, 0]])  # disordered: no graph
    records.append(StructureRecord(id="bad", structure=bad, targets={"a": 1.0}, source="bad.cif"))
    store, skipped = build_graphs(records, targets=["a"], progress=False, store_dir=tmp_path)
    assert isinstance(store, GraphStore) and len(store) == 6 and [s.source for s in skipped] == ["bad.cif"]
    stamp = (store.root / "x.bin").stat().st_mtime_ns
    again, skipped_again = build_graphs(records, targets=["a"], progress=False, store_dir=tmp_path)
    assert again.root == store.root and (again.root / "x.bin").stat().st_mtime_ns == stamp
    assert skipped_again == skipped
    other, _ = build_graphs(records[:3], targets=["a"], progress=False, store_dir=tmp_path)
    assert other.root != store.root and len(other) == 3  # other records, another store
    (store.root / "skipped.json").unlink()  # an unfinished write is rebuilt, never read
    rebuilt, _ = build_graphs(records, targets=["a"], progress=False, store_dir=tmp_path)
    assert (rebuilt.root / "skipped.json").exists() and len(rebuilt) == 6


def test_a_store_of_another_version_is_refused_by_name_and_rebuilt_by_build_graphs(tmp_path):
    import json

    from crystograph.errors import InputError

    records = synthetic_records(4)
    store, _ = build_graphs(records, targets=["a"], progress=False, store_dir=tmp_path)
    meta = json.loads((store.root / "meta.json").read_text())
    (store.root / "meta.json").write_text(json.dumps({**meta, "version": meta["version"] + 1}))
    with pytest.raises(InputError, match="version .* delete the folder"):
        GraphStore(store.root)
    rebuilt, _ = build_graphs(records, targets=["a"], progress=False, store_dir=tmp_path)
    assert len(rebuilt) == 4 and json.loads((rebuilt.root / "meta.json").read_text())["version"] == meta["version"]
    with pytest.raises(InputError, match="no meta.json"):
        GraphStore(tmp_path / "nothing")
    (rebuilt.root / "meta.json").write_text("{truncated")
    with pytest.raises(InputError, match="not valid JSON"):
        GraphStore(rebuilt.root)


def test_training_on_a_store_gives_the_same_model(graphs, tmp_path):
    from crystograph.train.run import RunOptions, train_run

    mcfg = ModelConfig.preset("small", hidden_dim=16, num_heads=2, head_dim=8, n_etgc=1, n_gwt=1)
    tcfg = TrainConfig(lr=3e-3, epochs=2, batch_size=4, patience=0, seed=3)
    store = write_store(graphs, tmp_path / "s")
    from_list = train_run(graphs, tmp_path / "list", mcfg, tcfg, RunOptions(targets=["a"]), progress=False)
    from_store = train_run(store, tmp_path / "store", mcfg, tcfg, RunOptions(targets=["a"]), progress=False)
    assert from_store.fold_mae == pytest.approx(from_list.fold_mae, rel=1e-5)
    a = (tmp_path / "list" / "predictions.csv").read_text()
    b = (tmp_path / "store" / "predictions.csv").read_text()
    assert a.splitlines()[0] == b.splitlines()[0] and len(a.splitlines()) == len(b.splitlines())
