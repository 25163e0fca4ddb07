"""Atom-embedding tables: `default` resolution, the coverage mask, frozen vs fine-tuned, saving, shipping, PCA."""

from __future__ import annotations

import json
import warnings

import pytest
import torch
import typer.main
from test_bench_runner import _fake_fit, _run, tiny_data  # noqa: F401  (tiny_data is a fixture)
from test_nn_model import batch_for, make, warm_up
from typer.testing import CliRunner

from crystograph import embeddings
from crystograph.errors import InputError
from tests.conftest import bench_script

DIM = 4


def synthetic_table(dim: int = DIM, seed: int = 0) -> torch.Tensor:
    return torch.randn(119, dim, generator=torch.Generator().manual_seed(seed))


def coverage(*uncovered: int) -> torch.Tensor:
    covered = torch.ones(119, dtype=torch.bool)
    covered[0] = False
    covered[list(uncovered)] = False
    return covered


@pytest.fixture
def shipped(tmp_path, monkeypatch):
    """The package's embeddings folder replaced by an empty temporary one."""
    folder = tmp_path / "embeddings"
    folder.mkdir()
    monkeypatch.setattr(embeddings, "package_dir", lambda: folder)
    return folder


# ------------------------------------------------------------------------------------------------ default
def test_default_resolves_to_the_shipped_file(shipped):
    table = synthetic_table()
    embeddings.save_table(shipped / "default.safetensors", table, coverage(2))
    assert embeddings.resolve("default") == shipped / "default.safetensors"
    assert str(embeddings.resolve("other.safetensors")) == "other.safetensors"
    model = make(atom_embedding_path="default")
    assert torch.equal(model.atom_embedding, table) and model.atom_embed.in_features == 92 + DIM
    assert model.atom_covered.dtype == torch.bool and not model.atom_covered[2] and model.atom_covered[1]


def test_missing_default_file_says_so(shipped):
    with pytest.raises(InputError, match="no default atom embeddings are shipped"):
        embeddings.resolve("default")
    with pytest.raises(InputError, match="no default atom embeddings are shipped"):
        make(atom_embedding_path="default")


def test_cli_refuses_a_missing_default_before_reading_data(shipped, tmp_path):
    from crystograph.cli import app

    result = CliRunner().invoke(app, ["train", str(tmp_path / "none.csv"), "--target", "y", "--out",
                                      str(tmp_path / "run"), "--atom-embeddings", "default", "--no-progress"])
    assert result.exit_code == 2 and "no default atom embeddings are shipped" in result.output
    result = CliRunner().invoke(app, ["train", str(tmp_path / "none.csv"), "--target", "y", "--out",
                                      str(tmp_path / "run"), "--finetune-embeddings", "--no-progress"])
    assert result.exit_code == 2 and "needs --atom-embeddings" in result.output


def test_bench_refuses_a_missing_default(shipped, tiny_data):  # noqa: F811
    with pytest.raises(InputError, match="no default atom embeddings are shipped"):
        _run(tiny_data, model="crystograph", folds=[0], atom_embeddings="default")
    with pytest.raises(InputError, match="needs --atom-embeddings"):
        _run(tiny_data, model="crystograph", folds=[0], finetune_embeddings=True)


# ------------------------------------------------------------------------------------------------ coverage
def test_uncovered_elements_get_a_zero_row_and_a_warning_naming_them(tmp_path):
    table = synthetic_table()
    path = embeddings.save_table(tmp_path / "t.safetensors", table, coverage(11))  # Na not covered
    model = make(atom_embedding_path=str(path)).eval()
    batch = batch_for(model)
    batch.z = torch.full_like(batch.z, 8)
    batch.z[0] = 11
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        inputs = model._atom_input(batch)  # [N, 92 + d]
        model._atom_input(batch)  # the same model warns once per element
    assert torch.equal(inputs[0, 92:], torch.zeros(DIM))
    assert torch.equal(inputs[1, 92:], table[8])
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1 and "Na (Z=11)" in messages[0] and "92-d atom features" in messages[0]
    batch.z[0] = 8
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model(batch)  # only covered elements: no warning


def test_a_table_without_mask_counts_every_row_as_learned(tmp_path):
    path = embeddings.save_table(tmp_path / "t.safetensors", synthetic_table())
    assert embeddings.load_table(path).covered is None
    assert make(atom_embedding_path=str(path)).atom_covered is None


