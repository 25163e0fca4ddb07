"""Text -> pymatgen ``Structure``: file reading (gunzip), CIF, POSCAR and pymatgen-dict parsers."""

from __future__ import annotations

import gzip
import warnings
from pathlib import Path

from pymatgen.core import Structure

from crystograph.errors import InputError

_REASON_MAX = 300


def _shorten(text: str, limit: int = _REASON_MAX) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _read_text(path: Path, source: str) -> str:
    """File contents as text (gunzipped if ``.gz``); raises for missing, unreadable or empty files."""
    try:
        raw = path.read_bytes()
        if path.suffix.lower() == ".gz":
            raw = gzip.decompress(raw)
    except FileNotFoundError:
        raise InputError(source, "no such file or directory") from None
    except (OSError, EOFError) as exc:
        raise InputError(source, f"cannot read file: {_shorten(exc)}") from None
    text = raw.decode("utf-8-sig", errors="replace")
    if not text.strip():
        raise InputError(source, "empty file")
    return text


class _Captured(warnings.catch_warnings):
    """Record (do not print) warnings raised while parsing; ``.messages`` keeps them for error reasons."""

    def __init__(self):
        super().__init__(record=True)

    def __enter__(self):
        self._log = super().__enter__()
        warnings.simplefilter("always")
        return self

    @property
    def messages(self) -> list[str]:
        out: list[str] = []
        for w in self._log:
            for line in str(w.message).splitlines():
                line = line.replace("Issues encountered while parsing CIF:", "").strip()
                if line.startswith("'_") and line.endswith("'"):  # pymatgen reports a missing key as its name
                    line = f"missing CIF key {line}"
                if line and not line.startswith("No structure parsed for section") and line not in out:
                    out.append(line)
        return out


def parse_cif(text: str, source: str) -> list[Structure]:
    """All structures (data blocks) in a CIF text; ``InputError("malformed CIF: ...")`` if none parse."""
    from pymatgen.io.cif import CifParser

    if not text.strip():
        raise InputError(source, "malformed CIF: empty CIF text")
    with _Captured() as cap:
        try:
            structures = CifParser.from_str(text).parse_structures(primitive=False, on_error="warn")
            error = None
        except Exception as exc:  # pymatgen raises ValueError/KeyError/ZeroDivisionError... on bad CIFs
            structures = []
            error = f"missing CIF key {exc}" if isinstance(exc, KeyError) else (str(exc) or type(exc).__name__)
    if structures:
        return structures
    details = [m for m in dict.fromkeys([*cap.messages, error]) if m and "no structures" not in m]
    detail = "; ".join(details)
    reason = "malformed CIF: no structure could be parsed" + (f" (pymatgen: {detail})" if detail else "")
    if not text.endswith("\n"):
        reason += "; the file looks truncated (its last line is incomplete)"
    raise InputError(source, _shorten(reason))


def parse_poscar(text: str, source: str) -> Structure:
    from pymatgen.io.vasp import Poscar

    with _Captured() as cap:
        try:
            return Poscar.from_str(text, read_velocities=False).structure
        except Exception as exc:
            hint = f" ({'; '.join(cap.messages)})" if cap.messages else ""
            raise InputError(source, _shorten(f"malformed POSCAR: {exc}{hint}")) from None


def _structure_from_dict(d, source: str) -> Structure:
    if not isinstance(d, dict) or "lattice" not in d or "sites" not in d:
        kind = d.get("@class", "dict") if isinstance(d, dict) else type(d).__name__
        raise InputError(source, f"malformed JSON: not a pymatgen Structure dict (got {kind})")
    if not d["sites"]:
        raise InputError(source, "empty structure: no atoms")
    with _Captured():
        try:
            return Structure.from_dict(d)
        except Exception as exc:
            raise InputError(source, _shorten(f"malformed JSON: bad pymatgen Structure dict: {exc}")) from None


def _single(structures: list[Structure], source: str) -> Structure:
    if len(structures) != 1:
        raise InputError(source, f"malformed CIF: expected one structure, found {len(structures)} data blocks")
    return structures[0]
