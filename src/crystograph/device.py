"""The one place that picks a torch device (cuda, then mps, then cpu), with an override."""

from __future__ import annotations

import torch


def resolve_device(name: str | torch.device | None = "auto") -> torch.device:
    """`auto` picks cuda, then mps, then cpu; any other name is passed to torch.device."""
    if isinstance(name, torch.device):
        return name
    if name in (None, "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    return torch.device(name)


def lightning_accelerator(name: str | None = "auto") -> str:
    """Map a device name to a Lightning accelerator string."""
    if name in (None, "auto"):
        return "auto"
    return {"cuda": "gpu", "gpu": "gpu", "mps": "mps", "cpu": "cpu"}.get(str(name).split(":")[0], str(name))
