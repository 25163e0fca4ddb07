"""Graph-building throughput: crystograph.graphs.build_graph vs ALIGNN's DGL-free builder.

    .venv/bin/python benchmarks/graph_build.py [--n 2000] [--seed 0] [--threads 1] [--default-threads]

Runs in OUR venv. Draws a seeded random sample of structures from
``../shared/data/mp_mtcgcnn/mp_eform_gap.csv.gz``, then on the very same structures:

* ours: CIF -> pymatgen ``Structure`` by ``crystograph.structures.parse_cif`` (timed separately, ``parse_wall_s``;
  pymatgen's own reader on the same CIFs in ``parse_wall_s_pymatgen``), then
  ``crystograph.graphs.build_graph(structure)`` with the default ``GraphConfig`` -- only this is in ``wall_s``;
* ALIGNN: ``benchmarks/alignn_graph_build.py`` in the ALIGNN venv (``$ALIGNN_VENV``, default
  /work/alignn-venv, made by ``benchmarks/setup_alignn.sh``) as a subprocess, cutoff 8 A, max 12 neighbours,
  line graph on; CIF -> jarvis Atoms conversion is likewise outside ``wall_s``.

Both processes get the same thread count (``OMP_NUM_THREADS`` and ``torch.set_num_threads``; default 1)
and run one after the other, never at the same time. Each side builds its first structure once untimed
(warm-up). ``--repeats R`` times each side R times (interleaved) and keeps the fastest wall time, which
damps noise from other jobs on a shared machine. Writes ``benchmarks/results/graph_build.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import _common  # noqa: E402

DEFAULT_DATA = _common.SHARED_DATA / "mp_mtcgcnn" / "mp_eform_gap.csv.gz"


def _parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=2000, help="structures in the sample (default 2000)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    p.add_argument("--threads", type=int, default=1, help="threads for both builders (default 1)")
    p.add_argument("--default-threads", action="store_true",
                   help="also time both builders with their library-default thread count")
    p.add_argument("--repeats", type=int, default=1, help="time each side R times, keep the fastest")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="CSV(.gz) with material_id and cif")
    p.add_argument("--alignn-venv", type=Path, default=_common.DEFAULT_ALIGNN_VENV)
    p.add_argument("--skip-alignn", action="store_true", help="time only our builder")
    p.add_argument("--compact", action="store_true",
                   help="time build_graph(..., expand_features=False), the form datasets and the graph cache use "
                        "(RBF expansions are then computed per batch in the model)")
    p.add_argument("--skip-ours", action="store_true", help="time only ALIGNN (tests the ALIGNN side)")
    p.add_argument("--profile", type=Path, default=None,
                   help="also cProfile our builder over the sample; write pstats here, top entries into the JSON")
    p.add_argument("--ours-ref", default="HEAD",
                   help="git ref of crystograph to time (exported to a temp dir, so uncommitted edits in the shared "
                        "tree are not measured); 'worktree' = the working tree as it is (default HEAD)")
    p.add_argument("--workers", type=int, default=None,
                   help="also time build_graphs(records) in this process (the bulk builder, many structures per call) "
                        "and with workers=N (0 = every usable core): compact graphs built in "
                        "N processes, worker start-up included, against ALIGNN's one-process builder of the same run")
    p.add_argument("--out", type=Path, default=HERE / "results" / "graph_build.json")
    return p.parse_args(argv)


ARGS = _parse_args()
if ARGS.threads > 0:  # before torch/numpy start their thread pools
    _common.set_threads(ARGS.threads)


def _export_ours(ref: str) -> tuple[str | None, str | None]:
    """Put a clean copy of src/crystograph at ``ref`` first on sys.path; returns (commit, tmpdir)."""
    if ref == "worktree":
        return None, None
    commit = subprocess.run(["git", "rev-parse", ref], cwd=_common.REPO_ROOT, capture_output=True, text=True,
                            check=True).stdout.strip()
    tmp = tempfile.mkdtemp(prefix="graph_build_src_")
    archive = subprocess.run(["git", "archive", commit, "src/crystograph"], cwd=_common.REPO_ROOT,
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
    sys.path.insert(0, str(Path(tmp) / "src"))
    return commit, tmp


OURS_COMMIT, OURS_TMP = _export_ours(ARGS.ours_ref)

import torch  # noqa: E402

csv.field_size_limit(1 << 30)


# ----------------------------------------------------------------------------------------------
# data
# ----------------------------------------------------------------------------------------------

def load_sample(path: Path, n: int, seed: int) -> tuple[list[dict[str, str]], int]:
    """Seeded sample of ``n`` rows (``_common.sample_cif_rows``: file order kept) and the file's row count."""
    return _common.sample_cif_rows(path, n, seed)


