"""Command line: `crystograph graph | train | predict | models | bench | ablate | pretrain | demo`.

Every command takes `--config FILE.yaml` whose keys are the command's option names (with `-` or
`_`; a run's own config.yaml works too); flags given on the command line override it. User errors
print one line naming the input and the reason (no traceback).

Exit codes (every command):
  0  done; inputs that could not be used are listed, counted and skipped
  1  nothing to do: every input was skipped (no output written)
  2  stopped on an error: a bad option, config, input or output path, a run that cannot be
     used, training that failed, or (`--strict`) the first bad input
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from crystograph.cli_common import (
    ATOM_EMBEDDINGS_HELP,
    FINETUNE_HELP,
    GRAPH_WORKERS_HELP,
    PE_MODE_HELP,
    RECURSIVE_HELP,
    SPECIES_HELP,
    ConfigOption,
    HeadDimOption,
    HiddenDimOption,
    NEtgcOption,
    NGwtOption,
    NumHeadsOption,
    _check_output,
    _check_targets,
    _nothing_left,
    _positive,
    _read,
    _sizes,
    _strict_exit,
    app,
    check_atom_embeddings,
    out,
    report_skipped,
    user_errors,
)
from crystograph.config import ModelConfig, PretrainConfig, TrainConfig
from crystograph.errors import CrystographError, InputError, Skipped


# ----------------------------------------------------------------------------------------------- graph
@app.command()
@user_errors
def graph(
    paths: list[Path] = typer.Argument(..., help="Structure files, folders or tables."),
    fmt: Optional[str] = typer.Option(None, "--format", help="Input format (default: from the file name)."),
    cif_column: str = typer.Option("cif", help="CIF column of CSV inputs."),
    id_column: Optional[str] = typer.Option(None, help="Id column of tabular inputs."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per structure on stdout, one per line."),
    recursive: bool = typer.Option(False, help=RECURSIVE_HELP),
    poscar_species: Optional[str] = typer.Option(None, help=SPECIES_HELP),
    strict: bool = typer.Option(False, help="Stop at the first bad input (exit 2)."),
    config: Optional[Path] = ConfigOption,
):
    """Build CrysToGraph graphs and print atoms, edges, line edges, neighbour distances, build time."""
    from crystograph.config import GraphConfig
    from crystograph.data.parallel import failure_reason
    from crystograph.graphs import build_graph, graph_summary

    records, skipped, ignored = _read(paths, fmt, None, id_column, cif_column, strict, recursive, poscar_species)
    cfg = GraphConfig()
    rows = []
    for record in records:
        started = time.perf_counter()
        try:
            g = build_graph(record.structure, cfg, source=record.source)
        except CrystographError as err:
            if strict:
                raise
            skipped.append(Skipped(getattr(err, "source", record.source), getattr(err, "reason", str(err))))
            continue
        except Exception as err:  # a bug or an odd structure: reported against the file, as `build_graphs` does
            reason = failure_reason(err)
            if strict:
                raise InputError(record.source, reason) from err
            skipped.append(Skipped(record.source, reason))
            continue
        row = {"id": record.id, "source": record.source, **graph_summary(g),
               "build_ms": 1000 * (time.perf_counter() - started)}
        rows.append(row)
        if as_json:  # NaN (no neighbours) is not JSON: null
            typer.echo(json.dumps({k: None if isinstance(v, float) and v != v else v for k, v in row.items()}))
    if not as_json and rows:
        table = Table(title="crystal graphs")
        for key in rows[0]:
            table.add_column(key, overflow="fold")
        for row in rows:
            table.add_row(*[f"{v:.3f}" if isinstance(v, float) else str(v) for v in row.values()])
        out.print(table)
    report_skipped(skipped, len(rows) + len(skipped), "structures", ignored)
    _strict_exit(skipped, strict)
    _nothing_left(len(rows), skipped)


# ----------------------------------------------------------------------------------------------- train
@app.command()
@user_errors
def train(
    data: list[Path] = typer.Argument(..., help="Training data: CSV with a CIF column, CGCNN folder, ASE db, …"),
    target: list[str] = typer.Option(..., "--target", help="Target column(s)."),
    out_dir: Path = typer.Option(..., "--out", help="Run directory (checkpoints, config, predictions)."),
    folds: int = typer.Option(1, min=1, help="k-fold cross-validation (1 = one held-out test split)."),
    preset: str = typer.Option("small", help="Model size: small (CPU) | paper (Table A1)."),
    layout: str = typer.Option("stacked", help="stacked | gwt_first | parallel | no_gwt | gwt_only | no_line_graph"),
    n_etgc: Optional[int] = NEtgcOption,
    n_gwt: Optional[int] = NGwtOption,
    hidden_dim: Optional[int] = HiddenDimOption,
    num_heads: Optional[int] = NumHeadsOption,
    head_dim: Optional[int] = HeadDimOption,
    precision: str = typer.Option("fp32", help="fp32 | bf16 (eTGC/GwT products under bfloat16 autocast; ~2x "
                                  "faster on CPUs with bf16 units; atom/edge streams and head fp32, line "
                                  "features bf16)."),
    task: str = typer.Option("regression", help="regression | classification"),
    ensemble: int = typer.Option(1, min=1, help="Models per fold with different seeds (mean ± std)."),
    epochs: Optional[int] = typer.Option(None, min=1, help="Maximum epochs (a reproducible budget; default: the "
                                         "preset's, Table A1's 300)."),
    max_minutes: Optional[float] = typer.Option(
        None, callback=_positive, help="Wall-clock budget per fitted model. Not reproducible, even with "
        "--deterministic: the learning-rate schedule and the stopping point follow the clock (machine load); "
        "use --epochs or --max-steps (model.json records the steps a run took) to reproduce a run."),
    max_steps: Optional[int] = typer.Option(None, min=1, help="Optimiser-step budget per fitted model "
                                            "(reproducible; the schedule anneals over it)."),
    batch_size: int = typer.Option(TrainConfig.batch_size, min=1),
    lr: Optional[float] = typer.Option(None, callback=_positive, help="AdamW learning rate (default: the preset's; "
                                       "paper = Table A1's 1e-4, small = 1e-3)."),
    weight_decay: float = typer.Option(TrainConfig.weight_decay, help="AdamW weight decay (paper A.7: 1e-2 when "
                                                                      "overfitting)."),
    dropout: float = typer.Option(ModelConfig.dropout, help="Dropout on attention weights and inside the FFNs."),
    patience: int = typer.Option(TrainConfig.patience, min=0, help="Early-stopping patience (epochs; 0 = off)."),
    seed: int = typer.Option(0),
    pe_mode: str = typer.Option("laplacian+rw", help=PE_MODE_HELP),
    frame: str = typer.Option("canonical", help="Frame of the edge angles: canonical (the crystal's own; "
                              "same prediction in any orientation/cell) | lab (the file's frame, as in the paper)."),
    cell: str = typer.Option("as_given", help="Cell the graph is built on: as_given (the file's, as in the paper; "
                             "a conventional cell or supercell gets other positional encodings) | primitive "
                             "(spglib's primitive cell first: every cell of a crystal gives one graph)."),
    atom_embeddings: Optional[str] = typer.Option(None, help=ATOM_EMBEDDINGS_HELP),
    finetune_embeddings: bool = typer.Option(False, "--finetune-embeddings/--freeze-embeddings",
                                             help=FINETUNE_HELP),
    device: str = typer.Option("auto", help="auto | cpu | gpu | mps"),
    devices: int = typer.Option(1, help="Processes/GPUs (Lightning DDP when > 1)."),
    num_nodes: int = typer.Option(1, help="Machines in a multi-node DDP job (torchrun / SLURM)."),
    strategy: str = typer.Option("auto", help="Lightning strategy, e.g. ddp."),
    deterministic: bool = typer.Option(False, help="Deterministic algorithms (reproducible CPU runs)."),
    fmt: Optional[str] = typer.Option(None, "--format"),
    cif_column: str = typer.Option("cif"),
    id_column: Optional[str] = typer.Option(None),
    recursive: bool = typer.Option(False, help=RECURSIVE_HELP),
    poscar_species: Optional[str] = typer.Option(None, help=SPECIES_HELP),
    strict: bool = typer.Option(False, help="Stop at the first bad input (exit 2)."),
    stream_graphs: bool = typer.Option(False, help="Keep the graphs on disk (a graph store in the cache) and read "
                                       "each batch from there: memory no longer grows with the dataset."),
    graph_workers: int = typer.Option(0, min=0, help=GRAPH_WORKERS_HELP),
    progress: bool = typer.Option(True, help="Progress bars."),
    config: Optional[Path] = ConfigOption,
):
    """Train CrysToGraph on structures with a target property (holdout or k-fold CV, ensembles)."""
    import dataclasses

    from crystograph.config import GraphConfig, ModelConfig, TrainConfig
    from crystograph.data import build_graphs
    from crystograph.data.coremof import default_cache_dir
    from crystograph.train.checks import check_sizes, check_train_config
    from crystograph.train.run import RunOptions, train_run

    graph_cfg = GraphConfig(pe_mode=pe_mode, frame=frame, cell=cell)
    model_cfg = ModelConfig.preset(preset, layout=layout, task=task, n_targets=len(target), graph=graph_cfg,
                                   **_sizes(n_etgc=n_etgc, n_gwt=n_gwt, hidden_dim=hidden_dim, num_heads=num_heads,
                                            head_dim=head_dim),
                                   dropout=dropout, precision=precision,
                                   atom_embedding_path=atom_embeddings, atom_embedding_trainable=finetune_embeddings)
    preset_defaults = {k: v for k, v in (("lr", lr), ("epochs", epochs)) if v is not None}
    train_cfg = TrainConfig.preset(preset, weight_decay=weight_decay, batch_size=batch_size, max_minutes=max_minutes,
                                   max_steps=max_steps, patience=patience, folds=folds, ensemble=ensemble, seed=seed,
                                   accelerator=device, devices=devices, num_nodes=num_nodes, strategy=strategy,
                                   deterministic=deterministic, **preset_defaults)
    check_train_config(train_cfg)  # options and output location before any work
    check_atom_embeddings(atom_embeddings, finetune_embeddings)
    _check_targets(target)
    _check_output(out_dir, folder=True)
    records, skipped, ignored = _read(data, fmt, target, id_column, cif_column, strict, recursive, poscar_species)
    graphs, graph_skipped = build_graphs(records, graph_cfg, targets=target, cache_dir=default_cache_dir() / "graphs",
                                         progress=progress, strict=strict, workers=graph_workers,
                                         store_dir=default_cache_dir() / "stores" if stream_graphs else None)
    del records  # with --stream-graphs the parsed structures are the last per-structure objects in memory
    skipped += graph_skipped
    report_skipped(skipped, len(graphs) + len(skipped), "structures", ignored)
    _strict_exit(skipped, strict)
    check_sizes(len(graphs), train_cfg)
    options = RunOptions(data=[str(p) for p in data], targets=list(target))
    result = train_run(graphs, out_dir, model_cfg, dataclasses.replace(train_cfg), options, progress=progress)
    table = Table(title=f"{', '.join(target)} — {'%d-fold CV' % folds if folds > 1 else 'held-out test'}")
    for col in ("fold", "MAE", "mean-predictor MAE"):
        table.add_column(col)
    for i, (mae, dummy) in enumerate(zip(result.fold_mae, result.dummy_mae)):
        table.add_row(str(i), f"{mae:.4g}", f"{dummy:.4g}")
    table.add_row("mean", f"{result.mean_mae:.4g}", f"{result.mean_dummy_mae:.4g}")
    out.print(table)
    out.print(f"wall time {result.wall_s:.0f} s; run directory {out_dir} (parity.png, predictions.csv, config.yaml)")


from crystograph import cli_models  # noqa: E402,F401  (registers `predict` and `models` on app, in this place)


# ----------------------------------------------------------------------------------------------- pretrain
@app.command()
@user_errors
def pretrain(
    data: list[Path] = typer.Argument(..., help="Structures to pretrain on (any supported format)."),
    out_dir: Path = typer.Option(..., "--out", help="Output folder (atom_embeddings.safetensors, pretrain.json)."),
    embed_dim: int = typer.Option(PretrainConfig.embed_dim, min=1, help="Width of the learned atom embedding."),
    epochs: int = typer.Option(PretrainConfig.epochs, min=1),
    max_minutes: Optional[float] = typer.Option(None, callback=_positive,
                                                help="Wall-clock budget (not reproducible: use --epochs for that)."),
    batch_size: int = typer.Option(PretrainConfig.batch_size, min=1),
    lr: float = typer.Option(PretrainConfig.lr, callback=_positive),
    seed: int = typer.Option(0),
    device: str = typer.Option("auto"),
    fmt: Optional[str] = typer.Option(None, "--format"),
    cif_column: str = typer.Option("cif"),
    id_column: Optional[str] = typer.Option(None),
    recursive: bool = typer.Option(False, help=RECURSIVE_HELP),
    poscar_species: Optional[str] = typer.Option(None, help=SPECIES_HELP),
    strict: bool = typer.Option(False, help="Stop at the first bad input (exit 2)."),
    graph_workers: int = typer.Option(0, min=0, help=GRAPH_WORKERS_HELP),
    progress: bool = typer.Option(True),
    config: Optional[Path] = ConfigOption,
):
    """Masked-atom pretraining (15 % masked, 80/10/10); fine-tune with
    `train --atom-embeddings OUT/atom_embeddings.safetensors`."""
    from crystograph.data.coremof import default_cache_dir
    from crystograph.pretrain import pretrain as run_pretraining

    _check_output(out_dir, folder=True)
    records, skipped, ignored = _read(data, fmt, None, id_column, cif_column, strict, recursive, poscar_species)
    if not records:
        report_skipped(skipped, len(skipped), "structures", ignored)
        _nothing_left(0, skipped)
    result = run_pretraining(records, out_dir, embed_dim=embed_dim, epochs=epochs, max_minutes=max_minutes,
                             batch_size=batch_size, lr=lr, seed=seed, progress=progress, accelerator=device,
                             strict=strict, cache_dir=default_cache_dir() / "graphs", read_skipped=skipped,
                             graph_workers=graph_workers)
    n_read_skipped = len(skipped)
    skipped = list(result.skipped)  # read failures first, then cell expansion and graph failures
    report_skipped(skipped, len(records) + n_read_skipped, "structures", ignored)
    table = Table(title="masked-atom pretraining (validation)")
    for col in ("accuracy", "accuracy on [MASK] atoms", "majority-class baseline", "epochs", "train / val"):
        table.add_column(col)
    table.add_row(f"{result.accuracy:.3f}", f"{result.accuracy_mask_token:.3f}", f"{result.baseline_accuracy:.3f}",
                  str(result.epochs), f"{result.n_train} / {result.n_val}")
    out.print(table)
    out.print(f"atom embeddings: {result.embedding_path} — fine-tune with `crystograph train … --atom-embeddings "
              f"{result.embedding_path}`")
    _strict_exit(skipped, strict)


# ----------------------------------------------------------------------------------------------- demo
@app.command()
@user_errors
def demo(
    prop: str = typer.Option("LCD", help="CoRE MOF 2019 property (LCD = largest cavity diameter, Å)."),
    max_atoms: int = typer.Option(40, help="Keep cells with at most this many atoms (CPU-sized)."),
    limit: Optional[int] = typer.Option(None, help="At most this many structures."),
    max_minutes: float = typer.Option(4.0, help="Training budget in minutes."),
    epochs: Optional[int] = typer.Option(None, help="Cap on epochs (default: the preset's; the budget usually "
                                                    "stops training first)."),
    out_dir: Path = typer.Option(Path("runs/demo"), "--out", help="Run directory."),
    preset: str = typer.Option("small"),
    seed: int = typer.Option(0),
    graph_workers: int = typer.Option(0, min=0, help=GRAPH_WORKERS_HELP),
    progress: bool = typer.Option(True),
    config: Optional[Path] = ConfigOption,
):
    """Train and evaluate on the embedded default data: CoRE MOF 2019 (PyPI package core-mof)."""
    from crystograph.config import GraphConfig, ModelConfig, TrainConfig
    from crystograph.data import build_graphs
    from crystograph.data.coremof import default_cache_dir, load_coremof
    from crystograph.train.run import RunOptions, train_run

    started = time.monotonic()
    out.print(f"[bold]crystograph demo[/]: CoRE MOF 2019 (ASR), target {prop}, cells ≤ {max_atoms} atoms")
    data = load_coremof(prop=prop, max_atoms=max_atoms, limit=limit, progress=progress)
    report_skipped(list(data.skipped), len(data.records) + len(data.skipped), "MOFs")
    graph_cfg = GraphConfig()
    graphs, skipped = build_graphs(data.records, graph_cfg, targets=[prop], cache_dir=default_cache_dir() / "graphs",
                                   progress=progress, workers=graph_workers)
    report_skipped(skipped, len(graphs) + len(skipped), "graphs")
    model_cfg = ModelConfig.preset(preset, graph=graph_cfg)
    train_cfg = TrainConfig.preset(preset, max_minutes=max_minutes, patience=30, seed=seed,
                                   **({"epochs": epochs} if epochs else {}))
    result = train_run(graphs, out_dir, model_cfg, train_cfg, RunOptions(data=["core-mof:2019-ASR"], targets=[prop],
                                                                         test_fraction=0.15), progress=progress)
    table = Table(title=f"CoRE MOF 2019 {prop}: held-out test set ({int(0.15 * len(graphs))} MOFs)")
    table.add_column("model")
    table.add_column("test MAE")
    table.add_row("CrysToGraph", f"{result.mean_mae:.3f}")
    table.add_row("mean predictor", f"{result.mean_dummy_mae:.3f}")
    out.print(table)
    curve = out_dir / "fold_0/member_0/learning_curve.png"
    out.print(f"parity plot: {out_dir / 'parity.png'}; learning curve: {curve}")
    out.print(f"total wall time {time.monotonic() - started:.0f} s")


from crystograph import cli_bench  # noqa: E402,F401  (registers `bench` and `ablate` on app)


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
