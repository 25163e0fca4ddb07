"""Train the property models that ship inside the package, and the CGCNN they are compared with.

    python benchmarks/shipped_models.py train mp-e-form --model crystograph --minutes 75 --threads 1
    python benchmarks/shipped_models.py train mp-e-form --model cgcnn --minutes 75 --threads 1
    python benchmarks/shipped_models.py train mp-e-form --epochs 12 --threads 1   # an epoch budget instead
    python benchmarks/shipped_models.py train mp-e-form --layout no_line_graph --minutes 420 --threads 1
    python benchmarks/shipped_models.py ship mp-e-form          # fp16 weights + card into the package

Every model of a name shares one seeded split of its task (test 10 %, seed 0; the validation split for
model selection is 10 % of the rest, seed 0), saved as ids in ``benchmarks/results/models/<name>/``. The test
ids are never seen in training or model selection. Both models train under the same wall-clock budget with
the same number of threads; run them side by side, one core each, so that each has the same share of the
machine. A killed run resumes (Lightning's ``last.ckpt`` and its timer). ``--epochs N`` trains N epochs
(learning-rate schedule over those epochs, no wall-clock cap) in its own folder ``crystograph-<N>ep``, so a run
longer than one sitting resumes where it stopped; its CGCNN is then given the minutes it took (``--minutes``: the
fit's training seconds over every sitting, ``details.train_wall_s`` in the JSON, / 60; the JSON's top-level
``train_wall_s`` and ``cpu_minutes`` count the last sitting only).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "models"
RUNS = ROOT / "runs" / "models"
PACKAGE = ROOT / "src" / "crystograph" / "pretrained"
PLOTS = ROOT / "benchmarks" / "results" / "plots" / "models"
SEED = 0
TEST_FRACTION = 0.1

# name -> (benchmark task holding the data, target, unit, what it is)
MODELS = {
    "mp-e-form": ("local_mp_e_form", "formation_energy_per_atom", "eV/atom",
                  "formation energy per atom (Materials Project, GGA/GGA+U with MP's corrections of ~2018)"),
    "mp-gap": ("local_mp_gap", "band_gap", "eV", "PBE band gap (Materials Project, ~2018)"),
    "qmof-gap": ("local_qmof_gap", "bandgap_pbe", "eV",
                 "PBE band gap of metal-organic frameworks (QMOF, <= 150 atoms)"),
    "jdft2d-exf": ("local_matbench_jdft2d", "exfoliation_en", "meV/atom",
                   "exfoliation energy of layered crystals (JARVIS-DFT OptB88vdW; MatBench matbench_jdft2d, 636 "
                   "crystals)"),
    "perov5-heat": ("local_perov5", "heat_ref", "eV/cell",
                    "heat of formation of ABX3 perovskites per 5-atom cubic cell (CDVAE Perov-5, val+test splits)"),
}


def _rel(path: Path) -> str:
    """A path relative to the repository when inside it."""
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def ids_sha1(ids) -> str:
    return hashlib.sha1("\n".join(ids).encode()).hexdigest()


def load_graphs(name: str, data_dir: str, limit: int | None = None, workers: int = 1):
    from crystograph.bench.loaders import load_task
    from crystograph.bench.registry import get_task
    from crystograph.config import GraphConfig
    from crystograph.data import build_graphs
    from crystograph.data.coremof import default_cache_dir

    task = get_task(MODELS[name][0])
    loaded = load_task(task, data_dir, limit=limit)
    graphs, skipped = build_graphs(loaded.records, GraphConfig(), targets=[task.target],
                                   cache_dir=default_cache_dir() / "graphs", progress=True, workers=workers)
    return task, loaded, graphs, [*loaded.skipped, *skipped]


def split(graphs):
    """(train indices, test indices): the split `crystograph train --test-fraction 0.1 --seed 0` makes."""
    from crystograph.data import train_val_split

    return train_val_split(len(graphs), TEST_FRACTION, seed=SEED)


def write_split(name: str, ids: list[str], tr, te) -> dict:
    out = RESULTS / name
    out.mkdir(parents=True, exist_ok=True)
    test_ids = [ids[i] for i in te]
    (out / "test_ids.txt").write_text("\n".join(test_ids) + "\n")
    return {"n_train_and_val": len(tr), "n_test": len(te), "test_ids_sha1": ids_sha1(test_ids),
            "test_ids_file": _rel(out / "test_ids.txt")}


def train_crystograph(name: str, graphs, args) -> tuple[np.ndarray, np.ndarray, dict]:
    from crystograph.config import ModelConfig, TrainConfig
    from crystograph.nn import fused
    from crystograph.train.run import RunOptions, train_run

    target = MODELS[name][1]
    mcfg = ModelConfig.preset(args.preset, n_targets=1, precision=args.precision,
                              atom_embedding_path=args.atom_embeddings, layout=args.layout)
    budget = {"max_minutes": args.minutes} if args.epochs is None else {"epochs": args.epochs, "max_minutes": None}
    tcfg = TrainConfig.preset(args.preset, seed=SEED, ensemble=args.ensemble, weight_decay=args.weight_decay,
                              accelerator=args.accelerator, **budget)
    folder = "crystograph" + ("" if args.layout == "stacked" else f"-{args.layout}")
    run_dir = RUNS / name / (folder if args.epochs is None else f"{folder}-{args.epochs}ep")
    train_run(graphs, run_dir, mcfg, tcfg, RunOptions(data=[MODELS[name][0]], targets=[target],
                                                      test_fraction=TEST_FRACTION), progress=args.progress)
    table = __import__("pandas").read_csv(run_dir / "predictions.csv", dtype={"id": str})
    members = sorted(run_dir.glob("fold_0/member_*/model.json"))
    info = [json.loads(p.read_text()) for p in members]
    rec = {"preset": args.preset, "layout": args.layout, "precision": args.precision, "ensemble": args.ensemble,
           "lr": tcfg.lr, "epoch_budget": args.epochs, "atom_embeddings": args.atom_embeddings,
           "weight_decay": tcfg.weight_decay, "run_dir": _rel(run_dir),
           "epochs": [m.get("epochs") for m in info], "steps": [m.get("steps") for m in info],
           "train_wall_s": [m.get("train_wall_s") for m in info],  # every sitting of a resumed fit
           "fused_kernels": fused.is_enabled(),  # in the last sitting (CRYSTOGRAPH_COMPILE=1)
           "best_val_mae": [m.get("best_val_mae") for m in info]}
    return table["id"].to_numpy(), table[f"{target}_pred"].to_numpy(), rec


def train_cgcnn(name: str, graphs, tr, te, args) -> tuple[np.ndarray, np.ndarray, dict]:
    import torch

    from crystograph.bench.baselines import CGCNN, CGCNN_RECIPE, cgcnn_train_config
    from crystograph.data import train_val_split
    from crystograph.train.fit import fit, predict

    tcfg = cgcnn_train_config(args.minutes, seed=SEED, accelerator=args.accelerator)
    sub_tr, sub_va = train_val_split(len(tr), tcfg.val_fraction, seed=SEED)  # as crystograph's member 0
    run_dir = RUNS / name / "cgcnn"
    torch.manual_seed(SEED)
    result = fit(CGCNN(n_targets=1), [graphs[tr[i]] for i in sub_tr], [graphs[tr[i]] for i in sub_va], tcfg,
                 run_dir, seed=SEED, progress=args.progress)
    pred = predict(result.module, [graphs[i] for i in te], batch_size=256,
                   device="cpu" if args.accelerator == "cpu" else "auto")[:, 0]
    ids = np.array([str(graphs[i].sample_id) for i in te])
    return ids, pred, {"recipe": CGCNN_RECIPE, "epochs": result.epochs, "best_val_mae": result.val_mae,
                       "run_dir": _rel(run_dir)}


def cmd_train(args) -> None:
    import torch

    from crystograph.bench.meta import git_commit, hardware, versions

    import crystograph

    torch.set_num_threads(args.threads)
    started = time.monotonic()
    commit = git_commit(Path(crystograph.__file__).parent)  # the code that trains (may be a snapshot worktree)
    task, loaded, graphs, skipped = load_graphs(args.name, args.data_dir, args.limit, args.workers)
    ids = [str(g.sample_id) for g in graphs]
    y = np.array([float(g.y.reshape(-1)[0]) for g in graphs])
    tr, te = split(graphs)
    split_rec = write_split(args.name, ids, tr, te)
    t_train = time.monotonic()
    if args.model == "crystograph":
        test_ids, pred, rec = train_crystograph(args.name, graphs, args)
    else:
        test_ids, pred, rec = train_cgcnn(args.name, graphs, tr, te, args)
    assert list(test_ids) == [ids[i] for i in te], "test ids differ from the saved split"
    truth = y[te]
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    out = {
        "name": args.name, "model": args.model, "task": task.name, "target": task.target, "unit": task.unit,
        "protocol": "budget" if args.epochs is None else "epochs", "budget_minutes": args.minutes,
        "budget_epochs": args.epochs, "threads": args.threads,
        "test_mae": float(np.abs(pred - truth).mean()),
        "dummy_test_mae": float(np.abs(y[tr].mean() - truth).mean()),
        "split": split_rec, "n_structures": len(graphs), "n_skipped": len(skipped),
        "train_wall_s": time.monotonic() - t_train, "total_wall_s": time.monotonic() - started,
        "cpu_minutes": (cpu.ru_utime + cpu.ru_stime) / 60, "details": rec,
        "data_source": loaded.data_source, "command": "python " + " ".join(sys.argv),
        "hardware": hardware(args.accelerator, args.threads), "versions": versions(), "commit": commit,
        "library": str(Path(crystograph.__file__).parent),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{args.name}__{args.model}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(out, indent=2, default=str))
    tmp.replace(path)
    predictions = RESULTS / args.name / f"test_predictions__{args.model}.csv"
    __import__("pandas").DataFrame({"id": test_ids, "target": truth, "prediction": pred}).to_csv(predictions,
                                                                                                 index=False)
    print(json.dumps({k: out[k] for k in ("name", "model", "test_mae", "dummy_test_mae", "cpu_minutes")}))


def _test_graphs(name: str, data_dir: str, test_ids: list[str]):
    """Graphs of the saved test ids only (the rest of the data is not parsed), in the saved order."""
    from crystograph.bench.loaders import load_task
    from crystograph.bench.registry import get_task
    from crystograph.config import GraphConfig
    from crystograph.data import build_graphs

    task = get_task(MODELS[name][0])
    loaded = load_task(task, data_dir, ids=test_ids, progress=False)
    graphs, _ = build_graphs(loaded.records, GraphConfig(), targets=[task.target], progress=False)
    by_id = {str(g.sample_id): g for g in graphs}
    return [by_id[i] for i in test_ids]


def _export_member(member: Path, dest: Path, dtype) -> dict:
    """Weights cast to `dtype` (float tensors only) + the member's manifest, under `dest`."""
    from safetensors.torch import load_file, save_file

    from crystograph.train.export import write_atomic

    state = load_file(str(member / "model.safetensors"))
    state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
    dest.mkdir(parents=True, exist_ok=True)
    # write_atomic: permissions by the umask (safetensors creates the file readable by its owner only)
    write_atomic(dest / "model.safetensors", writer=lambda tmp: save_file(state, str(tmp)))
    manifest = json.loads((member / "model.json").read_text())
    manifest["weights_dtype"] = str(dtype).replace("torch.", "")
    (dest / "model.json").write_text(json.dumps(manifest, indent=2))
    return manifest