# ----------------------------------------------------------------------------------------------
# ours
# ----------------------------------------------------------------------------------------------

def parse_structures(sample, reader: str = "auto"):
    """CIF -> pymatgen Structure with the library's reader (`structures.parse_cif`: gemmi for plain CIFs, else
    pymatgen) or, with reader="pymatgen", pymatgen's CifParser for every CIF."""
    import warnings

    from crystograph.structures import parse_cif

    out, failures = [], []
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for row in sample:
            try:
                out.append((row["id"], parse_cif(row["cif"], row["id"], reader=reader)[0]))
            except Exception as exc:  # noqa: BLE001
                failures.append({"id": row["id"], "stage": "parse", "error": f"{type(exc).__name__}: {exc}"})
    return out, failures, time.perf_counter() - t0


def time_ours(structures, threads: int) -> dict:
    from crystograph.graphs import build_graph

    if threads > 0:
        torch.set_num_threads(threads)
    expand = not getattr(ARGS, "compact", False)
    if structures:
        build_graph(structures[0][1], expand_features=expand)  # warm-up, untimed
    per, failures = [], []
    c_start = time.process_time()
    t_start = time.perf_counter()
    for sid, s in structures:
        t = time.perf_counter()
        try:
            g = build_graph(s, expand_features=expand)
        except Exception as exc:  # noqa: BLE001
            failures.append({"id": sid, "stage": "build", "error": f"{type(exc).__name__}: {exc}"})
            continue
        dt = time.perf_counter() - t
        per.append((sid, int(g.num_nodes), int(g.edge_index.size(1)), int(g.lg_edge_index.size(1)), dt))
    wall = time.perf_counter() - t_start
    cpu = time.process_time() - c_start
    return {
        "n": len(per),
        "wall_s": wall,
        "cpu_s": cpu,
        "structures_per_cpu_s": len(per) / cpu if cpu > 0 else None,
        "sum_per_structure_s": sum(p[4] for p in per),
        "structures_per_s": len(per) / wall if wall > 0 else None,
        "threads": torch.get_num_threads(),
        "failures": failures,
        "_per": per,
    }


def time_bulk(structures, workers: int) -> dict:
    """Wall time of one `build_graphs` call over every structure (compact graphs, no cache, no progress bar)."""
    from crystograph.data import build_graphs
    from crystograph.data.parallel import resolve_workers
    from crystograph.structures import StructureRecord

    records = [StructureRecord(id=sid, structure=s, targets={}, source=sid) for sid, s in structures]
    t0 = time.perf_counter()
    graphs, skipped = build_graphs(records, progress=False, workers=workers)
    wall = time.perf_counter() - t0
    return {"call": f"build_graphs(records, workers={workers})", "workers_used": resolve_workers(workers, len(records)),
            "n": len(graphs), "skipped": len(skipped), "wall_s": wall,
            "structures_per_s": len(graphs) / wall if wall > 0 else None,
            "note": "compact graphs (expand_features=False, what datasets store); process start-up included"}


def profile_ours(structures, path: Path, top: int = 25) -> dict:
    import cProfile
    import pstats

    from crystograph.graphs import build_graph

    prof = cProfile.Profile()
    prof.enable()
    for _, s in structures:
        try:
            build_graph(s, expand_features=not ARGS.compact)
        except Exception:  # noqa: BLE001
            pass
    prof.disable()
    path.parent.mkdir(parents=True, exist_ok=True)
    prof.dump_stats(str(path))
    st = pstats.Stats(prof)
    total = max(st.total_tt, 1e-12)
    rows, ours = [], []
    for (fname, line, func), (cc, nc, tt, ct, _) in st.stats.items():
        entry = {"function": f"{Path(fname).name}:{line}({func})", "ncalls": nc, "tottime_s": round(tt, 4),
                 "cumtime_s": round(ct, 4), "cum_share": round(ct / total, 3)}
        rows.append(entry)
        if "crystograph" in fname:
            ours.append({**entry, "function": f"{fname.split('crystograph/')[-1]}:{line}({func})"})
    rows.sort(key=lambda r: r["tottime_s"], reverse=True)
    ours.sort(key=lambda r: r["cumtime_s"], reverse=True)
    return {"total_s_under_profiler": round(total, 4), "n_structures": len(structures),
            "top_tottime": rows[:top], "crystograph_functions_by_cumtime": ours[:top]}


