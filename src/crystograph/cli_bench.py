"""`crystograph bench` and `crystograph ablate`: benchmark tasks and ablation studies (registered on `cli.app`)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from crystograph.cli_common import (
    ATOM_EMBEDDINGS_HELP,
    FINETUNE_HELP,
    PE_MODE_HELP,
    ConfigOption,
    HeadDimOption,
    HiddenDimOption,
    NEtgcOption,
    NGwtOption,
    NumHeadsOption,
    _positive,
    app,
    out,
    user_errors,
)


# ----------------------------------------------------------------------------------------------- bench
def _print_tasks() -> None:
    """One plain line per task (names are never truncated, whatever the terminal width)."""
    from crystograph.bench.registry import GROUPS, TASKS

    for t in TASKS.values():
        typer.echo(f"{t.name:30s} {t.benchmark:14s} {t.metric:7s} {t.unit:11s} {t.label()}")
    typer.echo("groups: " + ", ".join(f"{k} ({len(v)})" for k, v in GROUPS.items()))


def _export_folds(tasks: list[str], folder: Path, data_dir: Optional[Path], seed: int, limit: Optional[int],
                  progress: bool) -> None:
    from crystograph.bench.folds import export_folds_csv
    from crystograph.bench.registry import resolve_tasks

    for task in resolve_tasks(tasks):
        path = export_folds_csv(task, folder / f"{task.name}_folds.csv", data_dir=data_dir, seed=seed, limit=limit,
                                progress=progress)
        out.print(f"wrote {path}")


def _model_knobs(**knobs) -> dict:
    """Model-size / PE options of `bench` that were given: CrysToGraph is built with them and the results are named
    ``<model label>-<knob>_<value>…`` (settings equal to the preset's are left out; the runner checks them)."""
    return {k: v for k, v in knobs.items() if v is not None}


@app.command()
@user_errors
def bench(
    tasks: Optional[list[str]] = typer.Argument(None, help="Task names or groups (matbench, unconvbench, local, "
                                                           "local_small), or comma-separated; `--list` shows them."),
    list_tasks: bool = typer.Option(False, "--list", help="List the tasks and groups, then exit."),
    model: str = typer.Option("crystograph", help="crystograph | cgcnn (trained with its reference recipe: MSE, "
                                                  "SGD 0.01, lr ÷10 at epoch 100) | dummy"),
    preset: str = typer.Option("small", help="CrysToGraph size: small | paper."),
    layout: str = typer.Option("stacked", help="CrysToGraph layout or ablation."),
    n_etgc: Optional[int] = NEtgcOption,
    n_gwt: Optional[int] = NGwtOption,
    hidden_dim: Optional[int] = HiddenDimOption,
    num_heads: Optional[int] = NumHeadsOption,
    head_dim: Optional[int] = HeadDimOption,
    pe_mode: Optional[str] = typer.Option(None, help=PE_MODE_HELP + " (default: the preset's, laplacian+rw)."),
    cell: Optional[str] = typer.Option(None, help="Cell the graphs are built on: as_given (default, the paper's) | "
                                       "primitive (spglib's primitive cell first)."),
    folds: Optional[str] = typer.Option(None, help="N = folds 0..N-1; '0,3' or '3,' = those folds (default: all 5)."),
    max_minutes: Optional[float] = typer.Option(None, help="Budget protocol: training minutes per fold (per "
                                                           "ensemble member); default 3."),
    epochs: Optional[int] = typer.Option(None, help="Cap on epochs per fold (default: the preset's, Table A1's "
                                                    "300; under a budget the clock usually stops first)."),
    protocol: str = typer.Option("budget", help="budget (minutes per fold) | converged (until early stopping on "
                                                "the inner validation split, no clock; results in OUT/converged/)."),
    ensemble: int = typer.Option(1, help="Models per fold with seeds seed, seed+1, … (prediction = their mean)."),
    atom_embeddings: Optional[str] = typer.Option(None, help=ATOM_EMBEDDINGS_HELP + " --model crystograph."),
    finetune_embeddings: bool = typer.Option(False, "--finetune-embeddings/--freeze-embeddings",
                                             help=FINETUNE_HELP + " Recorded in the run's settings."),
    weight_decay: Optional[float] = typer.Option(None, help="Weight decay (paper A.7: 1e-2 when overfitting; "
                                                            "default: the model's recipe, 0)."),
    precision: str = typer.Option("fp32", help="fp32 | bf16 (--model crystograph)."),
    patience: Optional[int] = typer.Option(None, help="Early-stopping patience in epochs (default 50)."),
    loss: Optional[str] = typer.Option(None, help="l1 | mse on the standardised target (default: the model's "
                                                  "recipe, l1 for crystograph, mse for cgcnn)."),
    max_steps: Optional[int] = typer.Option(None, help="Optimiser steps per fit: a budget that does not depend on "
                                                       "the machine's load (the --max-minutes cap still applies)."),
    limit: Optional[int] = typer.Option(None, help="Use only the first N rows (smoke tests)."),
    data_dir: Optional[Path] = typer.Option(None, help="Folder with the local datasets "
                                                       "(default $CRYSTOGRAPH_SHARED_DATA)."),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="Results folder (<task>__<model>.json, plots/)."),
    run_dir: Optional[Path] = typer.Option(None, help="Per-fold files (default OUT/runs)."),
    export_folds: Optional[Path] = typer.Option(None, metavar="DIR", help="Write DIR/<task>_folds.csv (id, cif, "
                                                "target, fold) for an external baseline, then exit."),
    download: bool = typer.Option(True, help="Allow downloading MatBench files (--no-download: local files only)."),
    seed: int = typer.Option(0),
    device: str = typer.Option("auto"),
    strict: bool = typer.Option(False, help="Stop at the first bad record."),
    graph_workers: int = typer.Option(1, min=0, help="Processes that build the graphs (default 1, the benchmark's "
                                                     "share of the machine; 0: every usable core)."),
    progress: bool = typer.Option(True),
    config: Optional[Path] = ConfigOption,
):
    """Benchmark a model on MatBench / UnconvBench / local tasks; finished folds are never recomputed."""
    from crystograph.bench.runner import parse_folds, run_bench
    from crystograph.errors import InputError

    if list_tasks:
        _print_tasks()
        return
    if not tasks:
        raise InputError("TASKS", "name at least one task or group (`crystograph bench --list` shows them)")
    if export_folds is not None:
        _export_folds(tasks, export_folds, data_dir, seed, limit, progress)
        return
    if out_dir is None:
        raise InputError("--out", "name the results folder (benchmarks/run_bench.py uses the repository's)")
    knobs = _model_knobs(n_etgc=n_etgc, n_gwt=n_gwt, hidden_dim=hidden_dim, num_heads=num_heads, head_dim=head_dim,
                         pe_mode=pe_mode, cell=cell)
    results = run_bench(tasks, model=model, preset=preset, folds=parse_folds(folds), max_minutes=max_minutes,
                        data_dir=data_dir, out_dir=out_dir, strict=strict, layout=layout, run_dir=run_dir, seed=seed,
                        limit=limit, epochs=epochs, accelerator=device, allow_download=download, progress=progress,
                        protocol=protocol, ensemble=ensemble, atom_embeddings=atom_embeddings,
                        weight_decay=weight_decay, precision=precision, patience=patience,
                        finetune_embeddings=finetune_embeddings, max_steps=max_steps, model_overrides=knobs,
                        graph_workers=graph_workers, loss=loss)
    table = Table(title=f"benchmark: {model} ({protocol})")
    for col in ("task", "metric", "mean", "std", "folds"):
        table.add_column(col)
    for res in results:
        mean, std = res["mean"], res.get("std")
        table.add_row(res["task"], res["metric"], "n/a" if mean is None else f"{mean:.4g}",
                      "n/a" if std is None else f"{std:.3g}", str(len(res["folds"])))
    out.print(table)


