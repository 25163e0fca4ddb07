"""Training behaviour: loss goes down, overfitting a small real set, save/load, resume, k-fold runs."""

from __future__ import annotations


import numpy as np
import pytest

from crystograph.config import ModelConfig, TrainConfig
from crystograph.data import build_graphs, kfold_indices, stack_targets
from tests.conftest import shared_file
from tests.helpers_data import supercon_frame, synthetic_records


def _tiny_model_config(**kw):
    return ModelConfig.preset("small", hidden_dim=32, num_heads=2, head_dim=16, n_etgc=1, **kw)


@pytest.fixture(scope="module")
def real_graphs():
    from pymatgen.core import Structure

    from crystograph.structures import StructureRecord

    frame = supercon_frame(32, shared_file("supercon/supercon.csv.gz"))
    records = [StructureRecord(id=r.material_id, structure=Structure.from_str(r.cif, fmt="cif"),
                               targets={"tc_K": r.tc_K}, source=f"supercon[{r.material_id}]")
               for r in frame.itertuples()]
    graphs, skipped = build_graphs(records, targets=["tc_K"], progress=False)
    assert not skipped
    return graphs


@pytest.mark.shared_data
@pytest.mark.slow
def test_model_overfits_32_real_structures(real_graphs, tmp_path):
    from crystograph.nn import CrysToGraph
    from crystograph.train import fit, predict

    # Cosine decay makes the fit robust to seeds and float rounding (train MAE 0.08-0.10 x dummy over 4 seeds).
    cfg = TrainConfig(lr=3e-3, epochs=80, batch_size=8, patience=0, lr_schedule="cosine")
    model = CrysToGraph(_tiny_model_config())
    y = stack_targets(real_graphs)
    dummy = np.abs(y - y.mean()).mean()
    result = fit(model, real_graphs, [], cfg, tmp_path, progress=False)
    train_mae = np.abs(predict(result.module, real_graphs) - y).mean()
    assert train_mae < 0.35 * dummy, (train_mae, dummy)
    losses = __import__("pandas").read_csv(tmp_path / "metrics.csv")["train_loss"].dropna().to_numpy()
    assert losses[-5:].mean() < 0.5 * losses[:3].mean()
    assert (tmp_path / "learning_curve.png").exists()


@pytest.fixture(scope="module")
def synthetic_graphs():
    graphs, skipped = build_graphs(synthetic_records(12), targets=["a"], progress=False)
    assert not skipped
    return graphs


def test_save_load_identical_predictions(synthetic_graphs, tmp_path):
    from crystograph.nn import CrysToGraph
    from crystograph.train import predict
    from crystograph.train.export import load_model_dir, save_model

    cfg = _tiny_model_config()
    model = CrysToGraph(cfg).eval()
    save_model(tmp_path, model, cfg, task="regression", targets=["a"], y_mean=[0.0], y_std=[1.0])
    loaded, manifest = load_model_dir(tmp_path)
    assert manifest["targets"] == ["a"]
    np.testing.assert_array_equal(predict(model, synthetic_graphs), predict(loaded, synthetic_graphs))


def test_kfold_run_writes_everything_and_resumes(tmp_path):
    from crystograph.train.run import RunOptions, train_run

    graphs, _ = build_graphs(synthetic_records(20), targets=["a"], progress=False)
    mcfg = _tiny_model_config()
    tcfg = TrainConfig(lr=3e-3, epochs=3, batch_size=8, folds=2, ensemble=2, patience=0)
    result = train_run(graphs, tmp_path / "run", mcfg, tcfg, RunOptions(targets=["a"]), progress=False)
    assert len(result.fold_mae) == 2 and all(np.isfinite(result.fold_mae))
    run = tmp_path / "run"
    for name in ("config.yaml", "predictions.csv", "parity.png", "summary.json"):
        assert (run / name).exists(), name
    preds = __import__("pandas").read_csv(run / "predictions.csv")
    assert sorted(preds["id"]) == sorted(g.sample_id for g in graphs)  # every sample predicted exactly once
    assert (preds["a_std"] > 0).all()  # two members disagree somewhere
    # A rerun reuses every finished member (no refit): the member files are untouched.
    stamp = (run / "fold_0" / "member_0" / "model.safetensors").stat().st_mtime_ns
    again = train_run(graphs, run, mcfg, tcfg, RunOptions(targets=["a"]), progress=False)
    assert (run / "fold_0" / "member_0" / "model.safetensors").stat().st_mtime_ns == stamp
    assert again.fold_mae == pytest.approx(result.fold_mae)


def test_kfold_indices_partition():
    folds = kfold_indices(23, 5, seed=3)
    test = np.concatenate([te for _, te in folds])
    assert sorted(test) == list(range(23))
    assert all(len(np.intersect1d(tr, te)) == 0 for tr, te in folds)
    assert [te.tolist() for _, te in folds] == [te.tolist() for _, te in kfold_indices(23, 5, seed=3)]


def test_classification_task_trains(tmp_path):
    from crystograph.nn import CrysToGraph
    from crystograph.train import fit, predict

    records = synthetic_records(16)
    for r in records:
        r.targets["big"] = float(r.targets["a"] > 4.5)
    graphs, _ = build_graphs(records, targets=["big"], progress=False)
    cfg = TrainConfig(lr=3e-3, epochs=2, batch_size=8, patience=0, num_workers=1)  # batches from a worker
    result = fit(CrysToGraph(_tiny_model_config(task="classification")), graphs, graphs[:4], cfg, tmp_path,
                 task="classification", progress=False)
    p = predict(result.module, graphs)
    assert p.shape == (16, 1) and ((p >= 0) & (p <= 1)).all()


@pytest.mark.slow
def test_graph_cache_concurrent_writers_and_reuse(tmp_path):
    """Two processes filling one cache at once never fail a record (unique temporary files)."""
    import subprocess
    import sys

    from tests.helpers_data import write_csv

    data = write_csv(synthetic_records(30), tmp_path / "syn.csv")
    code = ("import sys; from crystograph.structures import read_structures; from crystograph.data import build_graphs;"
            "r = read_structures(sys.argv[1], target='a');"
            "g, s = build_graphs(r.records, targets=['a'], cache_dir=sys.argv[2], progress=False);"
            "print(len(g), len(s))")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(data), str(tmp_path / "cache")], stdout=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=300)[0].split() for p in procs]
    assert outputs == [["30", "0"], ["30", "0"]]
    assert not list((tmp_path / "cache").rglob("*.tmp"))
    assert len(list((tmp_path / "cache").rglob("*.pt"))) == 30
