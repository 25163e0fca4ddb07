"""Format names and detection: which reader a path (or ``fmt=``) means, and the id a file gives."""

from __future__ import annotations

from pathlib import Path

from crystograph.errors import InputError

FORMATS = ("cif", "poscar", "json", "matbench", "db", "cgcnn", "csv")
SUPPORTED = (
    "CIF (.cif, .cif.gz), POSCAR/CONTCAR (.vasp, .poscar), pymatgen or MatBench JSON (.json, .json.gz), "
    "ASE database (.db), CSV with a CIF column (.csv, .csv.gz), a CGCNN folder (id_prop.csv + <id>.cif)"
)
_FMT_ALIASES = {"vasp": "poscar", "contcar": "poscar", "pymatgen": "json", "ase": "db", "ase-db": "db"}


def detect_format(path: Path) -> str:
    """The ``fmt`` of a path from its name (or folder contents); ``InputError`` listing SUPPORTED otherwise."""
    if path.is_dir():
        return "cgcnn" if (path / "id_prop.csv").exists() else "dir"
    name = path.name.lower()
    if name.endswith((".cif", ".cif.gz")):
        return "cif"
    if name.startswith(("poscar", "contcar")) or name.endswith((".vasp", ".poscar")):
        return "poscar"
    if name.endswith((".json", ".json.gz")):
        return "json"
    if name.endswith(".db"):
        return "db"
    if name.endswith((".csv", ".csv.gz")):
        return "csv"
    ext = "".join(path.suffixes[-2:]) if name.endswith(".gz") else path.suffix
    raise InputError(str(path), f"unknown format '{ext or path.name}'; supported: {SUPPORTED}")


def _normalise_fmt(fmt: str | None, source: str) -> str | None:
    if fmt is None:
        return None
    f = _FMT_ALIASES.get(fmt.lower(), fmt.lower())
    if f not in FORMATS:
        raise InputError(source, f"unknown format '{fmt}'; supported fmt values: {', '.join(FORMATS)}")
    return f


def _stem(path: Path) -> str:
    name = path.name.removesuffix(".gz")
    if name.upper().startswith(("POSCAR", "CONTCAR")):
        return name
    suffix = next((x for x in (".cif", ".json", ".vasp", ".poscar", ".csv", ".db") if name.lower().endswith(x)), "")
    return name[: len(name) - len(suffix)] or path.name
