"""CrysToGraph: transformer-based geometric graph networks for crystal property prediction."""

__version__ = "0.1.0"
