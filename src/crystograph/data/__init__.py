"""Datasets: structures → graphs with targets, graph cache, splits, target normalisation."""

from crystograph.data.dataset import GraphCache, TargetScaler, build_graphs, stack_targets, structure_key
from crystograph.data.splits import kfold_indices, train_val_split

__all__ = [
    "GraphCache",
    "TargetScaler",
    "build_graphs",
    "kfold_indices",
    "stack_targets",
    "structure_key",
    "train_val_split",
]