# ----------------------------------------------------------------------------------------------- ablate
def _names(text: Optional[str]) -> Optional[list[str]]:
    """``"a, b"`` → ``["a", "b"]``; None when not given."""
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


@app.command()
@user_errors
def ablate(
    study_file: Path = typer.Argument(..., exists=True, dir_okay=False, help="Study YAML (benchmarks/studies/*.yaml)."),
    out_dir: Path = typer.Option(Path("studies"), "--out", help="Results folder: OUT/<study>.json, OUT/<study>.png, "
                                                                 "OUT/<study>/ (per-fold files)."),
    run_dir: Optional[Path] = typer.Option(None, help="Per-fold files and checkpoints: RUN_DIR/<study>/ "
                                                      "(default OUT/<study>/runs)."),
    data_dir: Optional[Path] = typer.Option(None, help="Folder with the local datasets "
                                                       "(default $CRYSTOGRAPH_SHARED_DATA)."),
    tasks: Optional[str] = typer.Option(None, help="Only these of the study's tasks (comma-separated)."),
    variants: Optional[str] = typer.Option(None, help="Only these variants (comma-separated; the reference is kept)."),
    reference: bool = typer.Option(True, help="--no-reference: with --variants, run only those (processes that split "
                                              "a study run the reference in one of them); the summary still reads "
                                              "the reference's results when present."),
    folds: Optional[str] = typer.Option(None, help="Override the study's folds: N = folds 0..N-1, or '0,3'."),
    max_minutes: Optional[float] = typer.Option(None, callback=_positive,
                                                help="Override the study's minutes per fold."),
    epochs: Optional[int] = typer.Option(None, min=1, help="Override the study's epoch cap per fold."),
    max_steps: Optional[int] = typer.Option(None, min=1, help="Override the study's optimiser-step cap per fold."),
    limit: Optional[int] = typer.Option(None, help="Use only the first N rows of each task (smoke tests)."),
    dry_run: bool = typer.Option(False, help="List the cells and the training budget, then exit."),
    download: bool = typer.Option(True, help="Allow downloading MatBench files (--no-download: local files only)."),
    device: str = typer.Option("auto"),
    progress: bool = typer.Option(True),
):
    """Run an ablation study (tasks × model variants × folds, one budget): a finished fold is never recomputed;
    writes OUT/<study>.json (per-fold MAE, mean, std, relative to the reference) and OUT/<study>.png."""
    import dataclasses

    from crystograph.bench.runner import _fold_list, parse_folds
    from crystograph.bench.study import load_study, run_study, select

    study = load_study(study_file)
    names = {"tasks": _names(tasks), "variants": _names(variants)}
    names["folds"] = None if folds is None else _fold_list(parse_folds(folds))
    budget = {"max_minutes": max_minutes, "epochs": epochs, "max_steps": max_steps}
    study = dataclasses.replace(study, **{k: v for k, v in budget.items() if v is not None})
    chosen = select(study, **names, keep_reference=reference)
    table = Table(title=f"study {study.name}: {len(chosen.tasks)} tasks × {len(chosen.variants)} variants × "
                        f"folds {chosen.folds}, {study.budget_text()}")
    for col in ("task", "variant", "model (cell)"):
        table.add_column(col, overflow="fold")
    for task, v in chosen.cells():
        table.add_row(task, v.name + (" (reference)" if v.name == study.reference else ""), v.label)
    out.print(table)
    if chosen.max_steps is not None:
        n_fits = len({(t, v.label) for t, v in chosen.cells()}) * len(chosen.folds)
        out.print(f"training budget: {n_fits} fits × {chosen.max_steps} steps (time depends on the machine; finished "
                  "folds are skipped)")
    else:
        out.print(f"training budget: ≤ {chosen.estimate_cpu_minutes():g} min (finished folds are skipped; data and "
                  "graph building not counted)")
    if dry_run:
        return
    doc = run_study(study, out_dir, **names, run_dir=run_dir, data_dir=data_dir, limit=limit, accelerator=device,
                    allow_download=download, command=" ".join(sys.argv), progress=progress, keep_reference=reference)
    result = Table(title=f"{study.name}: {study.reference}-relative MAE (mean ± std over folds)")
    for col in ("task", "variant", "MAE", "relative", "folds"):
        result.add_column(col)
    for r in doc["results"]:
        rel = r["relative"]
        result.add_row(r["task"], r["variant"], "n/a" if r["mean"] is None else f"{r['mean']:.4g} ± {r['std']:.2g}",
                       "n/a" if rel["mean"] is None else f"{rel['mean']:.3f} ± {rel['std']:.3f}", str(len(r["folds"])))
    out.print(result)
    out.print(f"wrote {Path(out_dir) / (study.name + '.json')}" + (f" and {doc['figure']}" if doc["figure"] else ""))
