"""Runner: end-to-end on tiny data (dummy, CGCNN), results schema, resumability."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import bench_script, shared_file
from crystograph.bench import runner
from crystograph.errors import InputError

SCHEMA = {"task", "model", "metric", "folds", "mean", "std", "budget_minutes_per_fold", "command", "seed",
          "data_source", "stand_in", "hardware", "wall_s", "versions", "notes"}
FOLD_KEYS = {"fold", "score", "n_test", "n_train", "wall_s", "epochs"}


@pytest.fixture
def tiny_data(tmp_path, monkeypatch):
    """A 30-row stand-in for supercon/supercon.csv.gz built from simple cubic crystals."""
    from pymatgen.core import Lattice, Structure

    rng = np.random.default_rng(0)
    rows = []
    for i in range(30):
        a = 3.5 + 0.05 * i
        s = Structure(Lattice.cubic(a), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
        rows.append({"material_id": f"JVASP-{i:03d}", "split": "train", "tc_K": float(rng.uniform(0, 10)),
                     "cif": s.to(fmt="cif"), "natoms": 2})
    (tmp_path / "data" / "supercon").mkdir(parents=True)
    pd.DataFrame(rows).to_csv(tmp_path / "data" / "supercon" / "supercon.csv.gz", index=False)
    monkeypatch.setenv("CRYSTOGRAPH_CACHE", str(tmp_path / "cache"))
    return tmp_path


def _run(root, **kw):
    kw.setdefault("progress", False)
    return runner.run_bench(["local_supercon"], data_dir=root / "data", out_dir=root / "results",
                            run_dir=root / "runs", graph_cache_dir=root / "graphs", command="pytest", **kw)[0]


def test_dummy_end_to_end_writes_schema(tiny_data):
    res = _run(tiny_data, model="dummy")
    path = tiny_data / "results" / "local_supercon__dummy.json"
    on_disk = json.loads(path.read_text())
    assert SCHEMA <= set(on_disk) and len(on_disk["folds"]) == 5
    assert all(FOLD_KEYS <= set(f) for f in on_disk["folds"])
    assert on_disk["stand_in"]["stands_in_for"] == "UnconvBench supercon" and on_disk["stand_in"]["is_stand_in"]
    assert on_disk["skipped"]["count"] == 0 and on_disk["n_samples"] == 30
    assert on_disk["hardware"]["cpu_cores"] >= 1 and on_disk["versions"]["torch"]
    assert on_disk["data_source"]["sha256"] and on_disk["command"] == "pytest"
    # the score is the MAE of the saved predictions, and the predictions are the training means
    preds = pd.concat(pd.read_csv(tiny_data / "runs" / "local_supercon" / "dummy" / f"fold_{k}" / "predictions.csv")
                      for k in range(5))
    assert len(preds) == 30 and set(preds["fold"]) == set(range(5))
    fold0 = preds[preds["fold"] == 0]
    assert on_disk["folds"][0]["score"] == pytest.approx(np.mean(np.abs(fold0["target"] - fold0["prediction"])))
    assert res["mean"] == pytest.approx(np.mean([f["score"] for f in on_disk["folds"]]))
    assert on_disk["dummy_same_folds"] == pytest.approx(res["mean"])
    assert (tiny_data / "results" / "plots" / "local_supercon__dummy.png").stat().st_size > 1000


def test_resumable_folds_are_not_recomputed(tiny_data, monkeypatch):
    import crystograph.train

    calls = []

    def fake_fit_predict(factory, train, test, cfg, out_dir, task, progress=True):
        calls.append(out_dir)
        assert cfg.optimizer == "sgd" and cfg.max_minutes == 0.5
        assert factory().__class__.__name__ == "CGCNN"
        return np.full((len(test), 1), np.mean([g.y.item() for g in train]))

    monkeypatch.setattr(crystograph.train, "fit_predict", fake_fit_predict)
    first = _run(tiny_data, model="cgcnn", folds=2, max_minutes=0.5)
    assert len(calls) == 2 and [f["fold"] for f in first["folds"]] == [0, 1]
    assert any("partial" in n for n in first["notes"])
    second = _run(tiny_data, model="cgcnn", folds=2, max_minutes=0.5)
    assert len(calls) == 2, "a finished fold was recomputed"
    assert second["fused_kernels"] is None  # not a crystograph model
    assert [f["score"] for f in second["folds"]] == [f["score"] for f in first["folds"]]
    # a loaded fold keeps the commit of the code that trained it, whatever commit loads it
    assert second["fold_commits"] == first["fold_commits"] == {"0": first["folds"][0]["commit"],
                                                               "1": first["folds"][1]["commit"]}
    (tiny_data / "runs" / "local_supercon" / "cgcnn" / "fold_1" / "fold.json").unlink()
    third = _run(tiny_data, model="cgcnn", folds=None, max_minutes=0.5)
    # folds 2-4 trained; fold 0 reused; fold 1 re-scored from its finished member's saved predictions
    assert len(calls) == 2 + 3 and len(third["folds"]) == 5
    assert third["folds"][1]["score"] == first["folds"][1]["score"]
    # other data (a limit) or another budget under the same run dir would silently mix results: refused
    with pytest.raises(InputError, match="other settings"):
        _run(tiny_data, model="cgcnn", folds=1, max_minutes=0.5, limit=20)
    with pytest.raises(InputError, match="other settings"):
        _run(tiny_data, model="cgcnn", folds=1, max_minutes=1.0)
    assert len(calls) == 5


def test_cgcnn_trains_one_fold_for_real(tiny_data):
    res = _run(tiny_data, model="cgcnn", folds=[2], max_minutes=0.2, epochs=2)
    (fold,) = res["folds"]
    assert fold["fold"] == 2 and fold["n_test"] == 6 and fold["n_train"] == 24 and fold["epochs"] >= 1
    assert np.isfinite(res["mean"]) and res["budget_minutes_per_fold"] == 0.2
    assert res["train_config"]["optimizer"] == "sgd"


def test_bad_arguments(tiny_data):
    with pytest.raises(InputError, match="unknown model"):
        _run(tiny_data, model="alignn")
    with pytest.raises(InputError, match="fold"):
        _run(tiny_data, model="dummy", folds=[7])
    assert runner.model_label("crystograph", "paper", "no_gwt") == "crystograph-paper-no_gwt"
    assert runner.model_label("crystograph") == "crystograph-small"


@pytest.mark.shared_data
def test_dummy_on_first_40_rows_of_supercon(tmp_path, monkeypatch):
    path = shared_file("supercon/supercon.csv.gz")
    monkeypatch.setenv("CRYSTOGRAPH_CACHE", str(tmp_path / "cache"))
    res = runner.run_bench("local_supercon", model="dummy", data_dir=path.parent.parent, out_dir=tmp_path / "r",
                           run_dir=tmp_path / "runs", limit=40, progress=False)[0]
    assert res["n_samples"] == 40 and sum(f["n_test"] for f in res["folds"]) == 40
    assert any("limit" in n for n in res["notes"])
    assert any("cdvae@840cd70" in line for line in res["data_source"]["provenance"])


@pytest.mark.slow
@pytest.mark.shared_data
def test_local_matbench_folds_checked_against_official(tmp_path, monkeypatch):
    path = shared_file("matbench/matbench_v0.1_validation.json.gz")
    monkeypatch.setenv("CRYSTOGRAPH_CACHE", str(tmp_path / "cache"))
    res = runner.run_bench("local_matbench_jdft2d", model="dummy", data_dir=path.parent.parent,
                           out_dir=tmp_path / "r", run_dir=tmp_path / "runs", progress=False)[0]
    assert res["folds_verified_against_official"] is True
    assert [f["n_test"] for f in res["folds"]] == [128, 127, 127, 127, 127]
    # MatBench's dummy (mean predictor) on jdft2d: 67.2851 meV/atom in the paper's Table 3
    assert res["mean"] == pytest.approx(67.2851, abs=0.5)


def test_cli_bench_lists_and_exports_the_folds_the_runner_uses(tiny_data):
    from typer.testing import CliRunner

    from crystograph.cli import app

    cli = CliRunner()
    listed = cli.invoke(app, ["bench", "--list"])
    assert listed.exit_code == 0 and "local_supercon" in listed.output and "groups:" in listed.output
    exported = cli.invoke(app, ["bench", "local_supercon", "--data-dir", str(tiny_data / "data"), "--no-progress",
                                "--export-folds", str(tiny_data / "folds")])
    assert exported.exit_code == 0, exported.output
    folds = pd.read_csv(tiny_data / "folds" / "local_supercon_folds.csv")
    res = _run(tiny_data, model="dummy")
    assert folds.groupby("fold").size().to_dict() == {f["fold"]: f["n_test"] for f in res["folds"]}
    preds = pd.read_csv(tiny_data / "runs" / "local_supercon" / "dummy" / "fold_0" / "predictions.csv")
    assert set(preds["id"]) == set(folds.loc[folds["fold"] == 0, "id"])
    unknown = cli.invoke(app, ["bench", "nope", "--out", str(tiny_data / "r")])
    assert unknown.exit_code == 2 and "nope" in unknown.output and "Traceback" not in unknown.output
    no_out = cli.invoke(app, ["bench", "local_supercon", "--data-dir", str(tiny_data / "data")])
    assert no_out.exit_code == 2 and "--out" in no_out.output


def test_cli_bench_runs_a_fold_list_without_download(tiny_data):
    from typer.testing import CliRunner

    from crystograph.cli import app

    result = CliRunner().invoke(app, ["bench", "local_supercon", "--model", "dummy", "--folds", "0,3", "--no-download",
                                      "--data-dir", str(tiny_data / "data"), "--out", str(tiny_data / "results"),
                                      "--no-progress"])
    assert result.exit_code == 0, result.output
    on_disk = json.loads((tiny_data / "results" / "local_supercon__dummy.json").read_text())
    assert [f["fold"] for f in on_disk["folds"]] == [0, 3]
    assert (tiny_data / "results" / "runs" / "local_supercon" / "dummy" / "fold_3" / "fold.json").exists()


def test_parse_folds():
    assert runner.parse_folds(None) is None
    assert runner.parse_folds("2") == 2 and runner.parse_folds("0,3") == [0, 3] and runner.parse_folds("3,") == [3]
    with pytest.raises(InputError, match="--folds"):
        runner.parse_folds("two")


def test_script_adds_the_repository_folders_only_where_not_given(tiny_data, capsys):
    script = bench_script("run_bench")
    args = script.repository_args(["local_supercon", "--out", "elsewhere"])
    assert args[:4] == ["bench", "local_supercon", "--out", "elsewhere"]
    assert args.count("--out") == 1 and args[args.index("--run-dir") + 1] == str(script.RUNS)
    assert "--data-dir" in args
    assert script.main(["--list"]) == 0 and "local_supercon" in capsys.readouterr().out
    assert script.main(["nope", "--no-progress"]) == 2


def test_make_table_leaves_the_repository_readme_alone_for_other_results(tiny_data):
    _run(tiny_data, model="dummy")
    table = bench_script("make_table")
    readme = tiny_data / "README.md"
    repo_readme = Path(__file__).resolve().parents[1] / "README.md"
    before = repo_readme.read_bytes()
    assert table.main(["--results", str(tiny_data / "results"), "--readme", str(readme)]) == 0
    assert repo_readme.read_bytes() == before  # other results never rewrite the repository's glance table
    text = readme.read_text()
    assert "local_supercon" in text and "bench-tasks:start" in text and "| supercon | paper" in text


# ------------------------------------------------------------------------------------ protocols
def _fake_fit(calls):
    """A stand-in for `fit_predict`: records the model and config it was given; predicts the member's seed."""

    def fake_fit_predict(factory, train, test, cfg, out_dir, task, progress=True):
        calls.append({"cfg": cfg, "model": factory(), "out_dir": out_dir})
        return np.full((len(test), 1), float(cfg.seed))

    return fake_fit_predict


