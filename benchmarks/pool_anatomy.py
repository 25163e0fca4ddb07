"""Where the time of a parallel graph build goes: `build_graphs(records, workers=1)` against `workers=N`.

    .venv/bin/python benchmarks/pool_anatomy.py [--n 3000] [--workers 2] [--repeats 2]

A seeded sample of ``--n`` MP structures (parsed before any clock starts) is built by the serial path and by the
pool (this process + N - 1 children, `crystograph.data.parallel`), interleaved ``--repeats`` times, no graph cache.
For the pool run the parent's share is split by wrapping two functions of `crystograph.data.parallel`:

* ``chunk_outcomes``: the chunks (64 structures) this process built itself, and the seconds it spent on them;
* ``_received``: the seconds spent turning the children's arrays back into graphs.

``per_chunk_ms`` compares the parent's seconds per chunk built in the pool run with the serial run's: how much a
core slows down while the other core builds too. Writes ``benchmarks/results/pool_anatomy.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import _common  # noqa: E402

DEFAULT_DATA = _common.SHARED_DATA / "mp_mtcgcnn" / "mp_eform_gap.csv.gz"


def _parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=3000)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--out", type=Path, default=HERE / "results" / "pool_anatomy.json")
    return p.parse_args(argv)


def load_records(path: Path, n: int, seed: int) -> list:
    from crystograph.structures import StructureRecord, parse_cif

    rows, _ = _common.sample_cif_rows(path, n, seed)
    return [StructureRecord(id=r["id"], structure=parse_cif(r["cif"], r["id"])[0], targets={}, source=r["id"])
            for r in rows]


class Meter:
    """Wraps `parallel.chunk_outcomes` and `parallel._received` to add up the parent's seconds in each."""

    def __init__(self):
        from crystograph.data import parallel

        self.parallel = parallel
        self.chunk, self.received = parallel.chunk_outcomes, parallel._received
        self.reset()
        parallel.chunk_outcomes, parallel._received = self._chunk, self._received

    def reset(self) -> None:
        self.stats = {"chunks_built_here": 0, "built_here_s": 0.0, "child_chunks_received": 0, "receive_s": 0.0}

    def _chunk(self, *args, **kwargs):
        start = time.perf_counter()
        out = self.chunk(*args, **kwargs)
        self.stats["built_here_s"] += time.perf_counter() - start
        self.stats["chunks_built_here"] += 1
        return out

    def _received(self, sent):
        start = time.perf_counter()
        out = list(self.received(sent))
        self.stats["receive_s"] += time.perf_counter() - start
        self.stats["child_chunks_received"] += 1
        return iter(out)


def main(args: argparse.Namespace) -> None:
    from crystograph.config import GraphConfig
    from crystograph.data import build_graphs

    _common.set_threads(1)
    records = load_records(args.data, args.n, args.seed)
    config = GraphConfig()
    meter = Meter()
    build_graphs(records[:128], config, progress=False)  # lazy imports and tables, outside the clock
    runs = []
    for rep in range(args.repeats):
        for workers in (1, args.workers):
            meter.reset()
            wall, cpu = time.perf_counter(), time.process_time()
            graphs, skipped = build_graphs(records, config, progress=False, workers=workers)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            row = {"repeat": rep, "workers": workers, "n_graphs": len(graphs), "n_skipped": len(skipped),
                   "wall_s": wall, "parent_cpu_s": cpu, "structures_per_s": len(records) / wall, **meter.stats}
            row["per_chunk_ms"] = 1e3 * row["built_here_s"] / max(1, row["chunks_built_here"])
            runs.append(row)
            print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}), flush=True)
    serial = min((r for r in runs if r["workers"] == 1), key=lambda r: r["wall_s"])
    pool = min((r for r in runs if r["workers"] == args.workers), key=lambda r: r["wall_s"])
    result = {
        "benchmark": "pool_anatomy", "command": _common.command_line(), "seed": args.seed, "n": len(records),
        "data_source": _common.data_source(args.data), "hardware": _common.hardware(1),
        "git_commit": _common.git_commit(), "workers": args.workers,
        "speedup_pool_over_serial": serial["wall_s"] / pool["wall_s"],
        "per_chunk_slowdown_in_pool": pool["per_chunk_ms"] / serial["per_chunk_ms"],
        "parent_share_of_chunks": pool["chunks_built_here"] / max(1, pool["chunks_built_here"]
                                                                  + pool["child_chunks_received"]),
        "receive_share_of_pool_wall": pool["receive_s"] / pool["wall_s"],
        "fastest": {"serial": serial, "pool": pool}, "runs": runs,
        "note": "fastest of the interleaved repeats on each side; no graph cache; chunk = 64 structures",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(args.out)
    print(json.dumps({k: result[k] for k in ("speedup_pool_over_serial", "per_chunk_slowdown_in_pool",
                                             "parent_share_of_chunks", "receive_share_of_pool_wall")}, indent=2))


if __name__ == "__main__":
    main(_parse_args())
