"""CrysToGraph: transformer-based geometric graph networks for crystal property prediction."""

__version__ = "0.1.0"


def load_model(model, device="auto", *, allow_partial=False):
    """Load a shipped model by name ("mp-e-form") or a trained run directory (see `crystograph.api.load_model`)."""
    from crystograph.api import load_model as _load

    return _load(model, device=device, allow_partial=allow_partial)


__all__ = ["__version__", "load_model"]