def cmd_ship(args) -> None:
    """Cast the trained members to float16 into the package, check the test MAE holds, write the card + plot."""
    import shutil

    import pandas as pd
    import torch
    from pymatgen.core import Element

    from crystograph import __version__
    from crystograph.api import load_model
    from crystograph.plots import parity_plot

    name = args.name
    ours = json.loads((RESULTS / f"{name}__crystograph.json").read_text())
    cgcnn_path = RESULTS / f"{name}__cgcnn.json"
    cgcnn = json.loads(cgcnn_path.read_text()) if cgcnn_path.exists() else None
    test_ids = (RESULTS / name / "test_ids.txt").read_text().split()
    assert ids_sha1(test_ids) == ours["split"]["test_ids_sha1"]
    if cgcnn is not None and cgcnn["split"]["test_ids_sha1"] != ours["split"]["test_ids_sha1"]:
        raise SystemExit(f"{cgcnn_path}: CGCNN was tested on another split")
    dest = PACKAGE / name
    shutil.rmtree(dest, ignore_errors=True)
    members = sorted((ROOT / ours["details"]["run_dir"]).glob("fold_0/member_*"))
    manifests = [_export_member(m, dest if len(members) == 1 else dest / m.name, torch.float16) for m in members]
    graphs = _test_graphs(name, args.data_dir, test_ids)
    truth = np.array([float(g.y.reshape(-1)[0]) for g in graphs])
    pred = load_model(dest, device="cpu")._predict_graphs(graphs)[0][:, 0]
    mae16 = float(np.abs(pred - truth).mean())
    fp32 = pd.read_csv(RESULTS / name / "test_predictions__crystograph.csv", dtype={"id": str})
    assert list(fp32["id"]) == test_ids
    plot = PLOTS / f"{name}_parity.png"
    plot.parent.mkdir(parents=True, exist_ok=True)
    parity_plot(truth, pred, plot, title=f"{name}: held-out test ({len(test_ids)} structures)",
                unit=ours["unit"], baseline_mae=ours["dummy_test_mae"])
    domain = manifests[0]["domain"]
    card = {
        "name": name, "task": ours["task"], "target": ours["target"], "unit": ours["unit"],
        "description": MODELS[name][3],
        "test_mae": mae16, "test_mae_fp32": ours["test_mae"], "dummy_test_mae": ours["dummy_test_mae"],
        "cgcnn_test_mae": cgcnn["test_mae"] if cgcnn else None,
        "cgcnn": {k: cgcnn[k] for k in ("budget_minutes", "threads", "cpu_minutes", "details")} if cgcnn else
        "not trained on this split yet",
        "members": len(members), "weights_dtype": "float16", "n_structures": ours["n_structures"],
        "split": {**ours["split"], "seed": SEED, "test_fraction": TEST_FRACTION,
                  "validation": "10 % of the rest, seed 0, for model selection (best validation MAE)"},
        "data_source": {k: ours["data_source"][k] for k in ("file", "sha256", "provenance", "rows_used")},
        "domain": {"elements": [Element.from_Z(z).symbol for z in domain["elements"]],
                   "atoms_per_cell": domain["n_atoms"]},
        "training": {k: ours.get(k) for k in ("protocol", "budget_minutes", "budget_epochs", "threads",
                                              "cpu_minutes")} |
                    {"details": ours["details"], "hardware": ours["hardware"]},
        "command": [ours["command"], *([cgcnn["command"]] if cgcnn else []), "python " + " ".join(sys.argv)],
        "commit": ours["commit"], "crystograph_version": __version__,
        "parity_plot": _rel(plot),
    }
    if args.note:
        card["note"] = args.note
    (dest / "card.json").write_text(json.dumps(card, indent=2, default=str) + "\n")
    size = max(p.stat().st_size for p in dest.rglob("model.safetensors"))
    print(json.dumps({"name": name, "test_mae_fp16": mae16, "test_mae_fp32": ours["test_mae"],
                      "largest_weights_file_bytes": size}))


