"""`crystograph predict` and `crystograph models`: predictions of a trained run or a shipped model, and the
shipped models' cards (registered on `cli.app`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from crystograph.cli_common import (
    GRAPH_WORKERS_HELP,
    RECURSIVE_HELP,
    SPECIES_HELP,
    ConfigOption,
    _check_output,
    _nothing_left,
    _read,
    _strict_exit,
    app,
    console,
    out,
    report_skipped,
    user_errors,
)


# ----------------------------------------------------------------------------------------------- predict
@app.command()
@user_errors
def predict(
    inputs: list[Path] = typer.Argument(..., metavar="[RUN_DIR] STRUCTURES...",
                                        help="A run directory written by `crystograph train`, then structure files, "
                                        "folders or tables (only structures with --model)."),
    model_name: Optional[str] = typer.Option(None, "--model", help="A model shipped in the package instead of a "
                                             "run directory (`crystograph models` lists them)."),
    out_csv: Path = typer.Option(..., "--out", help="Predictions CSV (id, mean, std per target, out_of_domain)."),
    batch_size: int = typer.Option(64, min=1),
    device: str = typer.Option("auto"),
    fmt: Optional[str] = typer.Option(None, "--format"),
    cif_column: str = typer.Option("cif"),
    id_column: Optional[str] = typer.Option(None),
    allow_partial: bool = typer.Option(False, help="Predict with the finished models of an unfinished run."),
    recursive: bool = typer.Option(False, help=RECURSIVE_HELP),
    poscar_species: Optional[str] = typer.Option(None, help=SPECIES_HELP),
    strict: bool = typer.Option(False, help="Stop at the first bad input (exit 2; nothing written)."),
    graph_workers: int = typer.Option(0, min=0, help=GRAPH_WORKERS_HELP),
    config: Optional[Path] = ConfigOption,
):
    """Predict with a trained run or a shipped model (--model): ensemble mean and std per structure (std empty
    for a single model), and `out_of_domain` naming what the training data lacked (elements, cell sizes). The CSV
    is written only if there are predictions, atomically (an existing file is replaced whole, or kept)."""
    from crystograph import pretrained
    from crystograph.api import load_model
    from crystograph.train.export import write_atomic

    if model_name is not None:
        run_dir, structures = pretrained.model_dir(model_name), inputs  # an unknown name stops here
    elif len(inputs) < 2:
        raise typer.BadParameter("give a run directory and structure files, or --model NAME and structure files")
    else:
        run_dir, structures = inputs[0], inputs[1:]
    _check_output(out_csv, folder=False)
    model = load_model(run_dir, device=device, allow_partial=allow_partial)
    records, skipped, ignored = _read(structures, fmt, None, id_column, cif_column, strict, recursive, poscar_species)
    frame = model.predict_structures([r.structure for r in records], batch_size=batch_size,
                                     ids=[r.id for r in records], progress=True, graph_workers=graph_workers)
    skipped += frame.attrs.pop("skipped", [])
    report_skipped(skipped, len(frame) + len(skipped), "structures", ignored)
    _strict_exit(skipped, strict)
    _nothing_left(len(frame), skipped)
    write_atomic(out_csv, frame.to_csv(index=False).encode())
    out.print(f"wrote {len(frame)} predictions ({len(model)} model(s)) to {out_csv}")
    if len(model) == 1 and model.card is None:
        out.print("one model: no uncertainty (the std columns are empty); train with --ensemble or --folds for one")
    outside = frame[frame["out_of_domain"] != ""]
    if len(outside):
        console.print(f"[yellow]{len(outside)} of {len(frame)} structures are outside the training data "
                      "(column out_of_domain):[/]")
        for ident, reason in list(zip(outside["id"], outside["out_of_domain"]))[:10]:
            console.print(f"  [yellow]-[/] {ident}: {reason}", highlight=False)


# ----------------------------------------------------------------------------------------------- models
def _architecture(card: dict) -> str:
    """The card's preset, its layout where it is not the paper's stacked one, and the cell its graphs are built on
    where it is not the cell as given (e.g. "small preset, no_line_graph layout, primitive cell")."""
    details = card.get("training", {}).get("details", {})
    layout = details.get("layout", "stacked")
    cell = (card.get("cell") or {}).get("choice", "as_given")
    return (f"{details.get('preset', '?')} preset" + ("" if layout == "stacked" else f", {layout} layout")
            + ("" if cell == "as_given" else f", {cell} cell"))


@app.command()
@user_errors
def models(as_json: bool = typer.Option(False, "--json", help="The full cards as JSON.")):
    """The property models shipped in the package, with their cards' test errors (`predict --model NAME`)."""
    from crystograph import pretrained

    cards = pretrained.cards()
    if as_json:
        typer.echo(json.dumps(cards, indent=2))
        return
    if not cards:
        console.print("no models are shipped with this installation")
        raise typer.Exit(code=1)
    table = Table(title="shipped models", caption="test MAE on a held-out split never used in training or model "
                  "selection; CGCNN trained on the same split with the same budget")
    table.add_column("name", no_wrap=True)
    table.add_column("unit", no_wrap=True)
    for col in ("test MAE", "mean pred.", "CGCNN", "structures", "members"):
        table.add_column(col, justify="right", no_wrap=True)

    def num(v):
        return "—" if v is None else f"{v:.3g}"

    for c in cards:
        table.add_row(c["name"], c["unit"], num(c["test_mae"]), num(c["dummy_test_mae"]), num(c["cgcnn_test_mae"]),
                      f"{c['n_structures']:,}", str(c.get("members", 1)))
    out.print(table)
    for c in cards:
        out.print(f"[bold]{c['name']}[/] ({_architecture(c)}): {c['target']} — {c.get('description', '')}")
    out.print("cards: `crystograph models --json`; use: `crystograph predict --model NAME FILES --out preds.csv`")
