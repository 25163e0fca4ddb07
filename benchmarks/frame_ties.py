"""Which crystals of a data set tie on the canonical frame's score, and which does the tie-break move?

The canonical frame (`crystograph.graphs.frame`) picks the candidate frame with the lowest score. Frames tie on
that score when a symmetry operation maps one onto the other, and also where the crystal's shells without
species are more symmetric than the crystal (a half-Heusler); the second score (`frame_tiebreak_score`) decides
among tied frames. This script builds every structure's neighbour candidates and canonical frame as a model with
`--cell` would and counts, per task: structures with tied frames, structures still tied after the tie-break
(and whether a symmetry of the crystal explains it: every still-tied frame sees the same labelled shells,
element at both ends and vector), and structures whose chosen frame the tie-break changed (the first
tied frame in enumeration order was the pick before it: their graphs, hence any trained model's predictions, are
the ones that moved). It trains nothing.

    .venv/bin/python benchmarks/frame_ties.py local_mp_e_form local_matbench_jdft2d --cell primitive
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

RESULTS = _common.REPO_ROOT / "benchmarks" / "results"


def _labelled(vec, z_centre, z_neighbor, q) -> np.ndarray:
    """Rows (Z centre, Z neighbour, candidate vector in frame q) [E, 5]: the labelled shells in that frame."""
    return np.column_stack([z_centre, z_neighbor, vec @ q])


def _same_shells(frames, vec, z_centre, z_neighbor, tol: float = 1e-3) -> bool:
    """Whether every frame sees the same labelled shells (each row of one has a row of the other within `tol`
    Å, both ways; scipy's k-d tree): then a symmetry of the crystal relates them, and any of them gives the same
    graph up to atom order."""
    from scipy.spatial import cKDTree

    first = _labelled(vec, z_centre, z_neighbor, frames[0])
    tree = cKDTree(first)
    for q in frames[1:]:
        other = _labelled(vec, z_centre, z_neighbor, q)
        if np.isinf(tree.query(other, distance_upper_bound=tol)[0]).any():
            return False
        if np.isinf(cKDTree(other).query(first, distance_upper_bound=tol)[0]).any():
            return False
    return True


class _PickRecorder:
    """Wraps `frame._pick`: records, per call, the frames tied on the score, tied after the tie-break, whether
    the tie-break moved the pick away from the first tied frame, and whether the frames still tied see the same
    labelled shells (a tie a symmetry of the crystal explains)."""

    def __init__(self, frame_module):
        self.frame, self.real, self.calls = frame_module, frame_module._pick, []

    def __call__(self, frames, vec, z_centre, z_neighbor):
        tied, after = self.frame.tied_frames(frames, vec, z_centre, z_neighbor)
        explained = len(after) == 1 or _same_shells(frames[after], vec, z_centre, z_neighbor)
        self.calls.append((len(tied), len(after), not np.allclose(frames[tied[0]], frames[after[0]]), explained))
        return frames[int(after[0])]  # what `_pick` returns


def scan(task_name: str, cell: str, data_dir: str, limit: int | None) -> dict:
    from crystograph.bench.loaders import load_task
    from crystograph.bench.registry import get_task
    from crystograph.config import GraphConfig
    from crystograph.graphs import frame
    from crystograph.graphs.build import _structure_arrays
    from crystograph.graphs.cell import cell_for_graph
    from crystograph.graphs.neighbors import knn

    cfg = GraphConfig(cell=cell)
    loaded = load_task(get_task(task_name), data_dir, limit=limit, progress=False)
    recorder = _PickRecorder(frame)
    frame._pick = recorder
    tied, still_tied, moved, unexplained, failed = [], [], [], [], []
    try:
        for r in loaded.records:
            lattice, pos, z, pbc = _structure_arrays(r.structure, r.source)
            lattice, pos, z = cell_for_graph(lattice, pos, z, pbc, cfg)
            recorder.calls.clear()
            try:
                knn(pos, lattice, cfg.k, cfg.max_radius, atomic_numbers=z, periodic=pbc, on_isolated_atoms="ignore",
                    source=r.source, frame=cfg.frame)
            except Exception as err:  # a structure no model accepts: counted, not scanned
                failed.append(f"{r.id}: {type(err).__name__}")
                continue
            n_tied, n_after, was_moved, explained = recorder.calls[-1]
            if not explained:
                unexplained.append(str(r.id))
            if n_tied > 1:
                tied.append(str(r.id))
            if n_after > 1:
                still_tied.append(str(r.id))
            if was_moved:
                moved.append(str(r.id))
    finally:
        frame._pick = recorder.real
    return {"task": task_name, "cell": cell, "n_structures": len(loaded.records), "n_tied": len(tied),
            "n_tied_after_tiebreak": len(still_tied), "n_moved_by_tiebreak": len(moved), "moved": moved,
            "n_still_tied_not_by_symmetry": len(unexplained), "still_tied_not_by_symmetry": unexplained,
            "failed": failed}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("tasks", nargs="+")
    p.add_argument("--cell", choices=("as_given", "primitive"), default="as_given")
    p.add_argument("--limit", type=int, default=None, help="the first N rows only (a smoke test)")
    p.add_argument("--data-dir", default=str(_common.find_shared_data()))
    p.add_argument("--out", type=Path, default=None, help="default: benchmarks/results/frame_ties_<cell>.json")
    args = p.parse_args(argv)
    _common.set_threads(1)
    started = time.monotonic()
    rows = []
    for task in args.tasks:
        row = scan(task, args.cell, args.data_dir, args.limit)
        rows.append(row)
        print(f"{task}: {row['n_structures']} structures, {row['n_tied']} tied on the score, "
              f"{row['n_tied_after_tiebreak']} still tied after the tie-break "
              f"({row['n_still_tied_not_by_symmetry']} of them frames that see different labelled shells), "
              f"{row['n_moved_by_tiebreak']} moved by it"
              f"{', ' + str(len(row['failed'])) + ' failed' if row['failed'] else ''}")
    out = args.out or RESULTS / f"frame_ties_{args.cell}.json"
    _common.write_json(out, {"command": _common.command_line(), "commit": _common.git_commit(),
                             "hardware": _common.hardware(threads=1), "limit": args.limit,
                             "wall_s": time.monotonic() - started, "tasks": rows})
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
