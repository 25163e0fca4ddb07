"""Crystal graphs (paper 2.1-2.2): k-NN periodic graphs, line graphs and positional encodings."""

from crystograph.graphs.build import CrystalGraph, add_edge_features, build_graph, graph_summary
from crystograph.graphs.features import atom_features

__all__ = ["CrystalGraph", "add_edge_features", "atom_features", "build_graph", "graph_summary"]
