"""Shared pieces of the command line: the Typer app, consoles, `--config`, error and skip reporting, checks that
run before any work, and the option definitions `train`, `bench` and `ablate` share."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Optional

import typer
import yaml
from rich.console import Console

from crystograph.errors import CrystographError, InputError, Skipped

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="CrysToGraph: transformer graph networks for crystal properties.")
console = Console(stderr=True, soft_wrap=True)
out = Console()


def _load_config(ctx: typer.Context, _param, value: Optional[Path]):
    """Eager `--config`: its keys become the defaults of the other options (flags still win)."""
    from crystograph.cli_config import ConfigKeyError, to_defaults

    if value is None:
        return value
    try:
        data = yaml.safe_load(Path(value).read_text()) or {}
    except (OSError, yaml.YAMLError) as err:
        raise typer.BadParameter(f"{value}: cannot read YAML ({err})") from err
    if not isinstance(data, dict):
        raise typer.BadParameter(f"{value}: expected a mapping of option names to values")
    try:
        flat = to_defaults(data, ctx.command.params, ctx.command.name)
    except ConfigKeyError as err:
        raise typer.BadParameter(f"{value}: {err}") from err
    ctx.default_map = {**(ctx.default_map or {}), **flat}
    return value


ConfigOption = typer.Option(None, "--config", help="YAML file setting any option (flags override it).",
                            is_eager=True, callback=_load_config, exists=True, dir_okay=False)


def user_errors(func):
    """Print CrystographError (bad inputs and options) and unreadable paths as one line and exit 2; any other
    exception is a bug and keeps its traceback."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except CrystographError as err:
            console.print(f"[bold red]error:[/] {err}", highlight=False)
            raise typer.Exit(code=2) from None
        except (FileNotFoundError, IsADirectoryError, PermissionError) as err:
            console.print(f"[bold red]error:[/] {err}", highlight=False)
            raise typer.Exit(code=2) from None

    return wrapper


def report_skipped(skipped: list[Skipped], total: int, what: str = "inputs", ignored: list[Skipped] = ()) -> None:
    """Say what was skipped (and which folder entries were ignored) and why, so that nothing vanishes silently."""
    if ignored:
        console.print(f"[yellow]ignored {len(ignored)} folder entr{'y' if len(ignored) == 1 else 'ies'}:[/]")
        for item in list(ignored)[:10]:
            console.print(f"  [yellow]-[/] {item}", highlight=False)
        if len(ignored) > 10:
            console.print(f"  … and {len(ignored) - 10} more")
    if not skipped:
        console.print(f"[green]{total} {what}, none skipped[/]")
        return
    console.print(f"[yellow]skipped {len(skipped)} of {total} {what}:[/]")
    for item in skipped[:20]:
        console.print(f"  [yellow]-[/] {item}", highlight=False)
    if len(skipped) > 20:
        console.print(f"  … and {len(skipped) - 20} more")
    reasons: dict[str, int] = {}
    for item in skipped:
        key = item.reason.split(";")[0].split(":")[0][:60]  # "unknown format '.py'", "overlapping atoms", …
        reasons[key] = reasons.get(key, 0) + 1
    for reason, count in sorted(reasons.items(), key=lambda kv: -kv[1]):
        console.print(f"  {count:>5} × {reason}", highlight=False)


def _strict_exit(skipped: list[Skipped], strict: bool) -> None:
    if strict and skipped:
        console.print(f"[bold red]--strict: {len(skipped)} input(s) failed[/]")
        raise typer.Exit(code=2)


def _nothing_left(n_used: int, skipped: list[Skipped]) -> None:
    """Exit 1 when every input was skipped: there is no result to write."""
    if n_used == 0:
        console.print(f"[bold red]no usable input ({len(skipped)} skipped); nothing written[/]")
        raise typer.Exit(code=1)


def _read(paths: list[Path], fmt: Optional[str], targets: Optional[list[str]], id_column: Optional[str],
          cif_column: str, strict: bool, recursive: bool = False, species: Optional[str] = None):
    """Records, skipped inputs (list) and ignored folder entries."""
    from crystograph.structures import read_structures

    result = read_structures([str(p) for p in paths], fmt=fmt, target=targets or None, id_column=id_column,
                             cif_column=cif_column, strict=strict, progress=True, recursive=recursive,
                             species=species.replace(",", " ").split() if species else None)
    return result.records, list(result.skipped), result.ignored


def _check_output(path: Path, *, folder: bool) -> None:
    """Before any work: `path` must be creatable as a file (`folder=False`) or a folder, and writable."""
    import os

    kind = "folder" if folder else "file"
    if path.exists() and path.is_dir() != folder:
        raise CrystographError(f"{path}: is {'a file' if folder else 'a folder'}; --out needs a {kind} path")
    parent = path if folder and path.exists() else path.parent  # files are replaced by a rename in their folder
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise CrystographError(f"{path}: cannot create the output {kind}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise CrystographError(f"{path}: cannot write the output {kind}: {parent} is not writable")


def _check_targets(target: list[str]) -> None:
    repeated = sorted({t for t in target if target.count(t) > 1})
    if repeated:
        raise CrystographError(f"--target {', '.join(repeated)} given more than once")


def _positive(value: Optional[float]) -> Optional[float]:
    """Option callback: a number > 0 (or unset)."""
    if value is not None and not value > 0:
        raise typer.BadParameter(f"{value} is not > 0")
    return value


SPECIES_HELP = "Element symbols for POSCARs without a species line, e.g. 'Na Cl' (else a POTCAR beside them)."
RECURSIVE_HELP = "Read subfolders of input folders too (otherwise they are listed as ignored)."
GRAPH_WORKERS_HELP = ("Processes that build the graphs (0: every usable core, shared among the processes of a "
                      "torchrun job; 1: this process; small inputs are built here anyway). The graphs are the same "
                      "for any count.")
# Model-size knobs of `train` and `bench` (default: the preset's value); the ablation studies vary them.
NEtgcOption = typer.Option(None, "--n-etgc", min=0, help="eTGC blocks (default: the preset's).")
NGwtOption = typer.Option(None, "--n-gwt", min=0, help="GwT layers (default: the preset's).")
HiddenDimOption = typer.Option(None, "--hidden-dim", min=1, help="Hidden width (default: the preset's).")
NumHeadsOption = typer.Option(None, "--num-heads", min=1, help="Attention heads (default: the preset's).")
HeadDimOption = typer.Option(None, "--head-dim", min=1, help="Feature width per head (default: the preset's).")
ATOM_EMBEDDINGS_HELP = ("Pretrained atom embeddings: a .safetensors table from `crystograph pretrain`, or 'default' "
                        "(the table shipped in the package; elements its corpus lacked use the 92-d features only).")
FINETUNE_HELP = "Train the atom-embedding table with the network (default: frozen, as the paper's code)."
PE_MODE_HELP = ("laplacian+rw (paper) | laplacian | rw (one part, the other zero) | periodic_rw (supercell-invariant) "
                "| none")


def check_atom_embeddings(value: Optional[str], finetune: bool) -> None:
    """Before any work: the table exists and is readable ('default' is shipped), and --finetune-embeddings has one."""
    from crystograph.embeddings import load_table

    if finetune and value is None:
        raise InputError("--finetune-embeddings", "needs --atom-embeddings (a table to fine-tune)")
    if value is not None:
        load_table(value)


def _sizes(**knobs: Optional[int]) -> dict[str, int]:
    """The model-size options that were given."""
    return {k: v for k, v in knobs.items() if v is not None}
