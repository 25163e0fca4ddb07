"""What reading produces: ``StructureRecord``, ``ReadResult`` (with its skip summary) and the readers' ``_Item``."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from pymatgen.core import Structure

from crystograph.errors import Skipped


@dataclass
class StructureRecord:
    """One structure read from an input, with its id, targets and where it came from."""

    id: str
    structure: Structure
    targets: dict[str, float]
    source: str


@dataclass
class ReadResult:
    """Records read and inputs skipped; ``len(records) + len(skipped)`` = number of inputs."""

    records: list[StructureRecord] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    # Folder entries not read on purpose (hidden files, subfolders without ``recursive``): listed, not errors.
    ignored: list[Skipped] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[StructureRecord]:
        return iter(self.records)

    def summary(self) -> str:
        """``"read 10, skipped 3: 2 partial occupancy, 1 overlapping atoms"``."""
        text = f"read {len(self.records)}, skipped {len(self.skipped)}"
        if self.skipped:
            counts = Counter(_category(s.reason) for s in self.skipped)
            text += ": " + ", ".join(f"{n} {cat}" for cat, n in counts.most_common())
        if self.ignored:
            text += f"; ignored {len(self.ignored)} folder entr{'y' if len(self.ignored) == 1 else 'ies'}"
        return text


_CATEGORIES = (
    ("empty file", "empty file"),
    ("no such file", "missing file"),
    ("unknown format", "unknown format"),
    ("partial occupancy", "partial occupancy"),
    ("overlapping atoms", "overlapping atoms"),
    ("feature table", "unsupported element"),
    ("empty structure", "empty structure"),
    ("missing target", "missing target"),
    ("is nan", "NaN target"),
    ("is infinite", "infinite target"),
    ("not a number", "non-numeric target"),
    ("duplicate id", "duplicate id"),
    ("missing cif file", "missing CIF file"),
    ("malformed", "malformed file"),
    ("binary file", "binary file"),
    ("degenerate lattice", "degenerate lattice"),
    ("species line", "POSCAR without species"),
    ("symlink", "bad symlink"),
    ("beyond float32", "target out of range"),
)


def _category(reason: str) -> str:
    low = reason.lower()
    for key, name in _CATEGORIES:
        if key in low:
            return name
    return reason.split(":")[0].split(";")[0][:40]


# A reader yields, per input, either an _Item (its structure is loaded lazily) or the InputError for it.
@dataclass
class _Item:
    id: str
    source: str
    load: Callable[[], Structure]
    targets: dict[str, object]  # raw target values, checked by _targets
    wanted: list[str] | None  # target names this input must provide (None: keep the numeric ones it has)


@dataclass
class _Ignored:
    """A folder entry that is not read on purpose (a hidden file, a subfolder without ``recursive``)."""

    source: str
    reason: str


def _fixed(s: Structure) -> Callable[[], Structure]:
    return lambda: s


def _as_list(target) -> list[str]:
    return [target] if isinstance(target, str) else [str(t) for t in target]
