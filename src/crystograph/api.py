"""Python API in the matgl/chgnet convention::

    import crystograph
    model = crystograph.load_model("runs/my_run")        # every fold × ensemble member
    model.predict_structure(structure)                     # {"LCD": 4.2, "LCD_std": 0.1}
    model.predict_structures(structures, batch_size=64)    # pandas DataFrame, one row per structure
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from crystograph.config import GraphConfig, ModelConfig, from_dict
from crystograph.device import resolve_device
from crystograph.errors import CheckpointError, Skipped
from crystograph.train.export import MANIFEST, load_model_dir, to_units


class Predictor:
    """An ensemble of trained CrysToGraph networks; prediction = mean, uncertainty = std."""

    def __init__(self, members: list[tuple[torch.nn.Module, dict]], device: torch.device):
        if not members:
            raise CheckpointError("no trained models given")
        self.members = members
        self.device = device
        manifest = members[0][1]
        self.task: str = manifest["task"]
        self.targets: list[str] = manifest["targets"] or ["target"]
        self.model_config: ModelConfig = from_dict(ModelConfig, manifest["model_config"])
        self.graph_config: GraphConfig = self.model_config.graph

    def __len__(self) -> int:
        return len(self.members)

    def _predict_graphs(self, graphs, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
        from crystograph.train.fit import predict

        outputs = []
        for model, manifest in self.members:
            raw = predict(model, graphs, batch_size=batch_size, device=self.device)  # [N, T] standardised / logits
            outputs.append(to_units(raw, manifest))
        stacked = np.stack(outputs)  # [M, N, T]
        return stacked.mean(axis=0), stacked.std(axis=0)

    def predict_structure(self, structure) -> dict[str, float]:
        """One structure → {target: mean, target_std: std}; bad input raises InputError."""
        from crystograph.graphs import build_graph
        from crystograph.structures import validate_structure

        structure = validate_structure(structure, "structure")
        mean, std = self._predict_graphs([build_graph(structure, self.graph_config)])
        out: dict[str, float] = {}
        for t, name in enumerate(self.targets):
            out[name] = float(mean[0, t])
            out[f"{name}_std"] = float(std[0, t])
        return out

    def predict_structures(self, structures: Sequence, batch_size: int = 64, *, ids: Sequence[str] | None = None,
                           progress: bool = False):
        """Many structures → DataFrame (id, target, target_std); unbuildable ones are listed in
        `df.attrs["skipped"]` instead of vanishing."""
        import pandas as pd

        from crystograph.data import build_graphs
        from crystograph.structures import StructureRecord

        from crystograph.errors import InputError
        from crystograph.structures import validate_structure

        ids = list(ids) if ids is not None else [str(i) for i in range(len(structures))]
        records, skipped = [], []
        for i, s in zip(ids, structures):
            try:
                records.append(StructureRecord(id=i, structure=validate_structure(s, str(i)), targets={}, source=str(i)))
            except InputError as err:
                skipped.append(Skipped(err.source, err.reason))
        graphs, graph_skipped = build_graphs(records, self.graph_config, progress=progress)
        skipped += graph_skipped
        frame = pd.DataFrame({"id": [g.sample_id for g in graphs]})
        if graphs:
            mean, std = self._predict_graphs(graphs, batch_size)
            for t, name in enumerate(self.targets):
                frame[name] = mean[:, t]
                frame[f"{name}_std"] = std[:, t]
        frame.attrs["skipped"] = skipped
        return frame


def load_model(run_dir: str | Path, device: str | None = "auto") -> Predictor:
    """Load every trained member under `run_dir` (a run, a fold or a single member directory)."""
    run_dir = Path(run_dir)
    manifests = sorted(run_dir.rglob(MANIFEST))
    if not manifests:
        raise CheckpointError(f"{run_dir}: no trained model found (expected {MANIFEST} files from `crystograph train`)")
    dev = resolve_device(device)
    members = [load_model_dir(path.parent, device=dev) for path in manifests]
    return Predictor(members, dev)


__all__ = ["Predictor", "Skipped", "load_model"]
