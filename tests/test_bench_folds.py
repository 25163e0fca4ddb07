"""Folds: the official MatBench v0.1 splits are reproduced; our own folds are seeded and order-free."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.conftest import shared_file
from crystograph.bench import folds
from crystograph.bench.loaders import LoadedTask, matbench_id_prefix
from crystograph.bench.registry import TASKS

VALIDATION = "matbench/matbench_v0.1_validation.json.gz"


@pytest.mark.shared_data
@pytest.mark.parametrize("name", ["matbench_jdft2d", "matbench_phonons"])
def test_official_folds_reproduced_for_local_copies(name):
    vf = shared_file(VALIDATION)
    df = pd.read_csv(shared_file(f"matbench/{name}.csv.gz"), usecols=["mbid", "official_test_fold"])
    official = folds.read_validation_file(vf, name)
    assert set(official) == set(df["mbid"])
    # the fold column of the local copy is the official one
    assert (df["mbid"].map(official) == df["official_test_fold"]).all()
    # KFold(5, shuffle=True, random_state=18012019) over the dataset order gives the same folds
    computed = folds.matbench_fold_index(len(df))
    assert (computed == df["official_test_fold"].to_numpy()).all()
    assert folds.check_official_folds(dict(zip(df["mbid"], computed.tolist())), vf, name) == []


@pytest.mark.shared_data
def test_official_folds_reproduced_for_every_regression_task():
    """For regression the split depends only on the row count, so all MatBench ids can be checked."""
    names = ("matbench_dielectric", "matbench_log_gvrh", "matbench_log_kvrh", "matbench_mp_e_form",
             "matbench_mp_gap", "matbench_perovskites")
    every = folds.read_validation_file(shared_file(VALIDATION), names)
    for name in names:
        official = every[name]
        n = len(official)
        ids = [f"{matbench_id_prefix(name)}-{i + 1:0{len(str(n))}d}" for i in range(n)]
        assert folds._mismatches(dict(zip(ids, folds.matbench_fold_index(n).tolist())), official) == [], name


def test_fold_index_balanced_and_seeded():
    a = folds.fold_index(103, 7)
    assert sorted(np.bincount(a).tolist()) == [20, 20, 21, 21, 21]
    assert (a == folds.fold_index(103, 7)).all() and not (a == folds.fold_index(103, 8)).all()
    y = np.r_[np.zeros(80), np.ones(20)]
    s = folds.fold_index(100, 1, y=y, stratified=True)
    assert all(y[s == k].sum() == 4 for k in range(5))


def test_folds_by_id_do_not_depend_on_order():
    ids = [f"id-{i:03d}" for i in range(50)]
    a = folds.folds_by_id(ids, seed=3)
    b = folds.folds_by_id(list(reversed(ids)), seed=3)
    assert a == b and set(a.values()) == set(range(5))


def test_assign_folds_schemes():
    task = TASKS["matbench_jdft2d"]
    order = [f"mb-jdft2d-{i:03d}" for i in range(1, 637)]
    loaded = LoadedTask(task, [], [], order, np.zeros(636))
    got = folds.assign_folds(loaded)
    assert [got[i] for i in order] == folds.matbench_fold_index(636).tolist()
    ub = LoadedTask(TASKS["supercon"], [], [], [f"u-{i}" for i in range(20)], np.zeros(20))
    assert list(folds.assign_folds(ub).values()) == folds.fold_index(20, 42).tolist()


def test_split_indices():
    ids = ["a", "b", "c", "d"]
    tr, te = folds.split_indices(ids, {"a": 0, "b": 1, "c": 0, "d": 2}, 0)
    assert tr == [1, 3] and te == [0, 2]


def test_export_folds_csv(tmp_path, rocksalt, fcc_primitive):
    from crystograph.structures import StructureRecord

    task = TASKS["local_supercon"]
    structures = [rocksalt, fcc_primitive] * 5
    recs = [StructureRecord(f"r{i}", s, {task.target: float(i)}, f"x:{i}") for i, s in enumerate(structures)]
    loaded = LoadedTask(task, recs, [], [r.id for r in recs], np.arange(10.0))
    path = folds.export_folds_csv(task, tmp_path / "f.csv", loaded=loaded, seed=0)
    df = pd.read_csv(path)
    assert list(df.columns) == ["id", "cif", "target", "fold"]
    assert len(df) == 10 and sorted(df["fold"].value_counts().tolist()) == [2] * 5
    assert df["fold"].tolist() == [folds.folds_by_id(loaded.order, 0)[i] for i in df["id"]]
    from pymatgen.core import Structure

    assert Structure.from_str(df["cif"][0], fmt="cif").composition == rocksalt.composition
