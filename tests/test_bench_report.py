"""Results table: paper rows, our rows under them, bold best per row, README markers."""

from __future__ import annotations

import json

from crystograph.bench import report
from tests.conftest import bench_script

make_table = bench_script("make_table")


def _result(tmp_path, task, model, mean, folds=5, budget=3.0, gpu=None, commit=""):
    data = {"task": task, "model": model, "metric": "MAE", "mean": mean, "std": 0.1,
            "versions": {"git_commit": commit},
            "folds": [{"fold": k, "score": mean} for k in range(folds)], "n_samples": 636,
            "budget_minutes_per_fold": None if model == "dummy" else budget,
            "hardware": {"gpu": gpu, "cpu_cores_usable": 2}}
    (tmp_path / f"{task}__{model}.json").write_text(json.dumps(data))


def test_table_rows_and_bold(tmp_path):
    _result(tmp_path, "local_matbench_jdft2d", "crystograph-small", 45.0)
    _result(tmp_path, "local_matbench_jdft2d", "cgcnn", 50.0, folds=3)
    _result(tmp_path, "local_matbench_jdft2d", "dummy", 67.2)
    _result(tmp_path, "local_bulk_s", "dummy", 1.0)
    text = report.make_table(tmp_path)
    lines = text.splitlines()
    paper = next(line for line in lines if line.startswith("| jdft2d |"))
    assert "paper, GPU, full data" in paper and "**32.3720**" in paper
    ours = next(line for line in lines if "local_matbench_jdft2d" in line)
    assert "ours, CPU (2 cores), budget 3 min/fold" in ours and "exact copy of MatBench matbench_jdft2d" in ours
    assert "**45.0000**" in ours and "50.0000†" in ours and "67.2000" in ours
    assert lines.index(ours) == lines.index(paper) + 1
    assert "| mp_is_metal |" in text and "**0.9520**" in text  # ROC-AUC: higher is better
    assert "Other tasks" in text and "local_bulk_s" in text and "stand-in for UnconvBench bulk_s" in text


