"""Would `torch.compile` pay for the small preset's element-wise attention work? A probe, not a feature.

    .venv/bin/python benchmarks/compile_probe.py [--repeats 4] [--threads 1]

The small preset's training step on MP batches is dominated by element-wise products and sums on the dense
line-graph attention tensors ``[E, m=12, heads=4, d=16]`` (profile in benchmarks/README.md). This times, forward +
backward, on the shapes of a 32-crystal MP batch (E = 7,836 direct edges as line-graph nodes, m = 12):

* ``score``: ``(q1 * k + q2 * e).sum(-1)`` (eq. 4's factorised scores);
* ``values``: ``(a * v).sum(1)`` and ``(a * e).sum(1)`` with softmax weights ``a`` (eq. 5's sums);

eagerly and through ``torch.compile(dynamic=True)`` (Inductor's fused C++ kernels), with the compile time and the
time of a second, unseen shape (no recompile with dynamic shapes). Fastest of ``--repeats`` interleaved passes.
Writes ``benchmarks/results/compile_probe.json``.
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


def score(q1, k, q2, e):
    return (q1 * k + q2 * e).sum(-1)  # [E, m, heads]


def values(a, v, e):
    return (a * v).sum(1), (a * e).sum(1)  # [E, heads, d] twice


def inputs(n_edges: int, m: int = 12, heads: int = 4, d: int = 16):
    import torch

    def leaf(*shape):
        return torch.randn(*shape, requires_grad=True)

    a = torch.softmax(torch.randn(n_edges, m, heads, 1), dim=1).requires_grad_(True)
    return {"score": (leaf(n_edges, 1, heads, d), leaf(n_edges, m, heads, d), leaf(n_edges, 1, heads, d),
                      leaf(n_edges, m, heads, d)),
            "values": (a, leaf(n_edges, m, heads, d), leaf(n_edges, m, heads, d))}


def run(fn, args) -> float:
    import torch

    for x in args:
        x.grad = None
    t = time.perf_counter()
    out = fn(*args)
    out = out if isinstance(out, tuple) else (out,)
    torch.autograd.backward([o.sum() for o in out])
    return time.perf_counter() - t


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=4)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=HERE / "results" / "compile_probe.json")
    args = p.parse_args(argv)
    _common.set_threads(args.threads)
    import torch

    eager = {"score": score, "values": values}
    result = {"benchmark": "compile_probe", "command": _common.command_line(), "threads": args.threads,
              "shapes": "E=7836 (32 MP crystals), m=12, heads=4, d=16; second shape E=6000",
              "hardware": _common.hardware(args.threads), "commit": _common.git_commit(), "parts": {}}
    for name, fn in eager.items():
        x = inputs(7836)[name]
        t0 = time.perf_counter()
        compiled = torch.compile(fn, dynamic=True)
        run(compiled, x)
        compile_s = time.perf_counter() - t0
        second_s = run(compiled, inputs(6000)[name])
        times = {"eager": [], "compiled": []}
        for _ in range(args.repeats):
            times["eager"].append(run(fn, x))
            times["compiled"].append(run(compiled, x))
        best = {k: min(v) for k, v in times.items()}
        result["parts"][name] = {"eager_ms": 1e3 * best["eager"], "compiled_ms": 1e3 * best["compiled"],
                                 "speedup": best["eager"] / best["compiled"], "compile_and_first_call_s": compile_s,
                                 "second_shape_first_call_s": second_s}
        print(name, json.dumps(result["parts"][name]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    _common.write_json(args.out, result)


if __name__ == "__main__":
    main()
