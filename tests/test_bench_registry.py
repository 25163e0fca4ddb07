"""Task registry: the paper's MatBench and UnconvBench tasks, and the offline stand-ins."""

from __future__ import annotations

import re

import pytest

from tests.conftest import shared_file
from crystograph.bench import registry
from crystograph.errors import InputError

PAPER_MATBENCH = {"matbench_jdft2d", "matbench_phonons", "matbench_dielectric", "matbench_log_gvrh",
                  "matbench_log_kvrh", "matbench_mp_e_form", "matbench_mp_gap", "matbench_mp_is_metal"}
PAPER_UNCONVBENCH = {"2d_e_exf", "2d_e_tot", "2d_gap", "co2_adsp", "qmof", "supercon", "defected", "src_bulk",
                     "bulk_s", "bulk_m", "bulk_l"}
LOCAL = {"local_matbench_jdft2d", "local_matbench_phonons", "local_supercon", "local_c2db_gap",
         "local_2dmatpedia_exf", "local_jarvis_monolayers_phi", "local_perov5", "local_mp_e_form", "local_mp_gap",
         "local_bulk_s", "local_bulk_m", "local_bulk_l", "local_qmof_gap"}
ABLATION = {"paper_bulk_s", "paper_bulk_m", "paper_bulk_l", "mp_e_form_10pct"}  # tests/test_bench_study.py


def test_registry_is_complete():
    assert set(registry.MATBENCH_TASKS) == PAPER_MATBENCH
    assert set(registry.UNCONVBENCH_TASKS) == PAPER_UNCONVBENCH
    assert set(registry.LOCAL_TASKS) == LOCAL
    assert set(registry.ABLATION_TASKS) == ABLATION
    assert set(registry.TASKS) == PAPER_MATBENCH | PAPER_UNCONVBENCH | LOCAL | ABLATION


def test_table1_and_b2_sizes():
    sizes = {"2d_e_exf": 4527, "2d_e_tot": 3520, "2d_gap": 3520, "co2_adsp": 13765, "qmof": 5106, "supercon": 1058,
             "defected": 530, "src_bulk": 530, "bulk_s": 5000, "bulk_m": 5000, "bulk_l": 5000,
             "matbench_dielectric": 4764, "matbench_jdft2d": 636, "matbench_log_gvrh": 10987,
             "matbench_log_kvrh": 10987, "matbench_mp_e_form": 132752, "matbench_mp_gap": 106113,
             "matbench_mp_is_metal": 106113, "matbench_phonons": 1265}
    for name, n in sizes.items():
        assert registry.TASKS[name].expected_size == n, name


def test_task_fields_are_consistent():
    for task in registry.TASKS.values():
        assert task.metric in ("MAE", "ROC-AUC")
        assert (task.metric == "ROC-AUC") == (task.task_type == "classification")
        assert task.source and task.unit
        if task.benchmark == "local":
            assert task.file and task.id_column and task.url is None
        if task.benchmark == "MatBench v0.1":
            assert task.url == f"https://ml.materialsproject.org/projects/{task.name}.json.gz"
            assert re.fullmatch(r"[0-9a-f]{64}", task.sha256)
            assert task.fold_scheme == "matbench"
        if task.benchmark == "UnconvBench":
            assert task.url is None and "not verified" in task.notes  # no invented URLs
            assert task.fold_scheme == "unconvbench"
    assert registry.TASKS["matbench_mp_is_metal"].metric == "ROC-AUC"


def test_stand_in_labels():
    exact = {t.name for t in registry.TASKS.values() if t.exact}
    assert exact == {"local_matbench_jdft2d", "local_matbench_phonons"}
    assert registry.TASKS["local_matbench_jdft2d"].fold_column == "official_test_fold"
    assert not registry.TASKS["local_matbench_jdft2d"].is_stand_in
    for name in ("local_supercon", "local_c2db_gap", "local_2dmatpedia_exf", "local_mp_e_form", "local_mp_gap",
                 "local_bulk_s", "local_bulk_m", "local_bulk_l", "local_perov5", "local_qmof_gap"):
        task = registry.TASKS[name]
        assert task.is_stand_in and task.label().startswith("stand-in for"), name
    assert registry.TASKS["local_c2db_gap"].filters == (("cell_orthogonal", "==", True),)
    assert registry.TASKS["local_perov5"].target == "heat_ref"
    assert "UnconvBench qmof" not in (registry.TASKS["local_qmof_gap"].stand_in_for or "")
    assert registry.TASKS["local_jarvis_monolayers_phi"].stand_in_for is None


def test_resolve_groups_and_unknown():
    tasks = registry.resolve_tasks("local_supercon, matbench")
    assert tasks[0].name == "local_supercon" and len(tasks) == 9
    assert [t.name for t in registry.resolve_tasks(["local_supercon", "local_supercon"])] == ["local_supercon"]
    with pytest.raises(InputError, match="unknown task"):
        registry.get_task("matbench_nope")


@pytest.mark.shared_data
def test_local_files_and_columns_exist():
    import pandas as pd

    for name in registry.LOCAL_TASKS:
        task = registry.TASKS[name]
        path = shared_file(task.file)
        cols = set(pd.read_csv(path, nrows=2).columns)
        needed = {task.target, task.id_column, "cif"} | {f[0] for f in task.filters}
        if task.fold_column:
            needed.add(task.fold_column)
        assert needed <= cols, (name, needed - cols)