# ----------------------------------------------------------------------------------------------
# ALIGNN (subprocess in its own venv)
# ----------------------------------------------------------------------------------------------

def time_alignn(csv_path: Path, venv: Path, threads: int, workdir: Path, tag: str) -> dict:
    py = venv / "bin" / "python"
    if not py.exists():
        raise SystemExit(f"ALIGNN venv not found at {venv}; run: bash benchmarks/setup_alignn.sh")
    out = workdir / f"alignn_{tag}.json"
    per_csv = workdir / f"alignn_{tag}_per.csv"
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        if threads > 0:
            env[var] = str(threads)
        else:
            env.pop(var, None)
    cmd = [str(py), str(HERE / "alignn_graph_build.py"), str(csv_path), "--cutoff", "8", "--max-neighbors", "12",
           "--threads", str(threads), "--out", str(out), "--per-structure", str(per_csv)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"ALIGNN graph build failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    res = json.loads(out.read_text())
    with open(per_csv, newline="") as fh:
        res["_per"] = [(r["id"], int(r["natoms"]), int(r["edges"]), int(r["line_edges"]), float(r["seconds"]))
                       for r in csv.DictReader(fh)]
    return res


# ----------------------------------------------------------------------------------------------

def _stats(per) -> dict:
    return {
        "natoms": _common.describe([p[1] for p in per]),
        "edges": _common.describe([p[2] for p in per]),
        "line_edges": _common.describe([p[3] for p in per]),
        "edges_per_atom": _common.describe([p[2] / p[1] for p in per if p[1]]),
        "line_edges_per_edge": _common.describe([p[3] / p[2] for p in per if p[2]]),
        "seconds_per_structure": _common.describe([p[4] for p in per]),
    }


def _median_s(per) -> float:
    import statistics

    return statistics.median(p[4] for p in per)


def _summary(res: dict | None) -> dict | None:
    if res is None:
        return None
    out = {k: v for k, v in res.items() if not k.startswith("_") and k not in ("edges", "line_edges", "natoms")}
    out["per_structure"] = _stats(res["_per"])
    return out


def _best(runs: list[dict]) -> dict:
    best = min(runs, key=lambda r: r["wall_s"])
    best = dict(best)
    best["wall_s_all_repeats"] = [r["wall_s"] for r in runs]
    best["cpu_s_all_repeats"] = [r.get("cpu_s") for r in runs]
    return best


def run_pair(structures, csv_path, args, threads: int, workdir: Path, tag: str):
    ours_runs, alignn_runs = [], []
    for rep in range(args.repeats):
        if not args.skip_ours:
            ours_runs.append(time_ours(structures, threads))
            print(f"[graph_build] {tag} rep {rep}: ours {ours_runs[-1]['structures_per_s']:.1f} structures/s",
                  file=sys.stderr)
        if not args.skip_alignn:
            alignn_runs.append(time_alignn(csv_path, args.alignn_venv, threads, workdir, f"{tag}_{rep}"))
            print(f"[graph_build] {tag} rep {rep}: alignn {alignn_runs[-1]['structures_per_s']:.1f} structures/s",
                  file=sys.stderr)
    ours = _best(ours_runs) if ours_runs else None
    alignn = _best(alignn_runs) if alignn_runs else None
    block = {"threads": threads if threads > 0 else "library default", "ours": _summary(ours),
             "alignn": _summary(alignn)}
    if ours and alignn:
        block["ratio_ours_over_alignn_structures_per_s"] = ours["structures_per_s"] / alignn["structures_per_s"]
        block["ratio_ours_over_alignn_structures_per_cpu_s"] = (
            ours["structures_per_cpu_s"] / alignn["structures_per_cpu_s"])
        block["ratio_ours_over_alignn_median_seconds_per_structure"] = (
            _median_s(alignn["_per"]) / _median_s(ours["_per"]))
        a_per = {p[0]: p for p in alignn["_per"]}
        both = [(p, a_per[p[0]]) for p in ours["_per"] if p[0] in a_per]
        block["n_common"] = len(both)
        block["natoms_mismatch_ids"] = [p[0] for p, a in both if p[1] != a[1]][:20]
        block["ratio_ours_over_alignn_edges"] = _common.describe([p[2] / a[2] for p, a in both if a[2]])
        block["ratio_ours_over_alignn_line_edges"] = _common.describe([p[3] / a[3] for p, a in both if a[3]])
    return block


def _dirty_graphs() -> list[str]:
    out = subprocess.run(["git", "status", "--porcelain", "src/crystograph/graphs"], cwd=_common.REPO_ROOT,
                         capture_output=True, text=True).stdout
    return [ln.strip() for ln in out.splitlines()]


def _module_file() -> str | None:
    try:
        import crystograph.graphs as cg
    except ImportError:
        return None
    return cg.__file__


def _end_to_end(n: int, parse_wall: float, results: dict) -> dict | None:
    """File -> graph: structures per second of parsing plus building, ours (parse_cif, then the fastest bulk
    build) and ALIGNN's (jarvis conversion, then its builder)."""
    alignn = results["fixed_threads"].get("alignn") or {}
    bulk = [r["wall_s"] for k, r in results.items() if k.startswith("bulk_")]
    if not bulk or not alignn.get("wall_s") or alignn.get("convert_wall_s") is None:
        return None
    ours = n / (parse_wall + min(bulk))
    theirs = alignn["n"] / (alignn["convert_wall_s"] + alignn["wall_s"])
    return {"ours_structures_per_s": ours, "alignn_structures_per_s": theirs, "ratio_ours_over_alignn": ours / theirs,
            "note": "parse (one process) + fastest bulk build; ALIGNN: CIF -> jarvis Atoms + its builder"}


def main(args: argparse.Namespace) -> dict:
    t_all = time.perf_counter()
    sample, n_rows = load_sample(args.data, args.n, args.seed)
    print(f"[graph_build] sampled {len(sample)} of {n_rows} structures (seed {args.seed})", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="graph_build_") as tmp:
        workdir = Path(tmp)
        csv_path = workdir / "structures.csv"
        with open(csv_path, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["id", "cif"])
            w.writerows((r["id"], r["cif"]) for r in sample)

        structures, parse_failures, parse_wall = ([], [], 0.0) if args.skip_ours else parse_structures(sample)
        parse_wall_pymatgen = None if args.skip_ours else parse_structures(sample, "pymatgen")[2]
        results = {"fixed_threads": run_pair(structures, csv_path, args, args.threads, workdir, "fixed")}
        if args.default_threads:
            # Undo the pinning for this pass: torch default = number of usable cores.
            torch.set_num_threads(os.cpu_count() or 1)
            results["default_threads"] = run_pair(structures, csv_path, args, 0, workdir, "default")
        if args.workers is not None and not args.skip_ours:
            alignn_rate = (results["fixed_threads"]["alignn"] or {}).get("structures_per_s")
            for key, workers in (("bulk_serial", 1), ("bulk_workers", args.workers)):
                if key == "bulk_workers" and workers == 1:
                    continue
                runs = [time_bulk(structures, workers) for _ in range(args.repeats)]
                bulk = dict(min(runs, key=lambda r: r["wall_s"]), wall_s_all_repeats=[r["wall_s"] for r in runs])
                if alignn_rate:
                    bulk["ratio_over_alignn_structures_per_s"] = bulk["structures_per_s"] / alignn_rate
                results[key] = bulk
                print(f"[graph_build] build_graphs(workers={workers}): {bulk['structures_per_s']:.1f} structures/s",
                      file=sys.stderr)
        profile = None
        if args.profile is not None and not args.skip_ours:
            torch.set_num_threads(args.threads if args.threads > 0 else (os.cpu_count() or 1))
            profile = profile_ours(structures, args.profile)

    fixed = results["fixed_threads"]
    report = {
        "benchmark": "graph_build",
        "command": _common.command_line(),
        "seed": args.seed,
        "n": len(sample),
        "data_source": {**_common.data_source(args.data), "rows_in_file": n_rows,
                        "sampling": "random.Random(seed).sample(range(rows), n), then file order"},
        "hardware": _common.hardware(args.threads),
        "threads": args.threads,
        "repeats": args.repeats,
        "ours": {
            "builder": "crystograph.graphs.build_graph(structure) with default GraphConfig"
                       + (", expand_features=False (compact: no RBF expansions)" if args.compact else ""),
            "code": ({"ref": ARGS.ours_ref, "commit": OURS_COMMIT,
                      "note": "clean git-archive export of src/crystograph"}
                     if OURS_COMMIT else {"ref": "worktree", "commit": _common.git_commit(),
                                          "uncommitted_graph_changes": _dirty_graphs()}),
            "module_file": _module_file(),
            "parse_wall_s": parse_wall,
            "parse_wall_s_pymatgen": parse_wall_pymatgen,
            "parse_note": "CIF -> pymatgen Structure by crystograph.structures.parse_cif (gemmi fast path for plain "
                          "CIFs; parse_wall_s_pymatgen: reader='pymatgen'); not included in wall_s",
            "parse_failures": parse_failures,
        },
        "alignn": {"builder": "alignn.torch_graph_builder.build_pure_torch_graph "
                              "(cutoff 8 A, max_neighbors 12, three_body_cutoff 8 A, cgcnn features, line graph)",
                   "venv": str(args.alignn_venv)},
        "wall_s_ours": (fixed["ours"] or {}).get("wall_s"),
        "structures_per_s_ours": (fixed["ours"] or {}).get("structures_per_s"),
        "wall_s_alignn": (fixed["alignn"] or {}).get("wall_s"),
        "structures_per_s_alignn": (fixed["alignn"] or {}).get("structures_per_s"),
        "ratio_ours_over_alignn": fixed.get("ratio_ours_over_alignn_structures_per_s"),
        "ratio_ours_over_alignn_cpu_time": fixed.get("ratio_ours_over_alignn_structures_per_cpu_s"),
        "ratio_bulk_serial_over_alignn": results.get("bulk_serial", {}).get("ratio_over_alignn_structures_per_s"),
        "ratio_bulk_over_alignn": results.get("bulk_workers", {}).get("ratio_over_alignn_structures_per_s"),
        "end_to_end": _end_to_end(len(sample), parse_wall, results),
        "results": results,
        "versions": {
            "ours": {**_common.versions(["crystograph", "torch", "torch-geometric", "pymatgen", "numpy", "scipy",
                                         "vesin"]), "git_commit": _common.git_commit()},
            "alignn_env": (fixed["alignn"] or {}).get("versions"),
        },
        "notes": [
            "Graph building only: CIF parsing/conversion is timed separately on each side and excluded.",
            "wall_s is the fastest of --repeats interleaved runs; cpu_s (process CPU time of that run) is less "
            "sensitive to other jobs on a shared machine, so ratio_ours_over_alignn_cpu_time is given too. "
            "Compare hardware.load_avg_1m_at_start/end with cpu_count to judge how loaded the machine was.",
            "The two builders do different amounts of work: ours returns exactly k=12 neighbours per atom "
            "(searched to 20 A, long bonds flagged), RBF edge features (r, theta, phi), line-graph angle RBFs and "
            "Laplacian+random-walk positional encodings; ALIGNN's keeps up to 12 neighbours within 8 A and returns "
            "raw displacement vectors, bond cosines and CGCNN node features (its RBFs are computed in the model).",
        ],
        "wall_s_total": time.perf_counter() - t_all,
    }
    if profile is not None:
        report["profile_ours"] = profile
        report["profile_file"] = str(args.profile)
    report["hardware"]["load_avg_1m_at_end"] = round(os.getloadavg()[0], 2)
    return report


if __name__ == "__main__":
    rep = main(ARGS)
    _common.write_json(ARGS.out, rep)
    print(json.dumps({k: rep[k] for k in ("n", "threads", "structures_per_s_ours", "structures_per_s_alignn",
                                          "ratio_ours_over_alignn", "ratio_ours_over_alignn_cpu_time",
                                          "ratio_bulk_serial_over_alignn", "ratio_bulk_over_alignn")}, indent=2))
    if OURS_TMP:
        import shutil

        shutil.rmtree(OURS_TMP, ignore_errors=True)
