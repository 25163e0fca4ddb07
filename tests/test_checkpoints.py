"""Untrusted checkpoints: loading never unpickles code; mismatches are reported, not crashes."""

from __future__ import annotations

import json
import os
import pickle

import pytest
import torch

from crystograph.config import ModelConfig
from crystograph.errors import CheckpointError


class _Exploit:
    """Unpickling this runs a shell command that creates a marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _small():
    return ModelConfig.preset("small", hidden_dim=16, num_heads=2, head_dim=8, n_etgc=1)


def _saved_model(tmp_path):
    from crystograph.nn import CrysToGraph
    from crystograph.train.export import save_model

    cfg = _small()
    save_model(tmp_path, CrysToGraph(cfg), cfg, task="regression", targets=["y"], y_mean=[0.0], y_std=[1.0])
    return tmp_path


def test_malicious_lightning_checkpoint_is_refused(tmp_path):
    from crystograph.train.export import load_lightning_state

    marker = tmp_path / "pwned"
    path = tmp_path / "last.ckpt"
    torch.save({"state_dict": {}, "payload": _Exploit(marker)}, path)  # a pickle with code in it
    with pytest.raises(CheckpointError, match="refused"):
        load_lightning_state(path)
    assert not marker.exists()


def test_pickle_disguised_as_safetensors_is_refused(tmp_path):
    from crystograph.api import load_model

    run = _saved_model(tmp_path / "run")
    marker = tmp_path / "pwned"
    (run / "model.safetensors").write_bytes(pickle.dumps(_Exploit(marker)))
    with pytest.raises(CheckpointError, match="safetensors"):
        load_model(run)
    assert not marker.exists()


def test_version_mismatch_is_reported_not_a_crash(tmp_path):
    from crystograph.api import load_model

    run = _saved_model(tmp_path / "run")
    manifest = json.loads((run / "model.json").read_text())
    manifest["crystograph_version"] = "0.0.1"
    (run / "model.json").write_text(json.dumps(manifest))
    with pytest.warns(UserWarning, match="written by crystograph 0.0.1"):
        model = load_model(run)
    assert len(model) == 1


def test_config_mismatch_is_a_clear_error(tmp_path):
    from crystograph.api import load_model

    run = _saved_model(tmp_path / "run")
    manifest = json.loads((run / "model.json").read_text())
    manifest["model_config"]["hidden_dim"] = 32  # weights were saved for 16
    (run / "model.json").write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match="do not match"):
        load_model(run)
    manifest["model_config"]["no_such_option"] = 1
    (run / "model.json").write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match="does not match this version"):
        load_model(run)


def test_no_torch_load_without_weights_only_in_package():
    import pathlib
    import re

    src = pathlib.Path(__file__).resolve().parents[1] / "src"
    offenders = [f"{p}:{i}" for p in src.rglob("*.py") for i, line in enumerate(p.read_text().splitlines(), 1)
                 if re.search(r"torch\.load\(", line) and "weights_only=True" not in line]
    assert not offenders, offenders