def test_bad_coverage_mask_is_refused(tmp_path):
    from safetensors.torch import save_file

    save_file({"atom_embedding": synthetic_table(), "covered": torch.ones(5, dtype=torch.uint8)},
              str(tmp_path / "bad.safetensors"))
    with pytest.raises(InputError, match="'covered' must be"):
        embeddings.load_table(tmp_path / "bad.safetensors")


# ------------------------------------------------------------------------------------------------ frozen / fine-tuned
@pytest.mark.parametrize("trainable", [False, True])
def test_only_a_finetuned_table_changes_under_an_optimizer_step(tmp_path, trainable):
    table = synthetic_table()
    path = embeddings.save_table(tmp_path / "t.safetensors", table, coverage(11))
    model = make(atom_embedding_path=str(path), atom_embedding_trainable=trainable)
    assert any(p is model.atom_embedding for p in model.parameters()) == trainable
    batch = batch_for(model)
    batch.z[:] = 8
    batch.z[0] = 11
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    model.train()
    model(batch).pow(2).sum().backward()
    optimizer.step()
    after = model.atom_embedding.detach()
    assert torch.equal(after[11], table[11]) and torch.equal(after[20], table[20])  # uncovered / absent rows
    assert (not torch.equal(after[8], table[8])) == trainable


