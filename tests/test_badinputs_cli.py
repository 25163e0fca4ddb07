"""The bad-input corpus through every command: a one-line reason naming the file (and row), batch mode skips and
counts, `--strict` fails, and never a Python traceback."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
from typer.testing import CliRunner

from badinputs import good_structures, make_corpus
from crystograph.cli import app
from tests.helpers_data import synthetic_records, write_csv

runner = CliRunner()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_corpus(tmp_path_factory.mktemp("corpus"))


def _no_traceback(result):
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)


def _structure_items(corpus):
    return [c for c in corpus if not c.read_kwargs]  # items that need no target column


@pytest.mark.slow
def test_graph_command_on_every_corpus_item(corpus):
    tried = 0
    for item in _structure_items(corpus):
        tried += 1
        result = runner.invoke(app, ["graph", str(item.path)])
        _no_traceback(result)
        if item.valid:
            assert result.exit_code == 0 and "none skipped" in result.output, (item.name, result.output)
            continue
        out = result.output.lower()
        assert item.path.name.lower() in out and item.reason.lower() in out, (item.name, result.output)
        usable = item.n_records if item.stage == "read" else 0  # a graph-stage reject leaves nothing usable
        assert result.exit_code == (0 if usable else 1), (item.name, result.exit_code)  # 1: nothing usable
        strict = runner.invoke(app, ["graph", str(item.path), "--strict"])
        _no_traceback(strict)
        assert strict.exit_code == 2 and item.path.name.lower() in strict.output.lower(), item.name
    assert tried >= 15


@pytest.mark.slow
def test_graph_batch_counts_every_skip(corpus):
    items = [c for c in _structure_items(corpus) if c.kind == "structure"]
    result = runner.invoke(app, ["graph", *[str(c.path) for c in items], "--json"])
    _no_traceback(result)
    assert result.exit_code == 0, result.output
    n_bad = sum(not c.valid for c in items)
    assert f"skipped {n_bad} of {len(items)}" in result.output, result.output


@pytest.mark.slow
def test_train_skips_bad_rows_and_strict_stops(tmp_path, corpus):
    for item in [c for c in corpus if c.kind == "table" and c.read_kwargs.get("target")]:
        good = write_csv(synthetic_records(12), tmp_path / f"{item.name}_good.csv", column=item.read_kwargs["target"])
        args = ["train", str(good), str(item.path), "--target", item.read_kwargs["target"], "--out",
                str(tmp_path / f"run_{item.name}"), "--epochs", "1", "--batch-size", "8", "--no-progress"]
        result = runner.invoke(app, args)
        _no_traceback(result)
        assert result.exit_code == 0, (item.name, result.output)
        if item.n_skipped:
            assert f"skipped {item.n_skipped} of" in result.output, (item.name, result.output)
            assert item.where.lower() in result.output.lower(), (item.name, result.output)
            strict = runner.invoke(app, [*args, "--strict"])
            _no_traceback(strict)
            assert strict.exit_code == 2 and item.path.name in strict.output, (item.name, strict.output)


@pytest.mark.slow
def test_predict_reports_each_bad_structure(tmp_path, corpus):
    data = write_csv(synthetic_records(12), tmp_path / "train.csv")
    run = tmp_path / "run"
    assert runner.invoke(app, ["train", str(data), "--target", "a", "--out", str(run), "--epochs", "1",
                               "--no-progress"]).exit_code == 0
    items = [c for c in _structure_items(corpus) if c.kind == "structure" and c.name != "big_3000_atoms"]
    preds = tmp_path / "preds.csv"
    result = runner.invoke(app, ["predict", str(run), *[str(c.path) for c in items], "--out", str(preds)])
    _no_traceback(result)
    assert result.exit_code == 0, result.output
    n_bad = sum(not c.valid for c in items)
    assert f"skipped {n_bad} of {len(items)}" in result.output, result.output
    table = pd.read_csv(preds)
    assert len(table) == len(items) - n_bad and table["a"].notna().all()


def test_bench_counts_bad_rows_and_missing_data(tmp_path):
    from crystograph.bench.runner import run_bench  # noqa: F401  (the CLI wraps it)

    data_dir = tmp_path / "data"
    (data_dir / "supercon").mkdir(parents=True)
    structures = good_structures() * 5
    rows = [{"material_id": f"id-{i}", "tc_K": float(i % 7), "cif": s.to(fmt="cif")} for i, s in enumerate(structures)]
    rows[7]["cif"] = "data_x\nnot a cif at all\n"
    rows[11]["tc_K"] = math.nan
    pd.DataFrame(rows).to_csv(data_dir / "supercon" / "supercon.csv.gz", index=False)
    out = tmp_path / "results"
    result = runner.invoke(app, ["bench", "local_supercon", "--model", "dummy", "--data-dir", str(data_dir),
                                 "--out", str(out), "--run-dir", str(tmp_path / "runs"), "--no-progress"])
    _no_traceback(result)
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "local_supercon__dummy.json").read_text())
    assert saved["skipped"]["count"] == 1 and "malformed CIF" in saved["skipped"]["examples"][0]
    assert saved["data_source"]["rows_without_target"] == 1  # unlabelled rows are not in the task, but counted
    assert saved["n_samples"] == len(rows) - 2 and len(saved["folds"]) == 5
    missing = runner.invoke(app, ["bench", "local_supercon", "--model", "dummy", "--data-dir",
                                  str(tmp_path / "nowhere"), "--out", str(out), "--no-progress"])
    _no_traceback(missing)
    assert missing.exit_code == 2 and "nowhere" in missing.output, missing.output
