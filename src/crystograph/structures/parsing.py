"""Text -> pymatgen ``Structure``: file reading (gunzip), CIF, POSCAR and pymatgen-dict parsers."""

from __future__ import annotations

import gzip
import warnings
from pathlib import Path
from typing import Literal, get_args

from pymatgen.core import Structure

from crystograph.errors import InputError
from crystograph.structures.fast_cif import parse_plain_cif

CifReader = Literal["auto", "pymatgen"]
CIF_READERS: tuple[str, ...] = get_args(CifReader)

_REASON_MAX = 300


def _shorten(text: str, limit: int = _REASON_MAX) -> str:
    """One line of at most `limit` characters; a long text keeps its start and its end (where pymatgen puts
    the reason) and drops the middle."""
    text = " ".join(str(text).split())
    if len(text) <= limit:
        return text
    head = (2 * limit) // 3
    return text[:head].rstrip() + " … " + text[len(text) - (limit - head - 3):].lstrip()


def _is_binary(raw: bytes) -> bool:
    """NUL bytes, or mostly non-text bytes, in the first 8 kB: not a text structure file."""
    sample = raw[:8192]
    if b"\x00" in sample:
        return True
    text_bytes = bytes(range(32, 127)) + b"\n\r\t\f\b"
    odd = sum(1 for b in sample if b not in text_bytes and b < 128)
    undecodable = sample.decode("utf-8", errors="replace").count("\ufffd")
    return bool(sample) and (odd + undecodable) > 0.1 * len(sample)


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
    if _is_binary(raw):
        raise InputError(source, "binary file, not a text structure file (CIF, POSCAR, JSON and CSV are text); "
                                 "is it compressed or in another format?")
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


def parse_cif(text: str, source: str, reader: CifReader = "auto") -> list[Structure]:
    """All structures (data blocks) in a CIF text; ``InputError("malformed CIF: ...")`` if none parse.

    ``reader``: "auto" reads plain P1 CIFs with gemmi (`fast_cif`: the same `Structure` as pymatgen's, several
    times faster) and everything else, errors included, with pymatgen's `CifParser`; "pymatgen" always uses
    `CifParser`."""
    from pymatgen.io.cif import CifParser

    if reader not in CIF_READERS:
        raise ValueError(f"reader={reader!r}; choose one of {', '.join(CIF_READERS)}")
    if not text.strip():
        raise InputError(source, "malformed CIF: empty CIF text")
    if reader == "auto":
        fast = parse_plain_cif(text)
        if fast is not None:
            return [fast]
    with _Captured() as cap:
        try:
            structures = CifParser.from_str(text).parse_structures(primitive=False, on_error="warn")
            error = None
        except Exception as exc:  # pymatgen raises ValueError/KeyError/ZeroDivisionError... on bad CIFs
            structures = []
            error = f"missing CIF key {exc}" if isinstance(exc, KeyError) else (str(exc) or type(exc).__name__)
    if structures:
        return structures
    details = [m for m in dict.fromkeys([error, *cap.messages]) if m and "no structures" not in m]
    detail = _shorten("; ".join(details), _REASON_MAX - 80)  # the exception first: it says why
    if any(key in m.lower() for m in details for key in ("singular matrix", "below threshold")):
        reason = "degenerate lattice: the cell vectors span (almost) no volume"
    else:
        reason = "malformed CIF: no structure could be parsed"
    reason += f" (pymatgen: {detail})" if detail else ""
    if not text.endswith("\n"):
        reason += "; the file looks truncated (its last line is incomplete)"
    raise InputError(source, reason)


_FALSE_NAMES = "defaulting to false names"  # pymatgen's warning when a POSCAR has no species line


def parse_poscar(text: str, source: str, species: list[str] | None = None) -> Structure:
    """A POSCAR/CONTCAR text; one without a species line (VASP 4) needs `species` (from a POTCAR or the user),
    else ``InputError`` (pymatgen would silently call its elements H, He, …)."""
    from pymatgen.io.vasp import Poscar

    with _Captured() as cap:
        try:
            structure = Poscar.from_str(text, read_velocities=False).structure
        except Exception as exc:
            hint = f" ({'; '.join(cap.messages)})" if cap.messages else ""
            raise InputError(source, _shorten(f"malformed POSCAR: {exc}{hint}")) from None
    if not any(_FALSE_NAMES in m.lower() for m in cap.messages):
        return structure
    if not species:
        raise InputError(source, "POSCAR without a species line (VASP 4 format): its elements are unknown; add "
                                 "the element symbols above the counts line, put its POTCAR beside it, or name "
                                 "them with --poscar-species (e.g. 'Na Cl')")
    n_kinds = len(structure.composition.elements)
    if len(species) != n_kinds:
        raise InputError(source, f"POSCAR has {n_kinds} species counts but {len(species)} species were given "
                                 f"({' '.join(species)})")
    with _Captured():
        try:
            return Poscar.from_str(text, default_names=list(species), read_velocities=False).structure
        except Exception as exc:
            raise InputError(source, _shorten(f"malformed POSCAR with species {' '.join(species)}: {exc}")) from None


def potcar_species(path: Path) -> list[str] | None:
    """Element symbols, in order, of the POTCAR beside a POSCAR (``TITEL = PAW_PBE Fe_pv 06Sep2000``), or None."""
    potcar = path.parent / "POTCAR"
    if not potcar.is_file():
        return None
    try:
        lines = potcar.read_text(errors="replace").splitlines()
    except OSError:
        return None
    titles = [line.split("=", 1)[1].split() for line in lines if line.strip().startswith("TITEL")]
    symbols = [t[1].split("_")[0] for t in titles if len(t) > 1]
    return symbols or None


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