def test_update_readme_between_markers(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# B\n\nintro\n\n{make_table.START}\nold\n{make_table.END}\n\nfooter\n")
    make_table.update_readme(readme, "| new |\n")
    text = readme.read_text()
    assert "old" not in text and "| new |" in text and text.endswith("footer\n") and "intro" in text
    make_table.update_readme(readme, "| newer |\n")
    assert readme.read_text().count(make_table.START) == 1


def test_glance_table_counts_wins_among_complete_models(tmp_path):
    _result(tmp_path, "local_matbench_jdft2d", "crystograph-small", 45.0)
    _result(tmp_path, "local_matbench_jdft2d", "cgcnn", 50.0)
    _result(tmp_path, "local_matbench_jdft2d", "alignn", 60.0)
    _result(tmp_path, "local_matbench_jdft2d", "dummy", 67.2)
    _result(tmp_path, "local_supercon", "crystograph-small", 3.0)
    _result(tmp_path, "local_supercon", "cgcnn", 2.9)
    _result(tmp_path, "local_supercon", "alignn", 3.5)
    _result(tmp_path, "local_perov5", "crystograph-small", 0.2)
    _result(tmp_path, "local_perov5", "cgcnn", 0.3)
    _result(tmp_path, "local_perov5", "alignn", 0.1, folds=3)  # incomplete: the task is not counted
    _result(tmp_path, "local_matbench_phonons", "alignn", 90.0)  # the others missing: not counted either
    text = report.glance_table(tmp_path, tasks=("local_matbench_jdft2d", "local_supercon", "local_perov5",
                                                "local_matbench_phonons", "local_c2db_gap"))
    rows = {line.split(" | ")[0].lstrip("| "): line for line in text.splitlines() if line.startswith("| local_")}
    assert rows["local_matbench_jdft2d"].count("crystograph-small") == 1 and "45 ± 0.1" in rows["local_matbench_jdft2d"]
    assert "| cgcnn |" in rows["local_supercon"]
    assert "0.1 ± 0.1 † (3 folds)" in rows["local_perov5"]
    assert "| crystograph-small |" not in rows["local_perov5"] and "| — |" in rows["local_perov5"]
    assert "| alignn |" not in rows["local_matbench_phonons"]
    assert "| — | — | — | — | — | — |" in rows["local_c2db_gap"]  # no results at all
    assert "best on 1 of 2" in text


def test_declared_configuration_is_counted_against_the_peers_alone(tmp_path):
    """A declared second configuration of ours gets its own column and its own count; neither of our rows is
    compared with the other, and the best of our two rows is never taken per task."""
    nolg = "crystograph-small-no_line_graph"
    for task, small, other, cgcnn in (("local_matbench_jdft2d", 45.0, 40.0, 42.0), ("local_supercon", 2.8, 3.0, 2.9)):
        _result(tmp_path, task, "crystograph-small", small, commit="1111aaaa2222")
        _result(tmp_path, task, nolg, other, commit="3333bbbb4444")
        _result(tmp_path, task, "cgcnn", cgcnn)
    text = report.glance_table(tmp_path, tasks=("local_matbench_jdft2d", "local_supercon"))
    assert "| CrysToGraph-small | CrysToGraph-small (no_line_graph layout) | CGCNN |" in text
    rows = {line.split(" | ")[0].lstrip("| "): line for line in text.splitlines() if line.startswith("| local_")}
    assert f"| {nolg} |" in rows["local_matbench_jdft2d"] and "| crystograph-small |" in rows["local_supercon"]
    assert ("CrysToGraph-small is best on 1 of 2; CrysToGraph-small (no_line_graph layout) is best on 1 of 2"
            in text)
    assert "no_line_graph" not in report.glance_table(tmp_path, ("local_supercon",), declared=())
    assert rows["local_supercon"].endswith("| 1111aaaa / 3333bbbb |")  # each of our rows names its commit
    assert "| CrysToGraph-small (no_line_graph layout) |" in report.epochs_table(tmp_path, ("local_supercon",))


def test_update_glance_only_between_markers(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# X\n{make_table.GLANCE_START}\nold\n{make_table.GLANCE_END}\ntail\n")
    make_table.update_glance(readme, "| t |\n")
    assert readme.read_text() == f"# X\n{make_table.GLANCE_START}\n| t |\n{make_table.GLANCE_END}\ntail\n"
    plain = tmp_path / "OTHER.md"
    plain.write_text("no markers\n")
    assert make_table.update_glance(plain, "| t |\n") is None and plain.read_text() == "no markers\n"


def test_top_readme_glance_is_the_fair_suite_when_it_has_results(tmp_path):
    for model, mean in (("crystograph-small", 45.0), ("cgcnn", 50.0), ("dummy", 67.2)):
        _result(tmp_path, "local_matbench_jdft2d", model, mean)
    top, readme = tmp_path / "TOP.md", tmp_path / "B.md"
    top.write_text(f"{make_table.GLANCE_START}\nold\n{make_table.GLANCE_END}\n")
    readme.write_text("# B\n")
    args = ["--results", str(tmp_path), "--readme", str(readme), "--top-readme", str(top)]
    assert make_table.main(args) == 0
    assert "45 ± 0.1" in top.read_text() and "run_fair_suite.sh" not in top.read_text()  # no fair runs yet
    (tmp_path / "fair").mkdir()
    for model, mean in (("crystograph-small", 40.0), ("cgcnn", 30.0), ("dummy", 67.2)):
        _result(tmp_path / "fair", "local_matbench_jdft2d", model, mean)
    assert make_table.main(args) == 0
    text = top.read_text()
    assert "run_fair_suite.sh" in text and "30 ± 0.1" in text and "45 ± 0.1" not in text
    assert (tmp_path / "plots" / "fair_summary.png").is_file()


def test_budget_and_converged_rows_are_labelled(tmp_path):
    _result(tmp_path, "local_matbench_jdft2d", "crystograph-small", 45.0)
    conv = tmp_path / "converged"
    conv.mkdir()
    data = {"task": "local_matbench_jdft2d", "model": "crystograph-small", "protocol": "converged", "metric": "MAE",
            "mean": 35.5, "std": 1.2, "ensemble": 3, "epoch_cap": 300, "patience": 50, "precision": "fp32",
            "train_config": {"weight_decay": 0.01}, "budget_minutes_per_fold": None, "n_samples": 636,
            "hardware": {"gpu": None, "cpu_cores_usable": 2}, "versions": {"git_commit": "abcdef1234"},
            "folds": [{"fold": k, "score": 35.5, "members": [{"epochs": 120 + k}, {"epochs": 150}]}
                      for k in range(5)]}
    (conv / "local_matbench_jdft2d__crystograph-small.json").write_text(json.dumps(data))
    analysis = {"task": "local_matbench_jdft2d", "model": "crystograph-small", "protocol": "converged",
                "mean": 35.5, "folds": [{"fold": 0, "best_epoch": 3}]}  # converged_analysis.py: not a run
    (conv / "analysis_local_matbench_jdft2d__crystograph-small.json").write_text(json.dumps(analysis))
    main = report.make_table(tmp_path)
    assert "budget 3 min/fold" in main and "converged" not in main  # the subfolder is not mixed in
    assert "converged: early stopping, ≤ 300 epochs, ensemble 3" in report.make_table(conv)
    assert "Protocol: budget, 3 min" in report.glance_table(tmp_path, ("local_matbench_jdft2d",))
    text = report.converged_table(conv)
    rows = {line.split(" | ")[0].lstrip("| "): line for line in text.splitlines() if line.startswith("| local_")}
    assert sum(line.startswith("| local_matbench_jdft2d") for line in text.splitlines()) == 1
    jd = rows["local_matbench_jdft2d (jdft2d, meV/atom)"]
    assert "35.50 ± 1.20" in jd and "ensemble 3" in jd and "120–150" in jd and "32.37" in jd and "43.42" in jd
    assert "49.24" in jd and "abcdef12" in jd
    ph = rows["local_matbench_phonons (phonons, cm⁻¹)"]
    assert "not yet run" in ph and "28.40" in ph and "29.54" in ph and "57.76" in ph
    assert "not yet run" in rows["local_supercon (supercon, K)"] and "2.64" in rows["local_supercon (supercon, K)"]
    # the README block is written between its own markers, and refreshed in place
    readme = tmp_path / "README.md"
    readme.write_text("# B\n")
    make_table.update_readme(readme, "| t |\n", converged=text)
    make_table.update_readme(readme, "| t |\n", converged=text)
    assert readme.read_text().count(make_table.CONVERGED_START) == 1 and "## Converged protocol" in readme.read_text()


def test_commit_shown_is_the_folds_own():
    """A result whose folds were loaded from disk names the commits that trained them, not the reloading run's."""
    base = {"versions": {"git_commit": "ffff0000aaaa"}}
    assert report._commit(base) == "ffff0000"  # an older JSON without per-fold commits: the invocation's
    assert report._commit({**base, "fold_commits": {"0": "1234567890ab", "1": "1234567890ab"}}) == "12345678"
    assert report._commit({**base, "fold_commits": {"0": "1234567890ab", "1": "abcdef"}}) == "2 commits"
    assert report._commit({**base, "fold_commits": {"0": None, "1": None}}) == "unknown"
    assert report._commit({**base, "fold_commits": {"0": "1234567890ab", "1": None}}) == "1 known + unknown"
    assert report._commit({**base, "fold_commits": {"0": "1234567890ab-dirty"}}) == "12345678-dirty"


def test_epochs_table_shows_each_models_range(tmp_path):
    """Epochs per fold (min–max, ensemble members included) per task and model; '—' where there is no result."""
    for model, epochs in (("crystograph-small", [[18], [21], [22, 19]]), ("cgcnn", [[81], [146], [90]])):
        data = {"task": "local_supercon", "model": model, "metric": "MAE", "mean": 3.0, "std": 0.1,
                "budget_minutes_per_fold": 2.0, "hardware": {},
                "folds": [{"fold": k, "score": 3.0, "members": [{"epochs": e} for e in ep]}
                          for k, ep in enumerate(epochs)]}
        (tmp_path / f"local_supercon__{model}.json").write_text(json.dumps(data))
    text = report.epochs_table(tmp_path, ("local_supercon", "local_perov5"))
    assert "| local_supercon | 18–22 | 81–146 | — | — |" in text
    assert "| local_perov5 | — | — | — | — |" in text


def test_git_commit_outside_a_checkout_reads_the_environment(tmp_path, monkeypatch):
    """A copy of the tree without .git (another machine) records $CRYSTOGRAPH_GIT_COMMIT, else None; inside the
    repository the checkout's own HEAD wins."""
    from crystograph.bench.meta import git_commit

    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))  # git must not find a repo above tmp_path
    monkeypatch.delenv("CRYSTOGRAPH_GIT_COMMIT", raising=False)
    assert git_commit(tmp_path) is None
    monkeypatch.setenv("CRYSTOGRAPH_GIT_COMMIT", "0123456789abcdef")
    assert git_commit(tmp_path) == "0123456789abcdef"
    inside = git_commit()
    assert inside is None or inside.split("-")[0] != "0123456789abcdef"