def test_protocol_is_recorded_and_converged_has_no_clock(tiny_data, monkeypatch):
    import crystograph.train
    from crystograph.config import TrainConfig

    calls = []
    monkeypatch.setattr(crystograph.train, "fit_predict", _fake_fit(calls))
    budget = _run(tiny_data, model="cgcnn", folds=1, max_minutes=0.5)
    assert budget["protocol"] == "budget" and calls[-1]["cfg"].max_minutes == 0.5
    assert json.loads((tiny_data / "results" / "local_supercon__cgcnn.json").read_text())["protocol"] == "budget"

    conv = _run(tiny_data, model="cgcnn", folds=1, protocol="converged")
    cfg = calls[-1]["cfg"]
    assert cfg.max_minutes is None and cfg.epochs == 300 and cfg.patience == TrainConfig().patience
    on_disk = json.loads((tiny_data / "results" / "converged" / "local_supercon__cgcnn.json").read_text())
    assert on_disk["protocol"] == "converged" and on_disk["budget_minutes_per_fold"] is None
    assert on_disk["epoch_cap"] == 300 and on_disk["ensemble"] == 1 and "commit" in on_disk
    assert conv["folds"][0]["members"][0]["stopped_by"] is None  # the fake wrote no fit.json
    assert (tiny_data / "runs" / "converged" / "local_supercon" / "cgcnn" / "fold_0" / "fold.json").exists()
    # an epoch cap of one's own; the budget JSON beside it is untouched
    _run(tiny_data, model="dummy", folds=1, protocol="converged")
    assert json.loads((tiny_data / "results" / "converged" / "local_supercon__dummy.json").read_text())[
        "protocol"] == "converged"
    with pytest.raises(InputError, match="no wall-clock cap"):
        _run(tiny_data, model="cgcnn", folds=1, protocol="converged", max_minutes=2)
    with pytest.raises(InputError, match="protocol"):
        _run(tiny_data, model="cgcnn", folds=1, protocol="forever")


