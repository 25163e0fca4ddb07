"""Issue 11: no wrong answer reported as success, no result lost — each class through the CLI (tiny data, 1 epoch)."""

from __future__ import annotations

import json
import os
import stat

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from badinputs import POSCAR_VASP4, good_structures, make_corpus
from crystograph.cli import app
from tests.helpers_data import synthetic_records, write_csv

runner = CliRunner()
FAST = ["--epochs", "1", "--batch-size", "4", "--no-progress"]


def _run(*args):
    result = runner.invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A finished one-model run on synthetic Na/Cl/K/Br/Mg/O/Li/F cells with 2-3 atoms."""
    d = tmp_path_factory.mktemp("issue11")
    data = write_csv(synthetic_records(12), d / "syn.csv")
    run = d / "run"
    result = _run("train", data, "--target", "a", "--out", run, *FAST)
    assert result.exit_code == 0, result.output
    return data, run


# --- 1. POSCAR without species -----------------------------------------------------------------------------
def test_poscar_without_species_is_refused_not_hydrogen(tmp_path):
    poscar = tmp_path / "POSCAR"
    poscar.write_text(POSCAR_VASP4)
    result = _run("graph", poscar, "--json")
    assert result.exit_code == 1 and "species line" in result.output and str(poscar) in result.output
    named = _run("graph", poscar, "--json", "--poscar-species", "Na Cl")
    assert named.exit_code == 0, named.output
    assert json.loads(named.stdout.splitlines()[0])["atoms"] == 2


# --- 2. same --out, changed data -----------------------------------------------------------------------------
def test_rerun_on_changed_data_is_refused(tmp_path):
    records = synthetic_records(12)
    data = write_csv(records, tmp_path / "syn.csv")
    run = tmp_path / "run"
    assert _run("train", data, "--target", "a", "--out", run, *FAST).exit_code == 0
    again = _run("train", data, "--target", "a", "--out", run, *FAST)  # same data: finished members reused
    assert again.exit_code == 0, again.output
    for r in records:
        r.targets["a"] += 1.0
    write_csv(records, data)
    changed = _run("train", data, "--target", "a", "--out", run, *FAST)
    assert changed.exit_code == 2 and "other data (targets differ)" in changed.output, changed.output
    assert "another --out" in changed.output


# --- 3. targets float32 cannot hold; divergence --------------------------------------------------------------
def test_target_checks():
    import numpy as np

    from crystograph.errors import CrystographError
    from crystograph.train.checks import check_targets

    ids = [f"id{i}" for i in range(5)]
    with pytest.raises(CrystographError, match="id2.*not a finite float32"):
        check_targets(np.array([[1.0], [2.0], [1e39], [3.0], [4.0]]), ids, ["y"], "regression")
    with pytest.raises(CrystographError, match="labels 0 or 1.*id1"):
        check_targets(np.array([[0.0], [2.0], [1.0], [0.0], [1.0]]), ids, ["y"], "classification")
    with pytest.warns(UserWarning, match="id4 = 1e\\+07"):
        check_targets(np.array([[1.0], [2.0], [1.0], [3.0], [1e7]]), ids, ["y"], "regression")


def test_non_finite_training_saves_no_model(tmp_path):
    import torch

    from crystograph.errors import CrystographError
    from crystograph.train.run import _check_finite

    member = tmp_path / "member_0"
    (member / "checkpoints").mkdir(parents=True)
    (member / "checkpoints" / "last.ckpt").write_bytes(b"x")
    (member / "metrics.csv").write_text("epoch,step,train_loss,val_mae\n0,2,nan,\n0,2,,1.0\n")
    with pytest.raises(CrystographError, match="diverged"):
        _check_finite(torch.nn.Linear(2, 2), None, member)
    assert not (member / "checkpoints").exists()  # a rerun must not resume the diverged state
    _check_finite(torch.nn.Linear(2, 2), None, tmp_path / "fine")  # no log, finite weights: fine


# --- 4. out-of-domain rows, unfinished runs, single-model std ------------------------------------------------
def test_predict_flags_out_of_domain_and_leaves_single_model_std_empty(tmp_path, trained):
    _, run = trained
    cif = tmp_path / "si.cif"
    good_structures()[1].to(filename=str(cif))  # Si: never seen in training
    preds = tmp_path / "p.csv"
    result = _run("predict", run, cif, "--out", preds)
    assert result.exit_code == 0, result.output
    table = pd.read_csv(preds, keep_default_na=False)
    assert "Si" in table.loc[0, "out_of_domain"] and table.loc[0, "a_std"] == ""
    assert "outside the training data" in result.output and "no uncertainty" in result.output


def test_unfinished_run_needs_allow_partial(tmp_path, trained):
    import shutil

    _, run = trained
    partial = tmp_path / "partial"
    shutil.copytree(run, partial)
    config = yaml.safe_load((partial / "config.yaml").read_text())
    config["train"]["ensemble"] = 2  # as if member_1 never finished
    (partial / "config.yaml").write_text(yaml.safe_dump(config))
    cif = tmp_path / "nacl.cif"
    good_structures()[0].to(filename=str(cif))
    refused = _run("predict", partial, cif, "--out", tmp_path / "p.csv")
    assert refused.exit_code == 2 and "unfinished run: 1 of 2" in refused.output
    assert not (tmp_path / "p.csv").exists()
    assert _run("predict", partial, cif, "--out", tmp_path / "p.csv", "--allow-partial").exit_code == 0


# --- 5./6. outputs checked first, written atomically, never emptied --------------------------------------------
def test_predict_never_replaces_results_with_nothing(tmp_path, trained):
    _, run = trained
    preds = tmp_path / "p.csv"
    preds.write_text("id,a\nold,1.0\n")
    bad = tmp_path / "bad.cif"
    bad.write_text("data_x\nnot a cif\n")
    result = _run("predict", run, bad, "--out", preds)
    assert result.exit_code == 1 and "nothing written" in result.output, result.output
    assert preds.read_text() == "id,a\nold,1.0\n"


@pytest.mark.parametrize("where", ["under_a_file", "a_folder"])
def test_predict_checks_output_path_before_predicting(tmp_path, trained, where):
    _, run = trained
    blocker = tmp_path / "blocker"
    blocker.write_text("x") if where == "under_a_file" else blocker.mkdir()
    target = blocker / "p.csv" if where == "under_a_file" else blocker
    result = _run("predict", run, tmp_path / "missing.cif", "--out", target)
    assert result.exit_code == 2 and str(target) in result.output and "skipped" not in result.output


@pytest.mark.parametrize("command", ["train", "pretrain"])
def test_out_naming_a_file_fails_before_any_work(tmp_path, command):
    data = write_csv(synthetic_records(6), tmp_path / "syn.csv")
    out = tmp_path / "taken"
    out.write_text("results")
    args = [command, data, "--out", out, "--no-progress"] + (["--target", "a"] if command == "train" else [])
    result = _run(*args)
    assert result.exit_code == 2 and "is a file" in result.output and "structures" not in result.output
    assert out.read_text() == "results"


# --- 7./8. options checked up front; a run that never started does not block --------------------------------
@pytest.mark.parametrize("args, message", [
    (["--batch-size", "0"], "--batch-size"), (["--epochs", "0"], "--epochs"), (["--ensemble", "0"], "--ensemble"),
    (["--folds", "0"], "--folds"), (["--target", "a"], "given more than once"), (["--lr", "-1"], "--lr"),
])
def test_bad_numeric_options_stop_before_work(tmp_path, args, message):
    data = write_csv(synthetic_records(6), tmp_path / "syn.csv")
    result = _run("train", data, "--target", "a", "--out", tmp_path / "run", "--no-progress", *args)
    assert result.exit_code == 2 and message in result.output, result.output
    assert not (tmp_path / "run" / "config.yaml").exists()


def test_failed_start_does_not_block_the_corrected_rerun(tmp_path):
    data = write_csv(synthetic_records(12), tmp_path / "syn.csv")
    run = tmp_path / "run"
    too_many = _run("train", data, "--target", "a", "--out", run, "--folds", "10", *FAST)
    assert too_many.exit_code == 2 and "too few for --folds 10" in too_many.output
    labels = _run("train", data, "--target", "a", "--out", run, "--task", "classification", *FAST)
    assert labels.exit_code == 2 and "labels 0 or 1" in labels.output
    assert not (run / "config.yaml").exists()
    run.mkdir(exist_ok=True)
    (run / "config.yaml").write_text("train:\n  epochs: 7\n")  # left by an older version's failed start
    fixed = _run("train", data, "--target", "a", "--out", run, *FAST)
    assert fixed.exit_code == 0, fixed.output


# --- 9. config keys as users see them; a run's config.yaml back as --config ---------------------------------
def test_config_uses_option_names_and_accepts_a_runs_config(tmp_path, trained):
    data, run = trained
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"out: {tmp_path / 'run2'}\nformat: csv\ntarget: a\nepochs: 1\nbatch-size: 4\n")
    result = _run("train", data, "--config", cfg, "--no-progress")
    assert result.exit_code == 0, result.output
    again = _run("train", "--config", run / "config.yaml", "--out", tmp_path / "run3", "--no-progress")
    assert again.exit_code == 0, again.output
    a = yaml.safe_load((run / "config.yaml").read_text())
    b = yaml.safe_load((tmp_path / "run3" / "config.yaml").read_text())
    assert a == b
    a["train"]["optimizer"] = "sgd"  # no option sets it
    cfg.write_text(yaml.safe_dump(a))
    refused = _run("train", "--out", tmp_path / "x", "--config", cfg)
    assert refused.exit_code == 2 and "optimizer = 'sgd' cannot be set" in _unboxed(refused.output)


def _unboxed(text: str) -> str:
    """Click's error box without its borders and line breaks."""
    import re

    return re.sub(r"[\s│╭╮╰╯─]+", " ", text)


