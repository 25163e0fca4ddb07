"""CrysToGraph: transformer-based geometric graph networks for crystal property prediction."""

__version__ = "0.1.0"


def load_model(run_dir, device="auto"):
    """Load a trained run (see `crystograph.api.load_model`)."""
    from crystograph.api import load_model as _load

    return _load(run_dir, device=device)


__all__ = ["__version__", "load_model"]