def test_ensemble_members_are_averaged_and_resumed(tiny_data, monkeypatch):
    import crystograph.train

    calls = []
    monkeypatch.setattr(crystograph.train, "fit_predict", _fake_fit(calls))
    res = _run(tiny_data, model="cgcnn", folds=[1], protocol="converged", ensemble=3, seed=10)
    assert sorted(c["cfg"].seed for c in calls) == [10, 11, 12]
    assert len({str(c["out_dir"]) for c in calls}) == 3  # one training folder per member
    fold_dir = tiny_data / "runs" / "converged" / "local_supercon" / "cgcnn" / "fold_1"
    preds = pd.read_csv(fold_dir / "predictions.csv")
    assert np.allclose(preds["prediction"], 11.0)  # mean of the members' predictions (10, 11, 12)
    (fold,) = res["folds"]
    assert [m["seed"] for m in fold["members"]] == [10, 11, 12] and res["ensemble"] == 3
    assert fold["score"] == pytest.approx(np.mean(np.abs(preds["target"] - 11.0)))
    # the members' weights start from their own seeds
    w = [next(c["model"].parameters()).detach() for c in calls]
    assert not torch_equal(w[0], w[1])
    # finished members are never retrained, even when the fold record is gone
    (fold_dir / "fold.json").unlink()
    again = _run(tiny_data, model="cgcnn", folds=[1], protocol="converged", ensemble=3, seed=10)
    assert len(calls) == 3 and again["folds"][0]["score"] == fold["score"]
    # another ensemble size into the same folder: refused
    with pytest.raises(InputError, match="other settings"):
        _run(tiny_data, model="cgcnn", folds=[1], protocol="converged", ensemble=2, seed=10)
    assert len(calls) == 3