# --- 10./11. folders, exit codes -------------------------------------------------------------------------------
def test_folder_entries_are_listed_and_recursion_is_an_option(tmp_path):
    corpus = {c.name: c for c in make_corpus(tmp_path / "corpus")}
    folder = corpus["folder_with_extras"].path
    result = _run("graph", folder)
    assert result.exit_code == 0 and "ignored 2 folder entries" in result.output and "subfolder" in result.output
    assert "broken symlink" in result.output and "skipped 1 of 2" in result.output
    deep = _run("graph", folder, "--recursive", "--json")
    assert len([line for line in deep.stdout.splitlines() if line.startswith("{")]) == 2
    loop = _run("graph", corpus["symlink_loop"].path)
    assert loop.exit_code == 1 and "symlink loop" in loop.output and "no such file" not in loop.output


def test_exit_codes(tmp_path, monkeypatch):
    from pathlib import Path

    good = tmp_path / "good.cif"
    good_structures()[0].to(filename=str(good))
    bad = tmp_path / "bad.cif"
    bad.write_text("data_x\nnot a cif\n")
    assert _run("graph", good, bad).exit_code == 0  # skipped inputs are listed, the rest is done
    assert _run("graph", bad).exit_code == 1  # nothing usable
    assert _run("graph", good, bad, "--strict").exit_code == 2
    assert "exit 2" in _run("graph", "--help").output
    locked = tmp_path / "locked.cif"
    real_exists = Path.exists
    monkeypatch.setattr(Path, "exists", lambda p: (_ for _ in ()).throw(PermissionError(13, "Permission denied"))
                        if p.name == "locked.cif" else real_exists(p))
    unreadable = _run("graph", locked, good)  # an unreadable input is skipped like a missing one
    assert unreadable.exit_code == 0 and "locked.cif: cannot read: Permission denied" in unreadable.output


