"""Errors that reach the user: each names the input (file, row) and the reason."""

from __future__ import annotations

from dataclasses import dataclass


class CrystographError(Exception):
    """Base class; the CLI prints these as one line, without a traceback."""


class InputError(CrystographError):
    """A bad user input. `source` names the file (and row/entry), `reason` says what is wrong."""

    def __init__(self, source: str, reason: str):
        self.source = str(source)
        self.reason = reason
        super().__init__(f"{self.source}: {reason}")


class ConfigError(CrystographError, ValueError):
    """An option or configuration value that cannot work (a ValueError too, for callers that catch those)."""


class CheckpointError(CrystographError):
    """A checkpoint that cannot be loaded safely or does not match this version."""


@dataclass
class Skipped:
    """One input that a batch job skipped, and why (kept so that summaries can count it)."""

    source: str
    reason: str

    def __str__(self) -> str:
        return f"{self.source}: {self.reason}"