def torch_equal(a, b) -> bool:
    import torch

    return bool(torch.equal(a, b))


def test_atom_embeddings_reach_the_model(tiny_data, monkeypatch):
    import torch
    from safetensors.torch import save_file

    import crystograph.train

    table = torch.arange(100 * 4, dtype=torch.float32).reshape(100, 4) / 100.0
    emb = tiny_data / "emb.safetensors"
    save_file({"atom_embedding": table}, str(emb))
    calls = []
    monkeypatch.setattr(crystograph.train, "fit_predict", _fake_fit(calls))
    res = _run(tiny_data, model="crystograph", folds=[0], limit=10, ensemble=2, atom_embeddings=emb,
               weight_decay=0.01, precision="bf16", max_minutes=0.1)
    assert len(calls) == 2
    for call in calls:
        assert torch.equal(call["model"].atom_embedding, table)
        assert call["model"].config.precision == "bf16" and call["cfg"].weight_decay == 0.01
    assert res["atom_embeddings"] == str(emb) and res["model_details"]["atom_embeddings"]["sha256"]
    assert res["protocol"] == "budget" and res["preset"] == "small" and res["ensemble"] == 2
    from crystograph.nn import fused

    assert res["fused_kernels"] is fused.is_enabled()  # recorded: eager unless CRYSTOGRAPH_COMPILE=1
    # other embeddings into the same folder: refused
    save_file({"atom_embedding": table + 1}, str(emb))
    with pytest.raises(InputError, match="other settings"):
        _run(tiny_data, model="crystograph", folds=[0], limit=10, ensemble=2, atom_embeddings=emb,
             weight_decay=0.01, precision="bf16", max_minutes=0.1)
    with pytest.raises(InputError, match="crystograph only"):
        _run(tiny_data, model="cgcnn", folds=[0], atom_embeddings=emb)