# --- 12. messages and files ----------------------------------------------------------------------------------------
def test_json_is_one_object_per_line(tmp_path):
    paths = []
    for i, s in enumerate(good_structures()[:3]):
        paths.append(tmp_path / f"s{i}.cif")
        s.to(filename=str(paths[-1]))
    result = _run("graph", *paths, "--json")
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert len(lines) == 3 and all(json.loads(line)["atoms"] >= 1 for line in lines)


def test_weights_have_the_runs_permissions(trained):
    _, run = trained
    member = run / "fold_0" / "member_0"
    modes = {p.name: stat.S_IMODE(os.stat(p).st_mode) for p in (member / "model.safetensors", member / "model.json")}
    assert modes["model.safetensors"] == modes["model.json"], modes


# --- 13. a reproducible budget ---------------------------------------------------------------------------------------
def test_max_steps_is_a_recorded_reproducible_budget(tmp_path):
    data = write_csv(synthetic_records(12), tmp_path / "syn.csv")
    run = tmp_path / "run"
    result = _run("train", data, "--target", "a", "--out", run, "--epochs", "5", "--max-steps", "3",
                  "--batch-size", "4", "--no-progress")
    assert result.exit_code == 0, result.output
    manifest = json.loads((run / "fold_0" / "member_0" / "model.json").read_text())
    fit = json.loads((run / "fold_0" / "member_0" / "fit.json").read_text())
    assert manifest["steps"] == 3 and manifest["train_wall_s"] == fit["wall_s"] > 0  # training time, every sitting
    wide = runner.invoke(app, ["train", "--help"], env={"COLUMNS": "400"}, terminal_width=400)  # no word wrapping
    assert "Not reproducible" in " ".join(wide.output.split())


def test_pretrain_counts_and_names_read_failures(tmp_path):
    data = write_csv(synthetic_records(8), tmp_path / "syn.csv")
    bad = tmp_path / "bad.cif"
    bad.write_text("data_x\nnot a cif\n")
    out = tmp_path / "atoms"
    result = _run("pretrain", data, bad, "--out", out, "--epochs", "1", "--embed-dim", "8", "--no-progress")
    assert result.exit_code == 0, result.output
    assert "skipped 1 of 9" in result.output and "bad.cif: malformed CIF" in result.output
    summary = json.loads((out / "pretrain.json").read_text())
    assert summary["n_read_failures"] == 1 and "bad.cif" in summary["skipped"][0]
    assert _run("pretrain", bad, "--out", tmp_path / "none", "--no-progress").exit_code == 1  # nothing usable
