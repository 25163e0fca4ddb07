"""Python API in the matgl/chgnet convention::

    import crystograph
    model = crystograph.load_model("runs/my_run")        # every fold × ensemble member
    model = crystograph.load_model("mp-e-form")          # a model shipped in the package (`crystograph models`)
    model.predict_structure(structure)                     # {"LCD": 4.2, "LCD_std": 0.1}; pymatgen or ASE Atoms
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
        self.domain: dict | None = _union_domain([m for _, m in members])
        self.card: dict | None = None  # the model card of a shipped model (`crystograph.pretrained`)

    def out_of_domain(self, graph) -> str:
        """Why a graph lies outside the training data ("" if inside, or if the run recorded no domain)."""
        if self.domain is None:
            return ""
        from pymatgen.core import Element

        reasons = []
        unseen = sorted({int(z) for z in graph.z.tolist()} - set(self.domain["elements"]))
        if unseen:
            reasons.append("elements not in training: " + " ".join(Element.from_Z(z).symbol for z in unseen))
        low, high = self.domain["n_atoms"]
        if not low <= int(graph.num_nodes) <= high:
            reasons.append(f"{int(graph.num_nodes)} atoms per cell, training had {low}-{high}")
        return "; ".join(reasons)

    def __len__(self) -> int:
        return len(self.members)

    def _predict_graphs(self, graphs, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
        from crystograph.train.fit import predict

        outputs = []
        for model, manifest in self.members:
            raw = predict(model, graphs, batch_size=batch_size, device=self.device)  # [N, T] standardised / logits
            outputs.append(to_units(raw, manifest))
        stacked = np.stack(outputs)  # [M, N, T]
        if len(outputs) == 1:  # one model has no spread: its uncertainty is unknown, not zero
            return stacked[0], np.full_like(stacked[0], np.nan)
        return stacked.mean(axis=0), stacked.std(axis=0)

    def predict_structure(self, structure) -> dict[str, float]:
        """One structure → {target: mean, target_std: std (NaN for a single model)}; bad input raises InputError;
        a structure outside the training data gives a warning saying why."""
        import warnings

        from crystograph.graphs import build_graph
        from crystograph.structures import validate_structure

        structure = validate_structure(as_structure(structure, "structure"), "structure")
        graph = build_graph(structure, self.graph_config)
        if reason := self.out_of_domain(graph):
            warnings.warn(f"structure {structure.composition.reduced_formula} is out of domain: {reason}", stacklevel=2)
        mean, std = self._predict_graphs([graph])
        out: dict[str, float] = {}
        for t, name in enumerate(self.targets):
            out[name] = float(mean[0, t])
            out[f"{name}_std"] = float(std[0, t])
        return out

    def predict_structures(self, structures: Sequence, batch_size: int = 64, *, ids: Sequence[str] | None = None,
                           progress: bool = False, graph_workers: int = 1):
        """Many structures → DataFrame (id, target, target_std, out_of_domain); unbuildable ones are listed in
        `df.attrs["skipped"]` instead of vanishing. `target_std` is NaN for a single model; `out_of_domain` says
        why a structure lies outside the training data (unseen elements, cell size), "" otherwise.
        `graph_workers` > 1 builds the graphs in that many processes (0: every usable core)."""
        import pandas as pd

        from crystograph.data import build_graphs
        from crystograph.errors import InputError
        from crystograph.structures import StructureRecord, validate_structure

        ids = list(ids) if ids is not None else [str(i) for i in range(len(structures))]
        records, skipped = [], []
        for i, s in zip(ids, structures):
            try:
                structure = validate_structure(as_structure(s, str(i)), str(i))
                records.append(StructureRecord(id=i, structure=structure, targets={}, source=str(i)))
            except InputError as err:
                skipped.append(Skipped(err.source, err.reason))
        graphs, graph_skipped = build_graphs(records, self.graph_config, progress=progress, workers=graph_workers)
        skipped += graph_skipped
        frame = pd.DataFrame({"id": [g.sample_id for g in graphs]})
        if graphs:
            mean, std = self._predict_graphs(graphs, batch_size)
            for t, name in enumerate(self.targets):
                frame[name] = mean[:, t]
                frame[f"{name}_std"] = std[:, t]
        frame["out_of_domain"] = [self.out_of_domain(g) for g in graphs]
        frame.attrs["skipped"] = skipped
        return frame


def as_structure(obj, source: str):
    """A pymatgen Structure, or an ASE Atoms periodic in all three directions, as a pymatgen Structure."""
    from pymatgen.core import Structure

    from crystograph.errors import InputError

    if isinstance(obj, Structure):
        return obj
    from ase import Atoms

    if isinstance(obj, Atoms):
        if not all(obj.pbc):
            raise InputError(source, f"ASE Atoms with pbc={list(map(bool, obj.pbc))}: crystograph needs a crystal "
                                     "periodic in all three directions (set atoms.pbc = True and a cell)")
        from pymatgen.io.ase import AseAtomsAdaptor

        return AseAtomsAdaptor.get_structure(obj)
    raise InputError(source, f"expected a pymatgen Structure or an ASE Atoms, got {type(obj).__name__}")


def load_model(model: str | Path, device: str | None = "auto", *, allow_partial: bool = False) -> Predictor:
    """Load a shipped model by name (`crystograph.pretrained.names()`, e.g. ``"mp-e-form"``) or every trained
    member under a run directory (a run, a fold or a single member directory). An existing directory wins over a
    shipped name of the same spelling (with a warning). A run whose config.yaml promises more members than are
    finished raises `CheckpointError` unless `allow_partial`."""
    from crystograph import pretrained

    run_dir = Path(model)
    shipped = pretrained.is_shipped(str(model))
    if shipped and not run_dir.is_dir():
        predictor = load_model(pretrained.model_dir(str(model)), device)
        predictor.card = pretrained.card(str(model))
        return predictor
    if shipped:
        import warnings

        warnings.warn(f"{run_dir}: a directory of that name exists and is loaded, not the shipped model {model!r}",
                      stacklevel=2)
    if not run_dir.is_dir():
        known = ", ".join(pretrained.names()) or "none"
        raise CheckpointError(f"{run_dir}: no such run directory, nor a shipped model name (shipped: {known})")
    manifests = sorted(run_dir.rglob(MANIFEST))
    if not manifests:
        raise CheckpointError(f"{run_dir}: no trained model found (expected {MANIFEST} files from `crystograph train`)")
    expected = _expected_members(run_dir)
    if expected and len(manifests) < expected and not allow_partial:
        raise CheckpointError(f"{run_dir}: unfinished run: {len(manifests)} of {expected} models are trained "
                              "(folds × ensemble); finish it by rerunning `crystograph train` with the same "
                              "options, or predict with the finished ones (--allow-partial)")
    dev = resolve_device(device)
    members = [load_model_dir(path.parent, device=dev) for path in manifests]
    return Predictor(members, dev)


def _expected_members(run_dir: Path) -> int | None:
    """folds × ensemble from a run's config.yaml (None without one)."""
    import yaml

    try:
        train = (yaml.safe_load((run_dir / "config.yaml").read_text()) or {}).get("train", {})
        return int(train.get("folds", 1)) * int(train.get("ensemble", 1))
    except (OSError, yaml.YAMLError, AttributeError, TypeError, ValueError):
        return None


def _union_domain(manifests: list[dict]) -> dict | None:
    """Elements and atoms-per-cell range over every member's training data (None if any lacks the record)."""
    domains = [m.get("domain") for m in manifests]
    if not domains or any(not isinstance(d, dict) for d in domains):
        return None
    return {"elements": sorted({z for d in domains for z in d["elements"]}),
            "n_atoms": [min(d["n_atoms"][0] for d in domains), max(d["n_atoms"][1] for d in domains)]}


__all__ = ["Predictor", "Skipped", "as_structure", "load_model"]