def test_cgcnn_is_configured_with_its_reference_recipe(tiny_data, monkeypatch):
    import torch

    import crystograph.train
    from crystograph.train.module import PropertyModule

    calls = []
    monkeypatch.setattr(crystograph.train, "fit_predict", _fake_fit(calls))
    res = _run(tiny_data, model="cgcnn", folds=[0], max_minutes=0.5)
    cfg = calls[0]["cfg"]
    assert (cfg.loss, cfg.optimizer, cfg.lr, cfg.weight_decay, cfg.lr_schedule, cfg.lr_milestones, cfg.batch_size) == \
        ("mse", "sgd", 0.01, 0.0, "multistep", [100], 256)
    assert res["train_config"]["loss"] == "mse" and "MultiStepLR" in res["model_details"]["recipe"]
    opt_cfg = PropertyModule(calls[0]["model"], cfg).configure_optimizers()
    opt, sched = opt_cfg["optimizer"], opt_cfg["lr_scheduler"]
    assert isinstance(opt, torch.optim.SGD) and opt.defaults["momentum"] == 0.9
    assert isinstance(sched["scheduler"], torch.optim.lr_scheduler.MultiStepLR) and sched["interval"] == "epoch"
    assert dict(sched["scheduler"].milestones) == {100: 1} and sched["scheduler"].gamma == 0.1


def test_the_loss_is_an_option_recorded_in_the_results(tiny_data, monkeypatch):
    import crystograph.train

    calls = []
    monkeypatch.setattr(crystograph.train, "fit_predict", _fake_fit(calls))
    res = _run(tiny_data, model="crystograph", folds=[0], limit=10, loss="mse", max_minutes=0.1)
    assert calls[0]["cfg"].loss == "mse"
    assert res["train_config"]["loss"] == "mse" and res["model_details"]["loss"] == "mse"
    with pytest.raises(InputError, match="other settings"):  # the same folder with the default loss: refused
        _run(tiny_data, model="crystograph", folds=[0], limit=10, max_minutes=0.1)
    for model, loss in (("crystograph", "huber"), ("dummy", "mse")):
        with pytest.raises(InputError, match="--loss"):
            _run(tiny_data, model=model, folds=[0], limit=10, loss=loss)