def _layouts() -> list[str]:
    from typing import get_args

    from crystograph.config import Layout

    return list(get_args(Layout))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train one model of a shipped name on its fixed split")
    t.add_argument("name", choices=sorted(MODELS))
    t.add_argument("--model", choices=["crystograph", "cgcnn"], default="crystograph")
    budget = t.add_mutually_exclusive_group(required=True)
    budget.add_argument("--minutes", type=float, help="wall-clock budget of the fit")
    budget.add_argument("--epochs", type=int, help="epoch budget of the fit (crystograph only; resumable)")
    t.add_argument("--atom-embeddings", default=None, help="default (the shipped table) or a .safetensors file")
    t.add_argument("--threads", type=int, default=1)
    t.add_argument("--accelerator", default="cpu", help="cpu | gpu (Lightning's name; the card records the device)")
    t.add_argument("--workers", type=int, default=1, help="processes that build the graphs (0: every core)")
    t.add_argument("--preset", default="small")
    t.add_argument("--layout", default="stacked", choices=_layouts(),
                   help="ModelConfig.layout (crystograph only), e.g. no_line_graph: the paper's variant without the "
                        "line-graph pass, ~10x cheaper per step on MP batches")
    t.add_argument("--precision", default="fp32")
    t.add_argument("--ensemble", type=int, default=1)
    t.add_argument("--weight-decay", type=float, default=0.0)
    t.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    t.add_argument("--no-progress", dest="progress", action="store_false")
    t.add_argument("--limit", type=int, help="first N rows only (a smoke test; use with --scratch)")
    sh = sub.add_parser("ship", help="copy a trained model into the package (float16) with its card")
    sh.add_argument("name", choices=sorted(MODELS))
    sh.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    sh.add_argument("--note", default=None,
                    help="what the card's numbers alone do not say (e.g. a budget changed between sittings)")
    for p in (t, sh):
        p.add_argument("--scratch", type=Path, help="runs, results and the package copy here (a smoke test)")
    args = parser.parse_args(argv)
    if getattr(args, "scratch", None):
        global RESULTS, RUNS, PACKAGE, PLOTS
        RESULTS, RUNS = args.scratch / "results", args.scratch / "runs"
        PACKAGE, PLOTS = args.scratch / "package", args.scratch / "plots"
    os.environ.setdefault("OMP_NUM_THREADS", str(getattr(args, "threads", 1)))
    if args.command == "train":
        if args.epochs is not None and args.model != "crystograph":
            parser.error("--epochs is for --model crystograph; give CGCNN the minutes that run took (--minutes)")
        if args.layout != "stacked" and args.model != "crystograph":
            parser.error("--layout is for --model crystograph")
        cmd_train(args)
    else:
        cmd_ship(args)


if __name__ == "__main__":
    main()
