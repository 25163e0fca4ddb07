"""benchmarks/pretrain_evidence.py: both arms on identical folds, the paired comparison, the table."""

from __future__ import annotations

import json

import pytest
import torch
from test_bench_runner import tiny_data  # noqa: F401  (a fixture)

from crystograph import embeddings
from tests.conftest import bench_script


def _arm(scores: dict[int, float]) -> dict:
    return {"folds": [{"fold": k, "score": v} for k, v in scores.items()]}


def test_paired_comparison_on_the_common_folds():
    ev = bench_script("pretrain_evidence")
    base = _arm({0: 1.0, 1: 2.0, 2: 3.0, 3: 4.0})
    other = _arm({0: 0.5, 1: 2.5, 2: 2.0, 4: 9.0})  # fold 4 has no partner, fold 3 neither
    cmp = ev.paired(base, other)
    assert cmp["folds"] == [0, 1, 2]
    assert cmp["differences"] == pytest.approx([-0.5, 0.5, -1.0])
    assert cmp["mean_difference"] == pytest.approx(-1.0 / 3)
    assert cmp["relative_mean_difference"] == pytest.approx((-1.0 / 3) / 2.0)
    assert (cmp["lower_on"], cmp["higher_on"]) == (2, 1)
    assert 0 < cmp["paired_t_p"] <= 1 and 0 < cmp["wilcoxon_p"] <= 1
    assert ev.paired(base, _arm({7: 1.0})) is None


@pytest.mark.slow
def test_both_arms_run_on_the_same_folds_and_are_combined(tiny_data, tmp_path, monkeypatch):  # noqa: F811
    ev = bench_script("pretrain_evidence")
    shipped = tmp_path / "emb"
    shipped.mkdir()
    embeddings.save_table(shipped / "default.safetensors",
                          torch.randn(119, 4, generator=torch.Generator().manual_seed(0)))
    (shipped / "default.json").write_text(json.dumps({"corpus_sha256": "abc", "epochs": 1}))
    monkeypatch.setattr(embeddings, "package_dir", lambda: shipped)
    out = tmp_path / "pretrain_supercon.json"
    argv = ["local_supercon", "--folds", "0,1,2", "--max-steps", "2", "--max-minutes", "1", "--data-dir",
            str(tiny_data / "data"), "--run-dir", str(tmp_path / "runs"), "--out", str(out), "--no-progress"]
    assert ev.main(argv) == 0
    doc = json.loads(out.read_text())
    without, with_ = doc["without_embeddings"], doc["with_embeddings"]
    assert [f["fold"] for f in without["folds"]] == [f["fold"] for f in with_["folds"]] == [0, 1, 2]
    assert [f["n_test"] for f in without["folds"]] == [f["n_test"] for f in with_["folds"]]
    assert without["atom_embeddings"] is None and with_["atom_embeddings"]["sha256"]
    assert without["train_config"]["max_steps"] == with_["train_config"]["max_steps"] == 2
    assert doc["paired"]["with_embeddings"]["folds"] == [0, 1, 2]
    assert doc["embeddings_card"]["corpus_sha256"] == "abc" and doc["budget"]["max_steps"] == 2
    assert not any(f["score"] == g["score"] for f, g in zip(without["folds"], with_["folds"]))  # features differ
    monkeypatch.setattr(ev, "RESULTS", tmp_path)
    assert "| local_supercon |" in ev.table(tmp_path)
