"""Pretrained atom-embedding tables (paper A.1) and the default one shipped in the package.

A table is a safetensors file holding

* ``"atom_embedding"``: float [n_rows, d], row = atomic number Z (row 0 = the MASK token of pretraining);
* ``"covered"`` (optional): uint8/bool [n_rows], 1 where the element occurred in the pretraining corpus.

`CrysToGraph` zeroes the learned part of the atom input for uncovered elements (they are described by the
92-d features alone) and warns naming them; a table without ``"covered"`` counts every row as learned.

``--atom-embeddings default`` (``ModelConfig.atom_embedding_path = "default"``) means the table shipped at
``crystograph/embeddings/default.safetensors``, described by ``default.json`` (corpus and its hash, epochs,
masked-atom accuracy, command, commit). `resolve` turns that name into the path, or raises `InputError` saying
how to make the file when it is not there. Loading never unpickles anything (safetensors only).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from crystograph.errors import InputError

DEFAULT = "default"  # the name that selects the shipped table
TABLE_KEY = "atom_embedding"
COVERED_KEY = "covered"
DEFAULT_FILE = "default.safetensors"
DEFAULT_CARD = "default.json"
HOW_TO_MAKE = ("build it with `python benchmarks/pretrain_corpus.py`, `python benchmarks/pretrain_default.py` and "
               "`python benchmarks/ship_embeddings.py` (README: pretrained atom embeddings), or pass the "
               "atom_embeddings.safetensors of a `crystograph pretrain` run instead")


@dataclass
class AtomTable:
    table: torch.Tensor  # float32 [n_rows, d], row = Z
    covered: torch.Tensor | None  # bool [n_rows], or None = every row learned
    path: Path


def package_dir() -> Path:
    """The folder that holds the shipped default table and its card."""
    return Path(str(resources.files(__name__)))


def default_path() -> Path:
    return package_dir() / DEFAULT_FILE


def default_card_path() -> Path:
    return package_dir() / DEFAULT_CARD


def is_default(value: str | Path | None) -> bool:
    return value is not None and str(value) == DEFAULT


def resolve(value: str | Path) -> Path:
    """``"default"`` → the shipped table (an `InputError` when this installation has none); else `Path(value)`."""
    if not is_default(value):
        return Path(value)
    path = default_path()
    if not path.is_file():
        raise InputError("--atom-embeddings default", f"no default atom embeddings are shipped in this "
                                                      f"installation (expected {path}); {HOW_TO_MAKE}")
    return path


def default_card() -> dict[str, Any]:
    """The card of the shipped default table (an `InputError` when there is none)."""
    resolve(DEFAULT)
    path = default_card_path()
    if not path.is_file():
        raise InputError(str(path), f"the default atom embeddings have no card {DEFAULT_CARD}; {HOW_TO_MAKE}")
    return json.loads(path.read_text())


def load_table(value: str | Path) -> AtomTable:
    """Read a table (``"default"`` or a path): the float32 [n_rows, d] table and its coverage mask, checked."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = resolve(value)
    if not path.is_file():
        raise InputError(str(path), "atom embedding file not found")
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise InputError(str(path), f"not a readable safetensors file ({exc})") from exc
    if TABLE_KEY not in tensors:
        raise InputError(str(path), f"no '{TABLE_KEY}' tensor (found: {', '.join(sorted(tensors)) or 'none'})")
    table = tensors[TABLE_KEY]
    if table.dim() != 2 or not table.is_floating_point():
        raise InputError(str(path), f"'{TABLE_KEY}' must be a 2-D float tensor, got {tuple(table.shape)} {table.dtype}")
    covered = tensors.get(COVERED_KEY)
    if covered is not None:
        if covered.dim() != 1 or covered.numel() != table.size(0) or covered.is_floating_point():
            raise InputError(str(path), f"'{COVERED_KEY}' must be an integer or bool vector of {table.size(0)} "
                                        f"entries, got {tuple(covered.shape)} {covered.dtype}")
        covered = covered.bool()
    return AtomTable(table.float(), covered, path)


def save_table(path: str | Path, table: torch.Tensor, covered: torch.Tensor | None = None, *,
               dtype: torch.dtype = torch.float32, metadata: dict[str, str] | None = None) -> Path:
    """Write a table (and its coverage mask as uint8) atomically; `dtype` float32 or float16."""
    from safetensors.torch import save_file

    from crystograph.train.export import write_atomic

    tensors = {TABLE_KEY: table.detach().to("cpu", dtype).contiguous()}
    if covered is not None:
        tensors[COVERED_KEY] = covered.detach().to("cpu", torch.uint8).contiguous()
    meta = {"format": "crystograph-atom-embedding", "rows": "atomic number Z (row 0 = MASK token)", **(metadata or {})}
    return write_atomic(Path(path), writer=lambda tmp: save_file(tensors, str(tmp), metadata=meta))


__all__ = ["AtomTable", "COVERED_KEY", "DEFAULT", "TABLE_KEY", "default_card", "default_card_path", "default_path",
           "is_default", "load_table", "resolve", "save_table"]
