"""Property models that ship inside the package, trained on public data (no download).

Each model is a folder ``crystograph/pretrained/<name>/`` holding one or more members (``model.safetensors``
+ ``model.json``, the format `crystograph train` writes; weights may be stored in float16 and are loaded
into a float32 network) and ``card.json``: what it predicts (``target``, ``unit``), on what data, the test
MAE on a fixed held-out split beside the mean predictor's and a same-budget CGCNN's, the valid input domain
and the training command. ``crystograph models`` prints the cards; ``crystograph.load_model("mp-e-form")``
and ``crystograph predict --model mp-e-form`` use a model::

    import crystograph
    model = crystograph.load_model("mp-e-form")
    model.predict_structure(structure)   # pymatgen Structure or ASE Atoms -> {"e_form": ..., "e_form_std": ...}
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from crystograph.errors import CheckpointError

CARD = "card.json"
# Keys every card holds (tests check them; `crystograph models` shows the first ones).
CARD_KEYS = ("name", "target", "unit", "test_mae", "dummy_test_mae", "cgcnn_test_mae", "n_structures",
             "split", "data_source", "domain", "command", "commit", "crystograph_version")


def _root() -> Path:
    return Path(str(resources.files(__name__)))


def names() -> list[str]:
    """Names of the shipped models (folders holding a card)."""
    return sorted(p.parent.name for p in _root().glob(f"*/{CARD}"))


def card(name: str) -> dict[str, Any]:
    """The model card of a shipped model."""
    return json.loads((model_dir(name) / CARD).read_text())


def cards() -> list[dict[str, Any]]:
    return [card(n) for n in names()]


def model_dir(name: str) -> Path:
    """Folder of a shipped model; an unknown name raises `CheckpointError` listing the known ones."""
    path = _root() / name
    if name and "/" not in name and "\\" not in name and (path / CARD).is_file():
        return path
    known = ", ".join(names()) or "none"
    raise CheckpointError(f"{name!r}: no shipped model of that name (shipped: {known}; `crystograph models` "
                          "lists them with their test errors)")


def is_shipped(name: str) -> bool:
    try:
        model_dir(str(name))
    except CheckpointError:
        return False
    return True


__all__ = ["CARD", "CARD_KEYS", "card", "cards", "is_shipped", "model_dir", "names"]
