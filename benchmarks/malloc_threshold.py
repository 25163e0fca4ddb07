"""Peak resident memory and time of CPU training under glibc's malloc settings (``MALLOC_MMAP_THRESHOLD_``) and
under jemalloc.

    .venv/bin/python benchmarks/malloc_threshold.py [--n 400] [--steps 30] [--fits 2] [--rounds 2]
                                                    [--settings default,jemalloc,8388608,1048576]

Each setting runs in its own process (the variable is read when the process starts), the settings alternate for
``--rounds`` rounds so that a change in the machine's load hits them alike. A process builds the graphs of ``--n``
seeded MP structures, then trains the small preset for ``--steps`` optimiser steps ``--fits`` times (seeds 0..)
and reports each fit's seconds and the process's peak RSS (``ru_maxrss``). glibc keeps freed heap memory for
reuse; tensors below the mmap threshold live on that heap, and the line-graph activations of a training step
fragment it. A fixed threshold sends every allocation above it to its own mapping, returned to the system when
freed. ``jemalloc`` preloads ``--jemalloc`` (Debian: ``apt install libjemalloc2``) in place of glibc's malloc.
Writes ``benchmarks/results/malloc_threshold.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import _common  # noqa: E402

DATA = _common.SHARED_DATA / "mp_mtcgcnn" / "mp_eform_gap.csv.gz"


def _parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=400)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--fits", type=int, default=2)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--settings", default="default,jemalloc,8388608,1048576",
                   help="default | jemalloc | a MALLOC_MMAP_THRESHOLD_ in bytes, comma-separated")
    p.add_argument("--jemalloc", type=Path, default=Path("/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"))
    p.add_argument("--out", type=Path, default=HERE / "results" / "malloc_threshold.json")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def child(args: argparse.Namespace) -> None:
    """One setting: graphs, then `fits` short fits; prints one JSON line."""
    import resource
    import tempfile
    import time

    from crystograph.config import ModelConfig, TrainConfig
    from crystograph.data import build_graphs
    from crystograph.nn import CrysToGraph
    from crystograph.structures import StructureRecord, parse_cif
    from crystograph.train.fit import fit

    _common.set_threads(1)
    rows, _ = _common.sample_cif_rows(DATA, args.n, seed=1, columns=("formation_energy_per_atom",))
    records = [StructureRecord(id=r["id"], structure=parse_cif(r["cif"], r["id"])[0],
                               targets={"y": float(r["formation_energy_per_atom"])}, source=r["id"]) for r in rows]
    graphs, _ = build_graphs(records, targets=["y"], progress=False)
    cut = int(0.8 * len(graphs))
    fit_s = []
    for seed in range(args.fits):
        cfg = TrainConfig.preset("small", max_steps=args.steps, max_minutes=None, seed=seed, accelerator="cpu")
        start = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            fit(CrysToGraph(ModelConfig.preset("small")), graphs[:cut], graphs[cut:], cfg, tmp, progress=False)
        fit_s.append(time.perf_counter() - start)
    print(json.dumps({"fit_s": fit_s, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def main(args: argparse.Namespace) -> None:
    settings = args.settings.split(",")
    if "jemalloc" in settings and not args.jemalloc.exists():
        raise SystemExit(f"--settings jemalloc: {args.jemalloc} not found (apt install libjemalloc2, or --jemalloc)")
    runs = []
    for rnd in range(args.rounds):
        for setting in settings:
            env = dict(os.environ, OMP_NUM_THREADS="1")
            env.pop("MALLOC_MMAP_THRESHOLD_", None)
            if setting == "jemalloc":
                env["LD_PRELOAD"] = str(args.jemalloc)
            elif setting != "default":
                env["MALLOC_MMAP_THRESHOLD_"] = setting
            cmd = [sys.executable, __file__, "--child", "--n", str(args.n), "--steps", str(args.steps),
                   "--fits", str(args.fits)]
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if proc.returncode != 0:
                raise SystemExit(f"setting {setting} failed:\n{proc.stderr[-2000:]}")
            row = {"round": rnd, "setting": setting, **json.loads(proc.stdout.strip().splitlines()[-1])}
            runs.append(row)
            print(json.dumps(row), flush=True)
    summary = {}
    for setting in settings:
        mine = [r for r in runs if r["setting"] == setting]
        summary[setting] = {"peak_rss_mb_max": max(r["peak_rss_mb"] for r in mine),
                            "fit_s_mean": sum(sum(r["fit_s"]) for r in mine) / sum(len(r["fit_s"]) for r in mine)}
    base = summary[settings[0]]
    for s in summary.values():
        s["peak_vs_first"] = s["peak_rss_mb_max"] / base["peak_rss_mb_max"]
        s["time_vs_first"] = s["fit_s_mean"] / base["fit_s_mean"]
    result = {"benchmark": "malloc_threshold", "command": _common.command_line(), "n": args.n, "steps": args.steps,
              "fits": args.fits, "rounds": args.rounds, "data_source": _common.data_source(DATA),
              "hardware": _common.hardware(1), "git_commit": _common.git_commit(), "summary": summary, "runs": runs,
              "note": "small preset, batch 32, one thread; settings alternate per round; peak = ru_maxrss"}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    ARGS = _parse_args()
    child(ARGS) if ARGS.child else main(ARGS)
