"""The command line end to end: train → predict on a tiny real set, config files, error messages."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from crystograph.cli import app
from tests.conftest import shared_file
from tests.helpers_data import supercon_frame, synthetic_records, write_csv

runner = CliRunner()


def _tiny_real_csv(tmp_path, n=24):
    frame = supercon_frame(n, shared_file("supercon/supercon.csv.gz"))
    path = tmp_path / "tiny.csv"
    frame[["material_id", "cif", "tc_K"]].to_csv(path, index=False)
    return path


@pytest.mark.shared_data
@pytest.mark.slow
def test_train_then_predict_end_to_end(tmp_path):
    data = _tiny_real_csv(tmp_path)
    run = tmp_path / "run"
    cfg = tmp_path / "run.yaml"
    cfg.write_text("epochs: 2\nbatch_size: 8\nlr: 0.003\n")
    result = runner.invoke(app, ["train", str(data), "--target", "tc_K", "--out", str(run), "--config", str(cfg),
                                 "--epochs", "3", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "mean-predictor MAE" in result.output
    saved = (run / "config.yaml").read_text()
    assert "epochs: 3" in saved  # the flag overrides the config file
    assert "batch_size: 8" in saved  # the config file sets what no flag gave
    preds = tmp_path / "preds.csv"
    result = runner.invoke(app, ["predict", str(run), str(data), "--out", str(preds)])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(preds)
    assert len(table) == 24 and {"tc_K", "tc_K_std"} <= set(table.columns)


def test_python_api_matches_cli_predictions(trained_run, tmp_path):
    import crystograph

    records = trained_run.records
    model = crystograph.load_model(trained_run.run)
    one = model.predict_structure(records[0].structure)
    many = model.predict_structures([r.structure for r in records[:3]], batch_size=2)
    assert one["a"] == pytest.approx(float(many["a"].iloc[0]), rel=1e-5)
    preds = tmp_path / "preds.csv"
    result = runner.invoke(app, ["predict", str(trained_run.run), str(trained_run.data), "--out", str(preds)])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(preds)
    assert len(table) == 12 and {"a", "a_std"} <= set(table.columns)
    assert float(table["a"].iloc[0]) == pytest.approx(one["a"], rel=1e-5)


def test_graph_command_reports_and_strict(tmp_path):
    good = tmp_path / "good.cif"
    synthetic_records(1)[0].structure.to(filename=str(good))
    bad = tmp_path / "bad.cif"
    bad.write_text("data_broken\n_cell_length_a 3\nthis is not a cif\n")
    result = runner.invoke(app, ["graph", str(good), str(bad)])
    assert result.exit_code == 0, result.output
    assert "bad.cif" in result.output and "skipped 1 of 2" in result.output
    assert "Traceback" not in result.output
    result = runner.invoke(app, ["graph", str(good), str(bad), "--strict"])
    assert result.exit_code == 2 and "bad.cif" in result.output


def test_predict_refuses_a_directory_without_model(tmp_path):
    result = runner.invoke(app, ["predict", str(tmp_path), str(tmp_path), "--out", str(tmp_path / "p.csv")])
    assert result.exit_code == 2
    assert "no trained model found" in result.output and "Traceback" not in result.output


def test_config_file_can_supply_required_options(tmp_path):
    data = write_csv(synthetic_records(10), tmp_path / "syn.csv")
    cfg = tmp_path / "run.yaml"
    run = tmp_path / "from_yaml"
    cfg.write_text(f"target: [a]\nout_dir: {run}\nfolds: 2\nepochs: 2\nbatch_size: 4\nid_column: id\n")
    result = runner.invoke(app, ["train", str(data), "--config", str(cfg), "--epochs", "1", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "2-fold CV" in result.output and (run / "fold_1" / "member_0" / "model.json").exists()
    saved = (run / "config.yaml").read_text()
    assert "epochs: 1" in saved  # the flag overrides the config file
    assert "batch_size: 4" in saved  # the config file sets what no flag gave
    assert "lr: 0.001" in saved and "epochs: 300" not in saved  # the small preset's learning rate
    bad = tmp_path / "bad.yaml"
    bad.write_text("- just\n- a list\n")
    result = runner.invoke(app, ["train", str(data), "--config", str(bad)])
    assert result.exit_code == 2 and "mapping" in result.output


def test_pretrain_then_finetune_from_the_embeddings(tmp_path):
    """The pretrained table reaches the fine-tuned network (and its saved weights), not just the command line."""
    from safetensors.torch import load_file

    import crystograph

    records = synthetic_records(8)
    data = write_csv(records, tmp_path / "syn.csv")
    pre = tmp_path / "pre"
    result = runner.invoke(app, ["pretrain", str(data), "--out", str(pre), "--epochs", "1", "--embed-dim", "8",
                                 "--batch-size", "4", "--no-progress"])
    assert result.exit_code == 0, result.output
    emb = pre / "atom_embeddings.safetensors"
    assert emb.exists() and "masked-atom pretraining" in result.output
    run = tmp_path / "run"
    result = runner.invoke(app, ["train", str(data), "--target", "a", "--out", str(run), "--epochs", "1",
                                 "--batch-size", "4", "--atom-embeddings", str(emb), "--no-progress"])
    assert result.exit_code == 0, result.output
    table = load_file(str(emb))["atom_embedding"]
    (network, _manifest), = crystograph.load_model(run).members
    assert network.atom_embedding is not None
    torch.testing.assert_close(network.atom_embedding.cpu(), table)


def test_user_mistakes_are_one_line_errors(tmp_path):
    data = write_csv(synthetic_records(8), tmp_path / "syn.csv")
    base = ["train", str(data), "--target", "a", "--epochs", "1", "--no-progress"]
    cases = {
        "task": (["--task", "Regression", "--out", str(tmp_path / "r1")], "task"),
        "layout": (["--layout", "sideways", "--out", str(tmp_path / "r2")], "layout"),
        "device": (["--device", "cuda", "--out", str(tmp_path / "r3")], "--device"),
        "dropout": (["--dropout", "1.5", "--out", str(tmp_path / "r5")], "dropout"),
        "strategy": (["--strategy", "dpp", "--out", str(tmp_path / "r6")], "--strategy 'dpp'"),
        "num-nodes": (["--num-nodes", "0", "--out", str(tmp_path / "r7")], "--num-nodes 0"),
    }
    import torch

    if torch.cuda.is_available():
        cases.pop("device")
    for name, (extra, needle) in cases.items():
        result = runner.invoke(app, [*base, *extra])
        assert result.exit_code == 2 and needle in result.output and "Traceback" not in result.output, (name,
                                                                                                      result.output)
    cfg = tmp_path / "typo.yaml"
    cfg.write_text("learning_rate: 0.1\n")
    result = runner.invoke(app, [*base, "--out", str(tmp_path / "r4"), "--config", str(cfg)])
    assert result.exit_code == 2 and "learning_rate" in result.output


def test_rerun_into_a_run_with_other_settings_is_refused(trained_run, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained_run.run, run)
    args = [*trained_run.args[:trained_run.args.index("--out") + 1], str(run),
            *trained_run.args[trained_run.args.index("--out") + 2:]]
    weights = run / "fold_0" / "member_0" / "model.safetensors"
    stamp = weights.stat().st_mtime_ns
    again = runner.invoke(app, args)
    assert again.exit_code == 0, again.output  # same settings: finished members are reused, not retrained
    assert weights.stat().st_mtime_ns == stamp
    result = runner.invoke(app, [*args, "--layout", "no_gwt"])
    assert result.exit_code == 2 and "other settings" in result.output and "model.layout" in result.output


def test_example_train_config_names_only_train_options():
    import typer.main
    import yaml

    from crystograph.cli import app as cli_app

    command = typer.main.get_command(cli_app).commands["train"]
    known = {p.name for p in command.params}
    path = Path(__file__).resolve().parent.parent / "examples" / "train_supercon.yaml"
    keys = {k.replace("-", "_") for k in yaml.safe_load(path.read_text())}
    assert keys and keys <= known, sorted(keys - known)


@pytest.mark.slow  # two fresh interpreters importing torch
def test_python_dash_m_runs_the_same_cli(tmp_path):
    import subprocess
    import sys

    good = tmp_path / "good.cif"
    synthetic_records(1)[0].structure.to(filename=str(good))
    done = subprocess.run([sys.executable, "-m", "crystograph", "graph", str(good), str(tmp_path / "missing.cif")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "crystal graphs" in done.stdout  # the report table
    assert "skipped 1 of 2" in done.stderr and "missing.cif: no such file" in done.stderr
    assert "Usage: crystograph" in subprocess.run([sys.executable, "-m", "crystograph", "--help"],
                                                  capture_output=True, text=True, timeout=300).stdout


def test_option_errors_are_one_line_but_bugs_keep_their_traceback(tmp_path, monkeypatch):
    from crystograph.config import ModelConfig
    from crystograph.errors import ConfigError, CrystographError

    with pytest.raises(ConfigError) as caught:
        ModelConfig(dropout=1.5)
    assert isinstance(caught.value, CrystographError) and isinstance(caught.value, ValueError)
    good = tmp_path / "good.cif"
    synthetic_records(1)[0].structure.to(filename=str(good))

    def broken(*args, **kwargs):
        raise ValueError("an internal inconsistency")

    monkeypatch.setattr("crystograph.graphs.graph_summary", broken)
    result = runner.invoke(app, ["graph", str(good)])
    assert result.exit_code == 1 and isinstance(result.exception, ValueError)  # not passed off as a user error
    monkeypatch.setattr("crystograph.graphs.build_graph", broken)  # a failed build is one skipped file
    result = runner.invoke(app, ["graph", str(good)])
    assert result.exit_code == 1 and "no usable input" in result.output  # every input skipped
    result = runner.invoke(app, ["graph", str(good), "--strict"])
    assert result.exit_code == 2 and "good.cif: graph construction failed" in result.output
    assert "good.cif: graph construction failed: ValueError: an internal inconsistency" in result.output