def test_git_commit_dirty_counts_code_not_results_or_docs(tmp_path, monkeypatch):
    """A run's own result files, documentation and figures leave the commit clean; a code or config change under
    any folder (the check runs from a subfolder) makes it -dirty."""
    import subprocess

    from crystograph.bench.meta import git_commit

    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    files = {"pkg/model.py": "x = 1\n", "pkg/cfg.yaml": "a: 1\n", "bench/results/t__m.json": "{}\n",
             "README.md": "# r\n", "bench/plot.png": "png"}
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(tmp_path)]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "init"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    sub = tmp_path / "bench"
    for name in ("bench/results/t__m.json", "README.md", "bench/plot.png"):
        (tmp_path / name).write_text("changed\n")
    assert git_commit(sub) == head
    (tmp_path / "pkg/cfg.yaml").write_text("a: 2\n")
    assert git_commit(sub) == head + "-dirty"


def test_fair_paired_compares_fold_by_fold(tmp_path):
    """Per-fold ratios on the folds both models finished; the verdict needs mean ± std clear of 1."""
    paired = bench_script("fair_paired")
    ours = {"folds": [{"fold": k, "score": s} for k, s in enumerate((1.0, 2.0, 3.0, 4.0))]}
    peer = {"folds": [{"fold": k, "score": s} for k, s in enumerate((2.0, 2.5, 3.5, 5.0, 9.0))]}
    res = paired.paired(ours, peer)
    assert res["folds"] == [0, 1, 2, 3] and res["folds_ours_lower"] == 4
    assert abs(res["ratio_mean"] - (0.5 + 0.8 + 3 / 3.5 + 0.8) / 4) < 1e-12 and res["verdict"] == "ours lower"
    noisy = {"folds": [{"fold": k, "score": s} for k, s in enumerate((1.0, 4.0, 2.0, 8.0))]}
    assert paired.paired(noisy, peer)["verdict"] == "within noise"
    for model, mean in (("crystograph-small", 40.0), ("cgcnn", 50.0), ("alignn", 60.0)):
        _result(tmp_path, "local_supercon", model, mean)
    assert paired.main(["--results", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "paired.json").read_text())
    assert data["paired"]["local_supercon"]["crystograph-small"]["cgcnn"]["ratio_mean"] == 0.8
    assert set(data["paired"]["local_supercon"]["crystograph-small"]) == {"cgcnn", "alignn"}


