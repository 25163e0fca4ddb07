"""Crystal graphs (paper 2.1-2.2): k-NN periodic graphs, line graphs and positional encodings."""

from crystograph.graphs.build import CrystalGraph, build_graph, graph_summary
from crystograph.graphs.features import atom_features

__all__ = ["CrystalGraph", "atom_features", "build_graph", "graph_summary"]
