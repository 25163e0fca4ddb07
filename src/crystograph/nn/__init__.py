"""CrysToGraph network modules: eTGC (local), GwT (crystal-wide) and the full model (paper 2.3)."""

from crystograph.nn.etgc import ETGC, ETGCBlock
from crystograph.nn.gwt import GwT
from crystograph.nn.heads import MeanPoolHead, mean_pool
from crystograph.nn.model import CrysToGraph, load_atom_embedding

__all__ = ["CrysToGraph", "ETGC", "ETGCBlock", "GwT", "MeanPoolHead", "mean_pool", "load_atom_embedding"]
