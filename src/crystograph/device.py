"""The one place that picks a torch device (cuda, then mps, then cpu), with an override."""

from __future__ import annotations

import torch


def _mps_available() -> bool:
    return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()


def resolve_device(name: str | torch.device | None = "auto") -> torch.device:
    """`auto` picks cuda, then mps, then cpu; `gpu` means cuda; an unavailable or unknown device is an
    `InputError` naming the option, not a crash deep inside torch."""
    from crystograph.errors import InputError

    if isinstance(name, torch.device):
        return name
    if name in (None, "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if _mps_available() else torch.device("cpu")
    text = {"gpu": "cuda"}.get(str(name), str(name))
    try:
        device = torch.device(text)
    except RuntimeError as err:
        raise InputError("--device", f"unknown device {name!r} (use auto, cpu, cuda/gpu or mps)") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError("--device", f"{name!r} requested but CUDA is not available on this machine")
    if device.type == "mps" and not _mps_available():
        raise InputError("--device", f"{name!r} requested but MPS is not available on this machine")
    return device


def lightning_accelerator(name: str | None = "auto") -> str:
    """Map a device name to a Lightning accelerator string."""
    if name in (None, "auto"):
        return "auto"
    resolve_device(name)  # fail early, with a clear message, if the device is not there
    return {"cuda": "gpu", "gpu": "gpu", "mps": "mps", "cpu": "cpu"}.get(str(name).split(":")[0], str(name))
