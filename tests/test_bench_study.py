"""Ablation studies: the study files, a tiny study end to end (resumable), model knobs of train/bench, the
paper's bulk_s/m/l bins and 10 % subset (seeded samples of a local task)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from tests.conftest import REPO, shared_file
from crystograph.bench import loaders, registry, runner, study
from crystograph.cli import app
from crystograph.errors import InputError

STUDIES = REPO / "benchmarks" / "studies"


@pytest.fixture
def tiny_data(tmp_path, monkeypatch):
    """A 30-row stand-in for supercon/supercon.csv.gz (NaCl-type cells of growing size)."""
    from pymatgen.core import Lattice, Structure

    rng = np.random.default_rng(0)
    rows = []
    for i in range(30):
        s = Structure(Lattice.cubic(3.5 + 0.05 * i), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
        rows.append({"material_id": f"JVASP-{i:03d}", "tc_K": float(rng.uniform(0, 10)), "cif": s.to(fmt="cif"),
                     "natoms": 2 + i % 3})
    (tmp_path / "data" / "supercon").mkdir(parents=True)
    pd.DataFrame(rows).to_csv(tmp_path / "data" / "supercon" / "supercon.csv.gz", index=False)
    monkeypatch.setenv("CRYSTOGRAPH_CACHE", str(tmp_path / "cache"))
    return tmp_path


# ------------------------------------------------------------------------------------------ study files
def test_shipped_studies_parse_and_expand():
    comp = study.load_study(STUDIES / "components.yaml")
    assert comp.tasks == ["paper_bulk_s", "paper_bulk_m", "paper_bulk_l"] and comp.reference == "full"
    assert [v.name for v in comp.variants] == ["full", "no_gwt", "gwt_only", "no_line_graph"]
    assert {v.overrides.get("layout", "stacked") for v in comp.variants} == {"stacked", "no_gwt", "gwt_only",
                                                                             "no_line_graph"}
    assert all(v.overrides["n_etgc"] == 3 and v.overrides.get("n_gwt", 1) == 1 for v in comp.variants)
    assert len(comp.cells()) == 12 and comp.folds == [0, 1, 2] and comp.max_minutes > 0
    assert comp.estimate_cpu_minutes() == 12 * 3 * comp.max_minutes

    lay = study.load_study(STUDIES / "layouts.yaml")
    assert lay.tasks == ["mp_e_form_10pct"]
    got = {(v.overrides.get("layout", "stacked"), v.overrides.get("n_gwt", 1)) for v in lay.variants}
    assert got == {(layout, g) for layout in ("stacked", "gwt_first", "parallel") for g in (1, 3)}
    assert all(v.overrides["n_etgc"] == 3 for v in lay.variants)

    depth = study.load_study(STUDIES / "depth.yaml")
    configs = {(v.overrides.get("n_etgc", 2), v.overrides.get("n_gwt", 1)) for v in depth.variants}
    assert {(e, 1) for e in range(1, 6)} | {(3, g) for g in range(4)} == configs
    assert len({v.label for v in depth.variants}) == len(depth.variants) == 8

    pe = study.load_study(STUDIES / "pe.yaml")
    assert [v.overrides.get("pe_mode", "laplacian+rw") for v in pe.variants] == ["laplacian+rw", "laplacian", "rw",
                                                                                 "none"]
    for s in (comp, lay, depth, pe):
        study._check_models(s)  # every variant builds
        assert len({v.name for v in s.variants}) == len(s.variants)


def test_study_file_errors():
    base = {"tasks": ["local_supercon"], "variants": {"full": {}, "deep": {"n-etgc": 4}}}
    assert study.parse_study(base).variant("deep").label == "crystograph-small-n_etgc_4"
    for bad, match in [({"budjet": {}}, "unknown keys"), ({"budget": {"minutes": 3}}, "budget keys"),
                       ({"reference": "nope"}, "reference"), ({"variants": {"x": {"n_layers": 2}}}, "unknown model"),
                       ({"variants": {"x": {"layout": "sideways"}}}, "layout"),
                       ({"variants": {"x": {"pe-mode": "lap"}}}, "pe_mode"), ({"tasks": ["nope"]}, "unknown task"),
                       ({"budget": {"max-minutes": "3 min"}}, "must be numbers"), ({"seed": "abc"}, "must be numbers"),
                       ({"budget": {"folds": "0,x"}}, "--folds")]:
        with pytest.raises(InputError, match=match):
            study.parse_study({**base, **bad})
    with pytest.raises(InputError, match="no layers"):
        study._check_models(study.parse_study({**base, "variants": {"x": {"layout": "parallel", "n_gwt": 0}}}))
    assert study.parse_study({**base, "budget": {"folds": "0,3", "max-steps": "20"}}).folds == [0, 3]


def test_select_keeps_the_reference():
    s = study.load_study(STUDIES / "components.yaml")
    sub = study.select(s, ["paper_bulk_l"], ["no_gwt"])
    assert sub.tasks == ["paper_bulk_l"] and [v.name for v in sub.variants] == ["full", "no_gwt"]
    with pytest.raises(InputError, match="unknown variants"):
        study.select(s, None, ["nope"])


def test_select_without_the_reference_runs_only_the_named_variants():
    s = study.load_study(STUDIES / "components.yaml")
    assert [v.name for v in study.select(s, None, ["no_gwt"], keep_reference=False).variants] == ["no_gwt"]
    assert [v.name for v in study.select(s, None, ["full"], keep_reference=False).variants] == ["full"]
    # no variants named: the whole study, reference included
    assert len(study.select(s, keep_reference=False).variants) == len(s.variants)


# ------------------------------------------------------------------------------------------ end to end
def _count_fits(monkeypatch):
    """Count real fits and record each fit's model config."""
    import crystograph.train

    real, fits = crystograph.train.fit_predict, []

    def counting(factory, *args, **kwargs):
        fits.append(factory().config)
        return real(factory, *args, **kwargs)

    monkeypatch.setattr(crystograph.train, "fit_predict", counting)
    return fits


