"""Where crystograph keeps downloads and caches (never inside the package, never /tmp)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """``$CRYSTOGRAPH_CACHE`` → ``$XDG_CACHE_HOME/crystograph`` → ``~/.cache/crystograph``."""
    if os.environ.get("CRYSTOGRAPH_CACHE"):
        return Path(os.environ["CRYSTOGRAPH_CACHE"]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "crystograph"
    return Path.home() / ".cache" / "crystograph"
