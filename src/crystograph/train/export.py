"""Trained-model files: weights as safetensors + a JSON manifest (config, targets, versions).

Loading never unpickles anything: safetensors holds only tensors, the manifest is JSON, and
Lightning checkpoints are opened with `torch.load(weights_only=True)`. A manifest written by
another crystograph version is reported (a warning), not a crash; a missing or mismatched weight
raises `CheckpointError` with the reason.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from crystograph import __version__
from crystograph.config import ModelConfig, from_dict, to_dict
from crystograph.errors import CheckpointError

WEIGHTS = "model.safetensors"
MANIFEST = "model.json"
# 2: graphs in the crystal's canonical frame and 100 distinct atom-feature rows (format-1 models were trained
# on other input features, so they are refused rather than fed inputs they never saw).
FORMAT_VERSION = 2


def _file_mode() -> int:
    """The permissions a plain `open(..., "w")` gives (0o666 less the umask)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def write_atomic(path: Path, data: bytes | None = None, *, writer=None) -> Path:
    """Write `data` (or call `writer(tmp_path)`) to a temporary file beside `path`, then rename it over `path`:
    a killed job leaves the old file or the new one, never half of one. Permissions follow the umask."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        if writer is not None:
            writer(tmp)
        else:
            tmp.write_bytes(data or b"")
        os.chmod(tmp, _file_mode())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def save_model(directory: Path, model: nn.Module, model_config: ModelConfig, *, task: str,
               targets: list[str], y_mean: list[float], y_std: list[float], extra: dict | None = None) -> Path:
    """Weights, then the manifest (its presence marks a finished member), each written atomically."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    write_atomic(directory / WEIGHTS, writer=lambda tmp: save_file(state, str(tmp)))
    manifest = {
        "format_version": FORMAT_VERSION,
        "crystograph_version": __version__,
        "torch_version": torch.__version__,
        "model_class": "CrysToGraph",
        "model_config": to_dict(model_config),
        "task": task,
        "targets": list(targets),
        "y_mean": list(map(float, y_mean)),
        "y_std": list(map(float, y_std)),
        **(extra or {}),
    }
    write_atomic(directory / MANIFEST, json.dumps(manifest, indent=2).encode())
    return directory


def to_units(raw: np.ndarray, manifest: dict[str, Any]) -> np.ndarray:
    """Raw network output [N, T] → target units: probabilities (classification) or de-standardised values."""
    if manifest["task"] == "classification":
        return 1.0 / (1.0 + np.exp(-raw))
    return raw * np.asarray(manifest["y_std"]) + np.asarray(manifest["y_mean"])


def read_manifest(directory: Path) -> dict[str, Any]:
    path = Path(directory) / MANIFEST
    if not path.exists():
        raise CheckpointError(f"{directory}: no {MANIFEST} (not a crystograph model directory)")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{path}: not valid JSON ({err})") from err
    if manifest.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: model format {manifest.get('format_version')!r}, this version reads "
                              f"{FORMAT_VERSION} (its input graphs differ: retrain the model with this version)")
    if manifest.get("crystograph_version") != __version__:
        warnings.warn(
            f"{path}: written by crystograph {manifest.get('crystograph_version')}, this is {__version__}; "
            "loading anyway (the weights are checked against the model)",
            stacklevel=2,
        )
    return manifest


def load_model_dir(directory: Path, device: torch.device | str = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the network from its manifest and load its safetensors weights (no code is unpickled)."""
    from crystograph.nn import CrysToGraph

    directory = Path(directory)
    manifest = read_manifest(directory)
    if manifest.get("model_class") != "CrysToGraph":
        raise CheckpointError(f"{directory}: unknown model class {manifest.get('model_class')!r}")
    try:
        config = from_dict(ModelConfig, manifest["model_config"])
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"{directory}/{MANIFEST}: model config does not match this version ({err})") from err
    config.atom_embedding_path = None  # the embedding table is part of the saved weights
    model = CrysToGraph(config)
    weights = directory / WEIGHTS
    if not weights.exists():
        raise CheckpointError(f"{directory}: {WEIGHTS} is missing")
    try:
        state = load_file(str(weights), device=str(device))
    except Exception as err:  # safetensors raises its own error types
        raise CheckpointError(f"{weights}: not a readable safetensors file ({err})") from err
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as err:  # shape mismatches
        raise CheckpointError(
            f"{weights}: weights do not match the model config ({str(err).splitlines()[1:2]})"
        ) from err
    if missing or unexpected:
        raise CheckpointError(
            f"{weights}: weights do not match the model config (missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    return model.to(device).eval(), manifest


def load_lightning_state(path: Path) -> dict[str, torch.Tensor]:
    """The model weights inside a Lightning checkpoint, read with weights_only=True."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise CheckpointError(
            f"{path}: refused to load — not a plain-tensor checkpoint (loading it could run code): {err}"
        ) from err
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise CheckpointError(f"{path}: no state_dict inside (not a crystograph/Lightning checkpoint)")
    return ckpt["state_dict"]
