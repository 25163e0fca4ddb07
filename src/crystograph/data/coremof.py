"""CoRE MOF 2019 (PyPI ``core-mof``, module ``CoRE_MOF``): crystograph's embedded default dataset (``make demo``).

The package ships per-subset property tables (``<subset>.csv``: LCD = largest cavity diameter in Å, PLD = pore
limiting diameter, ASA/NASA surface areas, AV_VF void fraction, ...) and the CIFs as ``<subset>.tar.xz``.
``load_coremof`` extracts the archive once into ``default_cache_dir()/core-mof/<subset>``, writing an index of
atoms per cell (``index.csv``; counted from the CIF text, with pymatgen only for the few non-P1 files), so later
calls parse only the CIFs that pass the size filter.
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import sys
import tarfile
from importlib import metadata, resources
from pathlib import Path

from crystograph.errors import InputError, Skipped
from pymatgen.core import Lattice, Structure

from crystograph.structures import (
    MAX_Z,
    MIN_DISTANCE,
    ReadResult,
    StructureRecord,
    parse_cif,
    validate_structure,
)

from crystograph.paths import cache_dir  # noqa: E402

INDEX = "index.csv"
_SYMOP_KEYS = ("_symmetry_equiv_pos_as_xyz", "_space_group_symop_operation_xyz")


def default_cache_dir() -> Path:
    """The crystograph cache (see `crystograph.paths.cache_dir`)."""
    return cache_dir()


def count_atoms_cif(text: str) -> int | None:
    """Sites in a one-block P1 CIF, counted from its atom-site loop without parsing; None when unsure.

    Unsure = no atom-site loop, several data blocks, or more than one symmetry operation (then the
    number of sites in the cell is not the number of rows). Loop rows are assumed one per line, which
    holds for CoRE MOF's writers (Materials Studio, ASE, pymatgen).
    """
    lines = text.splitlines()
    if sum(line.lstrip().lower().startswith("data_") for line in lines) > 1:
        return None
    n_atoms, n_ops, i = None, 1, 0
    while i < len(lines):
        if lines[i].strip().lower() != "loop_":
            i += 1
            continue
        i += 1
        heads = []
        while i < len(lines) and lines[i].strip().startswith("_"):
            heads.append(lines[i].split()[0].lower())
            i += 1
        rows = 0
        while i < len(lines):
            s = lines[i].strip()
            if s.startswith("_") or s.lower() == "loop_" or s.lower().startswith("data_"):
                break
            rows += bool(s) and not s.startswith("#")
            i += 1
        if "_atom_site_fract_x" in heads or "_atom_site_cartn_x" in heads:
            n_atoms = rows
        if any(h in _SYMOP_KEYS for h in heads):
            n_ops = rows
    return n_atoms if n_atoms and n_ops == 1 else None


def _archive(subset: str):
    import CoRE_MOF

    if subset not in CoRE_MOF.list_datasets():
        raise InputError("CoRE MOF", f"unknown subset '{subset}'; available: {', '.join(CoRE_MOF.list_datasets())}")
    return resources.files(CoRE_MOF.data) / f"{subset}.tar.xz"


def _version() -> str:
    try:
        return metadata.version("core-mof")
    except metadata.PackageNotFoundError:
        return "unknown"


def coremof_dir(subset: str = "2019-ASR", cache_dir: Path | None = None, progress: bool = True) -> Path:
    """The extracted subset (``<dir>/cif/*.cif`` and ``<dir>/index.csv``), extracting it on first use.

    Extraction goes to a private ``.partial`` folder next to the target and is renamed into place when
    complete, so an interrupted or concurrent run never leaves a half-written cache behind.
    """
    archive = _archive(subset)
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    target = root / "core-mof" / subset
    stamp = f"core-mof {_version()}"
    if (target / INDEX).is_file() and (target / "VERSION").is_file() and (target / "VERSION").read_text() == stamp:
        return target
    if progress:
        print(f"crystograph: extracting CoRE MOF {subset} to {target} (once)", file=sys.stderr)
    partial = target.parent / f".{subset}.partial-{os.getpid()}"
    for stale in target.parent.glob(f".{subset}.partial-*"):  # left by interrupted runs
        if stale == partial or not _alive(stale.name.rsplit("-", 1)[-1]):
            shutil.rmtree(stale, ignore_errors=True)
    (partial / "cif").mkdir(parents=True)
    rows = []
    with archive.open("rb") as fh, tarfile.open(fileobj=fh, mode="r|xz") as tar:
        for member in tar:
            name = member.name.rsplit("/", 1)[-1]
            if not (member.isfile() and member.size > 0 and name.endswith(".cif") and not name.startswith(".")):
                continue
            data = tar.extractfile(member).read()
            (partial / "cif" / name).write_bytes(data)  # basename only: no path from the archive is trusted
            rows.append((name[:-4], *_count(data.decode("utf-8", errors="replace"))))
    with (partial / INDEX).open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["filename", "n_atoms", "counted_by"])
        writer.writerows(sorted(rows))
    (partial / "VERSION").write_text(stamp)
    shutil.rmtree(target, ignore_errors=True)
    try:
        partial.rename(target)
    except OSError:  # another process finished first
        shutil.rmtree(partial, ignore_errors=True)
    return target


def _alive(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def _count(text: str) -> tuple[int, str]:
    n = count_atoms_cif(text)
    if n is not None:
        return n, "text"
    try:
        return len(parse_cif(text, "cif")[0]), "pymatgen"
    except InputError:
        return -1, "unreadable"


def load_coremof(
    prop: str = "LCD",
    max_atoms: int = 60,
    limit: int | None = None,
    subset: str = "2019-ASR",
    cache_dir: Path | None = None,
    progress: bool = True,
) -> ReadResult:
    """Ordered, validated CoRE MOF structures with at most ``max_atoms`` atoms and a finite ``prop``.

    Records are in filename order (``id`` = CoRE MOF refcode/filename, ``targets = {prop: value}``, ``source``
    = the cached CIF path); at most ``limit`` of them. MOFs over ``max_atoms`` or without a finite ``prop`` are
    filtered out (not inputs); candidates that fail to parse or validate are returned in ``skipped``.
    """
    import CoRE_MOF
    import pandas as pd

    _archive(subset)  # checks the subset name
    table = CoRE_MOF.get_properties(subset)
    numeric = [c for c in table.columns if pd.api.types.is_numeric_dtype(table[c]) and not c.startswith("Unnamed")]
    if prop not in numeric:
        raise InputError(f"CoRE MOF {subset}", f"unknown property '{prop}'; available: {', '.join(numeric)}")
    root = coremof_dir(subset, cache_dir, progress)
    index = pd.read_csv(root / INDEX, dtype={"filename": str})
    values = dict(zip(table["filename"].astype(str), table[prop]))
    index = index[(index["n_atoms"] > 0) & (index["n_atoms"] <= max_atoms)]
    candidates = [(f, float(values[f])) for f in index["filename"] if f in values and math.isfinite(values[f])]
    result = ReadResult()
    parsed = _ParsedCache(root)
    items = candidates
    if progress:
        from rich.progress import track

        items = track(candidates, description=f"CoRE MOF {subset} ≤{max_atoms} atoms", transient=True)
    for name, value in items:
        if limit is not None and len(result.records) >= limit:
            break
        path = root / "cif" / f"{name}.cif"
        try:
            structure = parsed.get(name, path)
            if len(structure) > max_atoms:  # the text count is verified against pymatgen's
                raise InputError(str(path), f"has {len(structure)} atoms after parsing (> max_atoms {max_atoms})")
        except InputError as exc:
            result.skipped.append(Skipped(exc.source, exc.reason))
            continue
        result.records.append(StructureRecord(name, structure, {prop: value}, str(path)))
    parsed.close()
    return result


class _ParsedCache:
    """Validated structures (lattice, species, fractional coords) or their rejection reasons, one JSON line per
    CIF, so a later call rebuilds them in well under a millisecond each instead of re-parsing the CIF.
    The file name carries the validation rules, so changing them starts a fresh cache."""

    def __init__(self, root: Path):
        self.path = root / f"parsed-d{MIN_DISTANCE}-z{MAX_Z}.jsonl"
        self.entries: dict[str, dict] = {}
        if self.path.is_file():
            for line in self.path.read_text().splitlines():
                try:
                    entry = json.loads(line)
                    self.entries[entry["id"]] = entry
                except (ValueError, KeyError, TypeError):  # a line cut short by an interrupted run
                    continue
        self._new: list[dict] = []

    def get(self, name: str, path: Path) -> Structure:
        entry = self.entries.get(name)
        if entry is None:
            try:
                s = validate_structure(parse_cif(path.read_text(errors="replace"), str(path))[0], str(path))
                entry = {"id": name, "lattice": s.lattice.matrix.tolist(), "species": [str(x) for x in s.species],
                         "frac": s.frac_coords.round(10).tolist()}
            except InputError as exc:
                entry = {"id": name, "reason": exc.reason}
            self.entries[name] = entry
            self._new.append(entry)
            if len(self._new) >= 200:
                self.close()
        if "reason" in entry:
            raise InputError(str(path), entry["reason"])
        return Structure(Lattice(entry["lattice"]), entry["species"], entry["frac"])

    def close(self) -> None:
        if self._new:
            with self.path.open("a") as fh:
                fh.write("".join(json.dumps(e) + "\n" for e in self._new))
            self._new = []