@pytest.mark.parametrize("trainable", [False, True])
def test_saved_models_reload_and_predict_identically(tmp_path, trainable):
    from crystograph.train.export import load_model_dir, save_model

    path = embeddings.save_table(tmp_path / "t.safetensors", synthetic_table(), coverage(11))
    model = make(atom_embedding_path=str(path), atom_embedding_trainable=trainable)
    batch = batch_for(model)
    if trainable:  # a fine-tuned table differs from the file: it must travel in the weights
        with torch.no_grad():
            model.atom_embedding.add_(1.0)
    warm_up(model, batch)
    save_model(tmp_path / "m", model, model.config, task="regression", targets=["y"], y_mean=[0.0], y_std=[1.0])
    path.unlink()  # the reloaded model must not need the table file
    loaded, manifest = load_model_dir(tmp_path / "m")
    assert manifest["model_config"]["atom_embedding_trainable"] == trainable
    assert torch.equal(loaded.atom_covered, model.atom_covered)
    with torch.no_grad():
        torch.testing.assert_close(loaded(batch), model(batch), atol=0, rtol=0)
    # the same weights load into a model of the other kind (frozen <-> fine-tuned share the key)
    other = make(atom_embedding_path=None, atom_embedding_trainable=not trainable, seed=3)
    other.load_state_dict(loaded.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(other.eval()(batch), model(batch), atol=0, rtol=0)


def test_bench_records_finetuning_in_its_settings(tiny_data, monkeypatch):  # noqa: F811
    import crystograph.train

    path = embeddings.save_table(tiny_data / "t.safetensors", synthetic_table(), coverage(11))
    calls = []
    monkeypatch.setattr(crystograph.train, "fit_predict", _fake_fit(calls))
    res = _run(tiny_data, model="crystograph", folds=[0], limit=10, atom_embeddings=path, finetune_embeddings=True,
               max_minutes=0.1)
    assert isinstance(calls[0]["model"].atom_embedding, torch.nn.Parameter)
    assert res["model_details"]["atom_embeddings_trainable"] is True and res["atom_embeddings_trainable"] is True
    with pytest.raises(InputError, match="other settings"):  # frozen into the fine-tuned run's folder
        _run(tiny_data, model="crystograph", folds=[0], limit=10, atom_embeddings=path, max_minutes=0.1)


def test_run_config_round_trips_the_finetune_flag():
    from crystograph.cli import app
    from crystograph.cli_config import to_defaults

    params = typer.main.get_command(app).commands["train"].params
    flat = to_defaults({"model": {"atom_embedding_path": "default", "atom_embedding_trainable": True},
                        "train": {"lr": 1e-3}}, params, "train")
    assert flat["atom_embeddings"] == "default" and flat["finetune_embeddings"] is True


# ------------------------------------------------------------------------------------------------ ship, PCA
def _pretrain_dir(root, corpus_sha="abc"):
    """A stand-in for a finished benchmarks/pretrain_default.py run."""
    run = root / "pre"
    run.mkdir()
    embeddings.save_table(run / "atom_embeddings.safetensors", synthetic_table(dim=8))
    pre = {"epochs": 3, "accuracy": 0.5, "accuracy_mask_token": 0.4, "baseline_accuracy": 0.2, "loss": 2.0,
           "n_train": 9, "n_val": 1, "evaluated_on": "validation", "config": {"embed_dim": 8}}
    summary = {"corpus_sha256": corpus_sha, "corpus_file": "corpus.csv", "n_structures": 10, "max_atoms": 64,
               "sources": [{"source": "x", "kept": 10}], "eval_tasks": {"local_supercon": {}},
               "elements": {"structures_per_element": {"Na": 3, "Cl": 3, "O": 1}}}
    (run / "pretrain.json").write_text(json.dumps(pre))
    (run / "corpus.json").write_text(json.dumps({"corpus_sha256": corpus_sha, "corpus_summary": summary,
                                                 "command": "pretrain cmd", "commit": "c0ffee"}))
    return run


def test_ship_embeddings_writes_table_mask_and_card(tmp_path, shipped):
    ship = bench_script("ship_embeddings")
    run = _pretrain_dir(tmp_path)
    assert ship.main([str(run), "--dest", str(shipped), "--dtype", "float16", "--min-structures", "2"]) == 0
    table = embeddings.load_table("default")
    assert table.covered.nonzero().flatten().tolist() == [11, 17]  # Na, Cl; O is in one structure only
    assert (shipped / "default.safetensors").stat().st_size < 2 * 1024 * 1024
    card = embeddings.default_card()
    assert card["corpus"]["sha256"] == "abc" and card["epochs"] == 3 and card["accuracy_mask_token"] == 0.4
    assert card["command"] == "pretrain cmd" and card["commit"] == "c0ffee" and card["covered_elements"] == ["Na", "Cl"]
    assert "O" in card["uncovered_elements_z1_100"] and card["ship_command"]
    model = make(atom_embedding_path="default")  # float16 on disk, float32 in the model
    assert model.atom_embedding.dtype == torch.float32 and model.atom_embed.in_features == 100


def test_embedding_projection_draws_covered_elements(tmp_path):
    proj = bench_script("embedding_projection")
    path = embeddings.save_table(tmp_path / "t.safetensors", synthetic_table(dim=6), coverage(*range(40, 119)))
    assert proj.element_rows(embeddings.load_table(path)) == list(range(1, 40))
    out = tmp_path / "pca.png"
    assert proj.main([str(path), "--out", str(out)]) == 0
    assert out.stat().st_size > 5000


def test_shipped_default_card_matches_its_table_when_present():
    """When the package ships a default table, its card names the same file hash."""
    import hashlib

    if not embeddings.default_path().is_file():
        pytest.skip("no default atom embeddings shipped yet")
    card = embeddings.default_card()
    assert card["sha256"] == hashlib.sha256(embeddings.default_path().read_bytes()).hexdigest()
    assert embeddings.load_table("default").covered is not None


def test_neighbour_agreement_tells_chemistry_from_chance():
    """Vectors that encode the label (plus noise) put every element next to one of its own; the shuffled-label
    reference stays near chance."""
    import numpy as np

    proj = bench_script("embedding_projection")
    rng = np.random.default_rng(0)
    labels = ["s", "p", "d", "f"] * 10
    onehot = np.eye(4)[[("s", "p", "d", "f").index(b) for b in labels]]
    clustered = proj.neighbour_agreement(onehot * 5 + rng.normal(size=(40, 4)) * 0.1, labels, draws=200)
    assert clustered["observed"] == 1.0 and clustered["chance_mean"] < 0.4 and clustered["p_value"] < 0.01
    noise = proj.neighbour_agreement(rng.normal(size=(40, 8)), labels, draws=200)
    assert noise["observed"] < 0.6 and noise["p_value"] > 0.01


def test_train_runs_with_the_shipped_default_table(tmp_path):
    """`crystograph train … --atom-embeddings default` end to end on the table in the package."""
    from tests.helpers_data import synthetic_records, write_csv

    from crystograph.cli import app

    if not embeddings.default_path().is_file():
        pytest.skip("no default atom embeddings shipped yet")
    data = write_csv(synthetic_records(10), tmp_path / "syn.csv")
    run = tmp_path / "run"
    result = CliRunner().invoke(app, ["train", str(data), "--target", "a", "--out", str(run), "--epochs", "1",
                                      "--batch-size", "4", "--id-column", "id", "--atom-embeddings", "default",
                                      "--no-progress"])
    assert result.exit_code == 0, result.output
    saved = (run / "config.yaml").read_text()
    assert "atom_embedding_path: default" in saved
    table = embeddings.load_table("default")
    model = make(atom_embedding_path="default")
    assert bool(table.covered[11]) and bool(table.covered[17])
    assert torch.equal(model.atom_embedding[[11, 17]], table.table[[11, 17]])  # Na, Cl: the shipped rows