def test_process_commit_is_taken_once(monkeypatch):
    """A long run names the code it imported: the commit is read at the first call and kept, so a fold that ends
    after an edit or a new commit does not name that later tree."""
    from crystograph.bench import meta

    monkeypatch.setattr(meta, "_PROCESS_COMMIT", [])
    answers = iter(["aaaa1111", "bbbb2222-dirty"])
    monkeypatch.setattr(meta, "git_commit", lambda start=None: next(answers))
    assert meta.process_commit() == "aaaa1111" and meta.process_commit() == "aaaa1111"
    assert meta.versions(())["git_commit"] == "aaaa1111"


def test_fair_paired_converged_layouts(tmp_path):
    """`--protocol converged --ours A --peers B` compares two converged models of ours and skips budget runs."""
    paired = bench_script("fair_paired")
    for model, scores in (("crystograph-small", (40.0, 20.0)), ("crystograph-small-no_line_graph", (30.0, 25.0))):
        data = {"task": "local_supercon", "model": model, "protocol": "converged", "metric": "MAE",
                "folds": [{"fold": k, "score": s} for k, s in enumerate(scores)]}
        (tmp_path / f"local_supercon__{model}.json").write_text(json.dumps(data))
    _result(tmp_path, "local_matbench_jdft2d", "crystograph-small", 1.0)  # budget: not compared
    _result(tmp_path, "local_matbench_jdft2d", "crystograph-small-no_line_graph", 2.0)
    args = ["--results", str(tmp_path), "--protocol", "converged", "--ours", "crystograph-small-no_line_graph",
            "--peers", "crystograph-small"]
    assert paired.main(args) == 0
    table = json.loads((tmp_path / "paired.json").read_text())["paired"]
    assert list(table) == ["local_supercon"]
    assert table["local_supercon"]["crystograph-small-no_line_graph"]["crystograph-small"]["ratio_per_fold"] == [
        0.75, 1.25]