def test_converged_cgcnn_ensemble_trains_for_real(tiny_data):
    res = _run(tiny_data, model="cgcnn", folds=[2], protocol="converged", epochs=2, ensemble=2)
    (fold,) = res["folds"]
    assert [m["epochs"] for m in fold["members"]] == [2, 2]
    assert {m["stopped_by"] for m in fold["members"]} == {"epoch_cap"}
    assert np.isfinite(res["mean"]) and res["train_config"]["max_minutes"] is None
    assert res["train_config"]["epochs"] == 2 and res["protocol"] == "converged"


def test_cli_bench_takes_the_protocol_options(tiny_data):
    from typer.testing import CliRunner

    from crystograph.cli import app

    result = CliRunner().invoke(app, ["bench", "local_supercon", "--model", "dummy", "--folds", "1",
                                      "--protocol", "converged", "--no-download", "--data-dir",
                                      str(tiny_data / "data"), "--out", str(tiny_data / "results"), "--no-progress"])
    assert result.exit_code == 0, result.output
    on_disk = json.loads((tiny_data / "results" / "converged" / "local_supercon__dummy.json").read_text())
    assert on_disk["protocol"] == "converged" and on_disk["model"] == "dummy"
    bad = CliRunner().invoke(app, ["bench", "local_supercon", "--model", "cgcnn", "--protocol", "converged",
                                   "--max-minutes", "2", "--data-dir", str(tiny_data / "data"), "--out",
                                   str(tiny_data / "results"), "--no-progress"])
    assert bad.exit_code == 2 and "--max-minutes" in bad.output


def test_default_budget_fingerprint_is_unchanged(tiny_data, monkeypatch):
    """Budget runs started before the protocol options existed resume: their defaults add nothing."""
    import crystograph.train

    monkeypatch.setattr(crystograph.train, "fit_predict", _fake_fit([]))
    _run(tiny_data, model="crystograph", folds=[0], limit=10, max_minutes=2)
    stamp = json.loads((tiny_data / "runs" / "local_supercon" / "crystograph-small" / "settings.json").read_text())
    assert stamp == {"task": "local_supercon", "model": "crystograph-small", "max_minutes": 2.0, "seed": 0,
                     "limit": 10, "epochs": 300, "preset": "small", "layout": "stacked"}


def test_max_steps_is_a_step_budget(tiny_data):
    """CGCNN's batch of 256 holds the whole tiny training set: one step per epoch, so 2 steps end at 2 epochs of
    the 5 allowed; the step cap is in the results and the fingerprint."""
    res = _run(tiny_data, model="cgcnn", folds=[0], max_minutes=2, epochs=5, max_steps=2)
    assert res["folds"][0]["epochs"] == 2
    assert res["train_config"]["max_steps"] == 2 and res["model_details"]["max_steps"] == 2
    with pytest.raises(InputError, match="--max-steps"):
        _run(tiny_data, model="dummy", folds=1, max_steps=3)


def test_model_overrides_are_checked_before_any_work(tiny_data):
    with pytest.raises(InputError, match="--model crystograph only"):
        _run(tiny_data, model="cgcnn", folds=1, model_overrides={"n_gwt": 2})
    with pytest.raises(InputError, match="two layouts"):
        _run(tiny_data, folds=1, layout="no_gwt", model_overrides={"layout": "parallel"})
    with pytest.raises(InputError, match="unknown model/graph settings"):
        _run(tiny_data, folds=1, model_overrides={"n_layers_typo": 2})
    assert not (tiny_data / "runs").exists()