def test_tiny_study_end_to_end_is_resumable(tiny_data, monkeypatch):
    spec = {"study": "tiny", "paper": "test", "tasks": "local_supercon", "model": {"n-etgc": 1},
            "budget": {"folds": 2, "max-minutes": 0.5, "epochs": 1, "max-steps": 2}, "reference": "full",
            "variants": {"full": {}, "rw_no_gwt": {"pe-mode": "rw", "layout": "no_gwt"}}}
    (tiny_data / "tiny.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    fits, loads, load = _count_fits(monkeypatch), [], runner.load_task
    monkeypatch.setattr(runner, "load_task", lambda task, *a, **k: loads.append(task.name) or load(task, *a, **k))
    args = ["ablate", str(tiny_data / "tiny.yaml"), "--out", str(tiny_data / "studies"), "--run-dir",
            str(tiny_data / "runs"), "--data-dir",
            str(tiny_data / "data"), "--limit", "30", "--device", "cpu", "--no-progress"]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    assert len(fits) == 4 and loads == ["local_supercon"]  # 2 variants x 2 folds; the data read once
    assert {(c.layout, c.graph.pe_mode, c.n_etgc) for c in fits} == {("stacked", "laplacian+rw", 1),
                                                                     ("no_gwt", "rw", 1)}
    doc = json.loads((tiny_data / "studies" / "tiny.json").read_text())
    assert (tiny_data / "studies" / "tiny.png").stat().st_size > 1000 and doc["figure"]
    assert doc["complete"] and not doc["missing"] and doc["limit"] == 30
    assert doc["budget"]["folds"] == [0, 1] and doc["budget"]["max_steps"] == 2
    rows = {r["variant"]: r for r in doc["results"]}
    assert set(rows) == {"full", "rw_no_gwt"} and all(r["task"] == "local_supercon" for r in rows.values())
    for r in rows.values():
        assert [f["fold"] for f in r["folds"]] == [0, 1] and r["unit"] == "K"
        assert r["mean"] == pytest.approx(np.mean([f["score"] for f in r["folds"]]))
    full, rw = rows["full"], rows["rw_no_gwt"]
    assert full["relative"]["mean"] == 1.0 and full["relative"]["paired_std"] == 0.0
    assert full["relative"]["std"] == pytest.approx(full["std"] / full["mean"])
    assert rw["relative"]["mean"] == pytest.approx(rw["mean"] / full["mean"])
    assert rw["relative"]["std"] == pytest.approx(rw["std"] / full["mean"])
    ratios = [a["score"] / b["score"] for a, b in zip(rw["folds"], full["folds"])]
    assert rw["relative"]["paired_mean"] == pytest.approx(np.mean(ratios))
    cell = json.loads(Path(rows["rw_no_gwt"]["cell_json"]).read_text())
    assert cell["model"] == "crystograph-small-no_gwt-n_etgc_1-pe_mode_rw"
    assert (tiny_data / "runs" / "tiny" / "local_supercon" / cell["model"] / "fold_1" / "fold.json").exists()
    assert cell["model_details"]["pe_mode"] == "rw" and cell["model_details"]["max_steps"] == 2

    second = CliRunner().invoke(app, args)
    assert second.exit_code == 0, second.output
    assert len(fits) == 4, "a finished fold was recomputed"
    again = json.loads((tiny_data / "studies" / "tiny.json").read_text())
    assert [r["folds"] for r in again["results"]] == [r["folds"] for r in doc["results"]]
    assert runner._setup_model.__name__ == "_setup_model" and runner.model_label.__name__ == "model_label"
    # a new machine: the per-fold folders are gone, the committed cell JSONs remain; finished cells stay finished
    import shutil

    shutil.rmtree(tiny_data / "runs")
    moved = CliRunner().invoke(app, args)
    assert moved.exit_code == 0, moved.output
    assert len(fits) == 4, "a finished cell was recomputed once its run folder was gone"
    assert [r["folds"] for r in json.loads((tiny_data / "studies" / "tiny.json").read_text())["results"]] == \
        [r["folds"] for r in doc["results"]]
    # a run narrowed to some variants trains only those, and the study's JSON still covers all of them
    spec["variants"]["deeper"] = {"n-etgc": 2}
    (tiny_data / "tiny.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    third = CliRunner().invoke(app, args + ["--variants", "deeper", "--folds", "1"])
    assert third.exit_code == 0, third.output
    assert len(fits) == 5 and fits[-1].n_etgc == 2
    doc = json.loads((tiny_data / "studies" / "tiny.json").read_text())
    assert [r["variant"] for r in doc["results"]] == ["full", "rw_no_gwt", "deeper"]
    assert doc["complete"] is False and doc["missing"] == ["local_supercon × deeper"]


def test_dry_run_lists_cells_without_training(tiny_data, monkeypatch):
    fits = _count_fits(monkeypatch)
    res = CliRunner().invoke(app, ["ablate", str(STUDIES / "layouts.yaml"), "--dry-run", "--folds", "2",
                                   "--variants", "parallel_gwt3"])
    assert res.exit_code == 0, res.output
    assert "parallel_gwt3" in res.output and "stacked_gwt1 (reference)" in res.output and "gwt_first" not in res.output
    assert "500 steps per fold" in res.output and "4 fits × 500 steps" in res.output and not fits  # 2 cells x 2 folds
    alone = CliRunner().invoke(app, ["ablate", str(STUDIES / "layouts.yaml"), "--dry-run", "--folds", "2",
                                     "--variants", "parallel_gwt3", "--no-reference"])
    assert alone.exit_code == 0, alone.output
    assert "parallel_gwt3" in alone.output and "stacked_gwt1" not in alone.output and "2 fits × 500" in alone.output


# ------------------------------------------------------------------------------------------ knobs
def test_bench_knobs_build_the_model_and_name_the_results(tiny_data, monkeypatch):
    import crystograph.train

    seen = []

    def fake_fit(factory, train, test, cfg, out_dir, task, progress=True):
        seen.append(factory().config)
        return np.zeros((len(test), 1))

    monkeypatch.setattr(crystograph.train, "fit_predict", fake_fit)
    args = ["bench", "local_supercon", "--out", str(tiny_data / "r"), "--data-dir", str(tiny_data / "data"),
            "--folds", "1", "--max-minutes", "0.1", "--no-progress", "--n-etgc", "1", "--n-gwt", "2",
            "--hidden-dim", "32", "--num-heads", "2", "--head-dim", "8", "--pe-mode", "laplacian",
            "--layout", "parallel"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    (cfg,) = seen
    assert (cfg.n_etgc, cfg.n_gwt, cfg.hidden_dim, cfg.num_heads, cfg.head_dim, cfg.layout, cfg.graph.pe_mode) == (
        1, 2, 32, 2, 8, "parallel", "laplacian")
    name = "local_supercon__crystograph-small-parallel-head_dim_8-hidden_dim_32-n_etgc_1-n_gwt_2-num_heads_2-" \
           "pe_mode_laplacian.json"
    assert (tiny_data / "r" / name).exists()
    assert runner._setup_model.__name__ == "_setup_model"  # restored when the command returned
    bad = CliRunner().invoke(app, ["bench", "local_supercon", "--model", "dummy", "--n-gwt", "0", "--out",
                                   str(tiny_data / "r"), "--data-dir", str(tiny_data / "data")])
    assert bad.exit_code == 2 and "--n-gwt" in bad.output


def test_train_knobs_from_flags_and_yaml(tmp_path, monkeypatch):
    import crystograph.train.run as run_mod
    from tests.helpers_data import synthetic_records, write_csv

    seen = []

    def fake_train_run(graphs, out_dir, model_cfg, train_cfg, options, progress=True):
        seen.append(model_cfg)
        return SimpleNamespace(fold_mae=[1.0], dummy_mae=[2.0], mean_mae=1.0, mean_dummy_mae=2.0, wall_s=0.0)

    monkeypatch.setattr(run_mod, "train_run", fake_train_run)
    monkeypatch.setenv("CRYSTOGRAPH_CACHE", str(tmp_path / "cache"))
    csv = write_csv(synthetic_records(12), tmp_path / "d.csv")
    (tmp_path / "c.yaml").write_text("n-etgc: 4\nhead_dim: 12\npe-mode: rw\n")
    res = CliRunner().invoke(app, ["train", str(csv), "--target", "a", "--out", str(tmp_path / "run"), "--no-progress",
                                   "--config", str(tmp_path / "c.yaml"), "--n-gwt", "0", "--num-heads", "3"])
    assert res.exit_code == 0, res.output
    (cfg,) = seen
    assert (cfg.n_etgc, cfg.n_gwt, cfg.head_dim, cfg.num_heads, cfg.graph.pe_mode) == (4, 0, 12, 3, "rw")
    assert cfg.hidden_dim == dataclasses.replace(cfg).hidden_dim == 64  # the small preset's


# ------------------------------------------------------------------------------------------ data
def test_seeded_sample_of_a_local_task(tiny_data):
    task = registry.TASKS["local_supercon"]
    ids = []
    for sample, seed in ((10, 0), (10, 0), (10, 1), (0.5, 0)):
        t = dataclasses.replace(task, sample=sample, sample_seed=seed)
        loaded = loaders.load_task(t, tiny_data / "data", progress=False)
        ids.append(loaded.ids)
        assert loaded.data_source["sample"] == {"size": sample, "seed": seed}
        assert loaded.ids == sorted(loaded.ids)  # file order kept
    assert ids[0] == ids[1] and ids[0] != ids[2] and len(ids[0]) == 10 and len(ids[3]) == 15
    filtered = dataclasses.replace(task, filters=(("natoms", "between", (3, 4)),), sample=5)
    loaded = loaders.load_task(filtered, tiny_data / "data", progress=False)
    assert len(loaded.ids) == 5 and all(int(i[-3:]) % 3 in (1, 2) for i in loaded.ids)  # sampled after filtering


@pytest.mark.shared_data
def test_paper_bins_and_subset_of_the_mp_set():
    path = shared_file("mp_mtcgcnn/mp_eform_gap.csv.gz")
    df = pd.read_csv(path, usecols=["material_id", "natoms", "formation_energy_per_atom"])
    seen: set[str] = set()
    for name, (lo, hi) in registry.PAPER_BULK_BINS.items():
        task = registry.TASKS[name]
        picks = [loaders._sample(loaders._apply_filters(df, task.filters), task) for _ in range(2)]
        assert picks[0]["material_id"].tolist() == picks[1]["material_id"].tolist()  # seeded
        assert len(picks[0]) == task.expected_size == 5000
        assert lo <= picks[0]["natoms"].min() and picks[0]["natoms"].max() <= hi
        assert not seen & set(picks[0]["material_id"])
        seen |= set(picks[0]["material_id"])
    assert registry.PAPER_BULK_BINS == {"paper_bulk_s": (1, 12), "paper_bulk_m": (13, 30), "paper_bulk_l": (31, 368)}
    sub = registry.TASKS["mp_e_form_10pct"]
    pick = loaders._sample(df, sub)
    assert len(pick) == sub.expected_size == round(0.1 * len(df))
    assert pick.index.tolist() != list(range(len(pick)))  # a random subset, not the first rows
    loaded = loaders.load_task(registry.TASKS["paper_bulk_l"], path.parent.parent, limit=3, progress=False)
    assert len(loaded.records) == 3 and min(len(r.structure) for r in loaded.records) >= 31
    assert loaded.data_source["sample"] == {"size": 5000, "seed": registry.PAPER_SAMPLE_SEED}


def test_a_runs_config_with_other_sizes_comes_back_as_size_options():
    import typer.main

    from crystograph.cli_config import ConfigKeyError, to_defaults
    from crystograph.config import ModelConfig

    params = typer.main.get_command(app).commands["train"].params
    model = dataclasses.asdict(ModelConfig.preset("small", n_etgc=4, n_gwt=0, hidden_dim=32))
    flat = to_defaults({"model": model, "train": {"epochs": 3}}, params, "train")
    assert flat["preset"] == "small" and (flat["n_etgc"], flat["n_gwt"], flat["hidden_dim"]) == (4, 0, 32)
    assert "num_heads" not in flat  # equal to the preset's
    exact = to_defaults({"model": dataclasses.asdict(ModelConfig.preset("paper")), "train": {}}, params, "train")
    assert exact["preset"] == "paper" and "n_etgc" not in exact
    with pytest.raises(ConfigKeyError, match="match no --preset"):
        to_defaults({"model": {**model, "n_ffnn": 3}, "train": {}}, params, "train")
