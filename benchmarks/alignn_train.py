"""ALIGNN baseline on our cross-validation folds.  Runs INSIDE the ALIGNN venv.

    $ALIGNN_VENV/bin/python benchmarks/alignn_train.py folds.csv --task NAME --minutes-per-fold M \
        --out benchmarks/results/NAME__alignn.json --preds-dir DIR [--seed 0] [--threads N] [--folds 0,1]
    $ALIGNN_VENV/bin/python benchmarks/alignn_train.py folds.csv --task NAME --model alignn-h64 ... \
        --out benchmarks/results/NAME__alignn-h64.json

Models (``--model``; the results JSON's ``model`` and the prediction files are named after it):

* ``alignn`` — the published ALIGNN (hidden 256), its published training example (batch 64, raw targets);
* ``alignn-h64`` — the same architecture at hidden width 64 (4 ALIGNN + 4 GCN layers, embedding 64), batch 32,
  L1 on the standardised target (train-fold mean/std; predictions de-standardised), AdamW lr 1e-3: a peer
  sized for a CPU budget (at the published width one CPU epoch takes most of a 2-3 minute budget).

Input CSV columns: ``id, cif, target, fold`` (fold = 0..K-1 test-fold id, as exported by crystograph.bench).
For each fold k: train on the rows with fold != k (10 % of them held out, seeded, for validation / model
selection), stop at the wall-clock budget, predict the rows with fold == k with the best-validation
weights, score MAE.

Model and training recipe are ALIGNN's own, not a reimplementation:

* graphs: ``alignn.torch_graph_builder.build_pure_torch_graph`` (the DGL-free builder), cutoff 8 A,
  max 12 neighbours, CGCNN atom features, line graph over all edges (three-body cutoff = 8 A, as in the
  original ALIGNN line graph); CIF -> jarvis Atoms via ASE's CIF reader (keeps the cell as written);
  batches via ``PureTorchLMDBDataset.collate_line_graph``;
* model: ``alignn.models.alignn_atomwise_pure.ALIGNNAtomWisePure`` (DGL-free), with the architecture
  hyperparameters copied from ``alignn.models.alignn.ALIGNNConfig`` defaults (the published ALIGNN:
  4 ALIGNN layers, 4 GCN layers, hidden 256, embedding 64, 80 edge RBFs, 40 angle RBFs, 92 CGCNN inputs)
  and its force-field extras off (no gradients/forces, no bond penalty, no ZBL, no x natoms);
* optimisation: ``alignn.config.TrainingConfig`` with the published example settings (AdamW, lr 1e-3,
  weight decay 1e-5, batch 64, OneCycle with pct_start 0.3, up to 300 epochs), parameter groups from
  ``alignn.utils.group_decay`` and the optimiser from ``alignn.utils.setup_optimizer``; L1 loss
  (what ``alignn.train.train_dgl`` uses for ``alignn_*`` models); raw targets (ALIGNN does not
  standardise regression targets).

Wall-clock budget (per fold, covering training + validation): a short timing probe (3 real training
steps at OneCycle's starting LR, i.e. a slightly longer warm-up) estimates the epoch time; with
``--schedule budget`` (default) the OneCycle
horizon is the number of epochs expected to fit in the budget (capped at 300), so the LR schedule
completes; ``--schedule alignn`` keeps ALIGNN's literal 300-epoch horizon and simply stops at the
budget. An epoch is not started when the last epoch's time says it would overrun; if one overruns
anyway it is cut at the budget.

Resumable: a fold whose predictions file ``<preds-dir>/<task>__<model>__fold<k>.csv`` exists is never
recomputed (its score is recomputed from the file; its metadata comes from the ``.json`` beside it). The
settings that change results are stamped in ``<preds-dir>/<task>__<model>__settings.json``; a rerun with
other settings into the same ``--preds-dir`` is refused.
"""

from __future__ import annotations

import argparse
import copy
import csv
import io
import json
import math
import os
import random
import sys
import time
from pathlib import Path


def _parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("csv", type=Path, help="CSV with columns id, cif, target, fold")
    p.add_argument("--task", required=True)
    p.add_argument("--minutes-per-fold", type=float, required=True, help="training wall-clock budget per fold")
    p.add_argument("--out", type=Path, required=True, help="result JSON (benchmarks/results/<task>__alignn.json)")
    p.add_argument("--preds-dir", type=Path, required=True, help="per-fold prediction CSVs go here")
    p.add_argument("--model", choices=tuple(MODELS), default="alignn",
                   help="alignn (published width) | alignn-h64 (hidden 64, batch 32, standardised target)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--folds", default=None, help="comma-separated subset of folds to run (default: all)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = library default)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--val-fraction", type=float, default=0.1)
    p.add_argument("--schedule", choices=("budget", "alignn"), default="budget",
                   help="OneCycle horizon: epochs that fit the budget (default) or ALIGNN's 300")
    p.add_argument("--max-epochs", type=int, default=300, help="ALIGNN's default 300")
    p.add_argument("--patience", type=int, default=None,
                   help="early-stopping patience in epochs (ALIGNN default: none)")
    p.add_argument("--batch-size", type=int, default=None, help="default: the model's (alignn 64, alignn-h64 32)")
    p.add_argument("--learning-rate", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=1e-5)
    p.add_argument("--cutoff", type=float, default=8.0)
    p.add_argument("--max-neighbors", type=int, default=12)
    p.add_argument("--data-source", default=None,
                   help="recorded in the JSON (a JSON object is stored as such), e.g. the task's file + provenance")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    preset = MODELS[args.model]
    if args.batch_size is None:
        args.batch_size = preset["batch_size"]
    args.hidden_features = preset["hidden_features"]
    args.standardise = preset["standardise"]
    return args


# --model: architecture/training differences from the published ALIGNN (None = the published value)
MODELS = {
    "alignn": {"hidden_features": None, "batch_size": 64, "standardise": False},
    "alignn-h64": {"hidden_features": 64, "batch_size": 32, "standardise": True},
}


ARGS = _parse_args()
if ARGS.threads > 0:
    for _v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[_v] = str(ARGS.threads)

import numpy as np  # noqa: E402
import torch  # noqa: E402
from ase.io import read as ase_read  # noqa: E402
from jarvis.core.atoms import Atoms  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

from alignn.config import TrainingConfig  # noqa: E402
from alignn.models.alignn import ALIGNNConfig  # noqa: E402  (defaults only; the DGL model is not used)
from alignn.models.alignn_atomwise_pure import ALIGNNAtomWisePure, ALIGNNAtomWisePureConfig  # noqa: E402
from alignn.pure_lmdb_dataset import PureTorchLMDBDataset  # noqa: E402
from alignn.torch_graph_builder import build_pure_torch_graph  # noqa: E402
from alignn.utils import group_decay, setup_optimizer  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

csv.field_size_limit(1 << 30)
collate = PureTorchLMDBDataset.collate_line_graph

ARCH_FIELDS = ("alignn_layers", "gcn_layers", "atom_input_features", "edge_input_features",
               "triplet_input_features", "embedding_features", "hidden_features", "output_features")


def log(msg: str) -> None:
    if not ARGS.quiet:
        print(f"[alignn_train {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------------------
# configs
# ----------------------------------------------------------------------------------------------

def model_config(args) -> ALIGNNAtomWisePureConfig:
    published = ALIGNNConfig(name="alignn").model_dump()
    arch = {k: published[k] for k in ARCH_FIELDS}
    if args.hidden_features is not None:
        arch["hidden_features"] = args.hidden_features
    return ALIGNNAtomWisePureConfig(
        name="alignn_atomwise_pure",
        **arch,
        # property regression, not a force field:
        calculate_gradient=False, gradwise_weight=0.0, energy_mult_natoms=False,
        use_penalty=False, use_zbl=False, atomwise_output_features=0,
        three_body_cutoff=args.cutoff,
    )


def training_config(args, mcfg) -> TrainingConfig:
    return TrainingConfig(
        dataset="user_data", target="target", id_tag="id", atom_features="cgcnn",
        neighbor_strategy="pure_torch", cutoff=args.cutoff, three_body_cutoff=args.cutoff,
        max_neighbors=args.max_neighbors, compute_line_graph=True,
        random_seed=args.seed, epochs=args.max_epochs, batch_size=args.batch_size,
        learning_rate=args.learning_rate, weight_decay=args.weight_decay,
        optimizer="adamw", scheduler="onecycle", criterion="l1",
        n_early_stopping=args.patience, num_workers=0, use_lmdb=False,
        write_checkpoint=False, write_predictions=False, progress=False,
        model=mcfg,
    )


# ----------------------------------------------------------------------------------------------
# data
# ----------------------------------------------------------------------------------------------

def cif_to_atoms(cif: str) -> Atoms:
    a = ase_read(io.StringIO(cif), format="cif")
    return Atoms(lattice_mat=np.asarray(a.cell[:], dtype=float),
                 coords=np.asarray(a.get_scaled_positions(wrap=False), dtype=float),
                 elements=list(a.get_chemical_symbols()), cartesian=False)


def load_rows(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    missing = {"id", "cif", "target", "fold"} - set(rows[0] if rows else {})
    if missing:
        raise SystemExit(f"{path}: missing columns {sorted(missing)} (need id, cif, target, fold)")
    return rows


def build_samples(rows, args):
    """id -> (g, lg, lattice, label); failures are reported, never silently dropped."""
    samples, failures = {}, []
    for i, r in enumerate(rows):
        try:
            atoms = cif_to_atoms(r["cif"])
            g, lg = build_pure_torch_graph(atoms=atoms, two_body_cutoff=args.cutoff,
                                           three_body_cutoff=args.cutoff, max_neighbors=args.max_neighbors,
                                           atom_features="cgcnn", compute_line_graph=True)
            if g.num_edges == 0:
                raise ValueError("no neighbours within cutoff")
            lat = torch.as_tensor(np.asarray(atoms.lattice_mat), dtype=torch.get_default_dtype())
            samples[r["id"]] = (g, lg, lat, torch.tensor(float(r["target"]), dtype=torch.get_default_dtype()))
        except Exception as exc:  # noqa: BLE001
            failures.append({"id": r["id"], "row": i + 2, "error": f"{type(exc).__name__}: {exc}"})
    return samples, failures


# ----------------------------------------------------------------------------------------------
# training
# ----------------------------------------------------------------------------------------------

def seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def predict(net, loader, device, scale=(0.0, 1.0)) -> np.ndarray:
    """Predictions in target units (`scale` = the (mean, std) the network's output was trained against)."""
    net.eval()
    out = []
    with torch.no_grad():
        for g, lg, lat, _ in loader:
            out.append(net([g.to(device), lg.to(device), lat.to(device)])["out"].reshape(-1).cpu())
    raw = torch.cat(out).numpy() if out else np.zeros(0)
    return raw * scale[1] + scale[0]


def train_step(net, batch, optimizer, criterion, device, scale=(0.0, 1.0)) -> float:
    g, lg, lat, y = batch
    optimizer.zero_grad()
    pred = net([g.to(device), lg.to(device), lat.to(device)])["out"].reshape(-1)
    loss = criterion(pred, (y.to(device).reshape(-1) - scale[0]) / scale[1])
    loss.backward()
    optimizer.step()
    return float(loss.item())


def probe_steps(net, optimizer, criterion, train_set, tcfg, device, seed: int, max_steps: int = 3,
                scale=(0.0, 1.0)):
    """Timing probe: a few real training steps at OneCycle's starting LR (max_lr / 25).

    These steps train the real model (they act as a slightly longer warm-up), so the probe wastes no
    budget. Returns (seconds per step, steps done); the first step (allocator warm-up) is not used
    for the estimate when there are more.
    """
    for group in optimizer.param_groups:
        group["lr"] = tcfg.learning_rate / 25.0
    loader = DataLoader(train_set, batch_size=tcfg.batch_size, shuffle=True, collate_fn=collate,
                        generator=torch.Generator().manual_seed(seed))
    net.train()
    times = []
    for batch in loader:
        t = time.perf_counter()
        train_step(net, batch, optimizer, criterion, device, scale)
        times.append(time.perf_counter() - t)
        if len(times) >= max_steps:
            break
    return float(np.median(times[1:] if len(times) > 1 else times)), len(times)


def run_fold(k, rows, samples, args, mcfg, tcfg, device) -> dict:
    t_fold = time.perf_counter()
    budget = args.minutes_per_fold * 60.0
    test_ids = [r["id"] for r in rows if int(r["fold"]) == k and r["id"] in samples]
    pool = [r["id"] for r in rows if int(r["fold"]) != k and r["id"] in samples]
    rng = np.random.default_rng(args.seed + 1000 * k)
    perm = rng.permutation(len(pool))
    n_val = max(1, int(round(args.val_fraction * len(pool))))
    val_ids = [pool[i] for i in perm[:n_val]]
    train_ids = [pool[i] for i in perm[n_val:]]
    train_set = [samples[i] for i in train_ids]
    val_set = [samples[i] for i in val_ids]
    test_set = [samples[i] for i in test_ids]
    scale = (0.0, 1.0)
    if args.standardise:  # L1 on the standardised target: train-fold mean/std (a constant target keeps std 1)
        y_tr = np.array([float(s[3]) for s in train_set])
        scale = (float(y_tr.mean()), float(y_tr.std()) or 1.0)

    seed_all(args.seed + k)
    net = ALIGNNAtomWisePure(copy.deepcopy(mcfg)).to(device)
    optimizer = setup_optimizer(group_decay(net), tcfg)
    criterion = torch.nn.L1Loss()
    train_loader = DataLoader(train_set, batch_size=tcfg.batch_size, shuffle=True, collate_fn=collate,
                              generator=torch.Generator().manual_seed(args.seed + k))
    val_loader = DataLoader(val_set, batch_size=tcfg.batch_size, shuffle=False, collate_fn=collate)
    test_loader = DataLoader(test_set, batch_size=tcfg.batch_size, shuffle=False, collate_fn=collate)

    step_s, n_probe = probe_steps(net, optimizer, criterion, train_set, tcfg, device, args.seed + k + 1,
                                  scale=scale)
    # validation ~ forward only ~ 1/3 of a training step per batch
    est_epoch = step_s * (len(train_loader) + len(val_loader) / 3)
    probe_s = time.perf_counter() - t_fold
    fit_epochs = max(1, int((budget - probe_s) / est_epoch)) if est_epoch > 0 else args.max_epochs
    horizon = min(args.max_epochs, fit_epochs) if args.schedule == "budget" else args.max_epochs
    log(f"fold {k}: train {len(train_set)} val {len(val_set)} test {len(test_set)}; probe {n_probe} steps "
        f"({probe_s:.1f} s): ~{est_epoch:.2f} s/epoch -> OneCycle horizon {horizon} epochs")
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=tcfg.learning_rate, epochs=horizon,
                                                    steps_per_epoch=len(train_loader), pct_start=0.3)
    y_val = np.array([float(s[3]) for s in val_set])

    best_val, best_state, best_epoch, epochs, epoch_times = math.inf, None, -1, 0, []
    stop_reason, since_best = "max_epochs", 0
    for epoch in range(horizon):
        elapsed = time.perf_counter() - t_fold
        last = epoch_times[-1] if epoch_times else est_epoch
        if epoch > 0 and elapsed + last > budget:
            stop_reason = "budget"
            break
        t_ep = time.perf_counter()
        net.train()
        losses, cut = [], False
        for batch in train_loader:
            losses.append(train_step(net, batch, optimizer, criterion, device, scale))
            scheduler.step()
            if time.perf_counter() - t_fold > budget:
                cut = True
                break
        val_mae = float(np.mean(np.abs(predict(net, val_loader, device, scale) - y_val)))
        epoch_times.append(time.perf_counter() - t_ep)
        epochs += 1
        if val_mae < best_val:
            best_val, best_epoch, since_best = val_mae, epoch, 0
            best_state = {n: t.detach().clone() for n, t in net.state_dict().items()}
        else:
            since_best += 1
        log(f"fold {k} epoch {epoch}: train L1 {np.mean(losses):.4f} val MAE {val_mae:.4f} "
            f"({epoch_times[-1]:.1f} s{', cut at budget' if cut else ''})")
        if cut:
            stop_reason = "budget"
            break
        if args.patience is not None and since_best >= args.patience:
            stop_reason = "early_stopping"
            break
    train_s = time.perf_counter() - t_fold

    if best_state is not None:
        net.load_state_dict(best_state)
    preds = predict(net, test_loader, device, scale)
    y_test = np.array([float(s[3]) for s in test_set])
    mae = float(np.mean(np.abs(preds - y_test)))
    return {
        "fold": k, "score": mae, "n_test": len(test_set), "n_train": len(train_set), "n_val": len(val_set),
        "wall_s": time.perf_counter() - t_fold, "train_wall_s": train_s, "probe_s": probe_s,
        "probe_steps": n_probe,
        "epochs": epochs, "onecycle_horizon_epochs": horizon, "best_epoch": best_epoch,
        "best_val_mae": best_val, "stop_reason": stop_reason, "target_scale": list(scale),
        "epoch_s_mean": float(np.mean(epoch_times)) if epoch_times else None,
        "epoch_s": [round(t, 3) for t in epoch_times],
        "_ids": test_ids, "_y": y_test, "_pred": preds,
    }


# ----------------------------------------------------------------------------------------------
# resumable per-fold outputs
# ----------------------------------------------------------------------------------------------

def pred_path(args, k) -> Path:
    return args.preds_dir / f"{args.task}__{args.model}__fold{k}.csv"


def save_fold(args, res: dict) -> None:
    args.preds_dir.mkdir(parents=True, exist_ok=True)
    p = pred_path(args, res["fold"])
    meta = {k: v for k, v in res.items() if not k.startswith("_")}
    _common.write_json(p.with_suffix(".json"), meta)  # metadata first; the CSV is the "done" marker
    tmp = p.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "target", "pred"])
        w.writerows((i, repr(float(y)), repr(float(q))) for i, y, q in zip(res["_ids"], res["_y"], res["_pred"]))
    tmp.replace(p)


SETTINGS = ("model", "minutes_per_fold", "seed", "val_fraction", "schedule", "max_epochs", "patience", "batch_size",
            "learning_rate", "weight_decay", "cutoff", "max_neighbors", "hidden_features", "standardise")


def check_settings(args) -> None:
    """One preds-dir, one set of settings: finished folds of another recipe or budget are never mixed in."""
    now = {k: getattr(args, k) for k in SETTINGS}
    stamp = args.preds_dir / f"{args.task}__{args.model}__settings.json"
    if stamp.exists():
        was = json.loads(stamp.read_text())
        diff = {k: [was.get(k), now.get(k)] for k in sorted(set(was) | set(now)) if was.get(k) != now.get(k)}
        if diff:
            raise SystemExit(f"{stamp}: this --preds-dir holds folds run with other settings (was -> now: {diff}); "
                             "rerun with the same settings to resume, or use another --preds-dir")
        return
    args.preds_dir.mkdir(parents=True, exist_ok=True)
    _common.write_json(stamp, now)


def load_fold(args, k) -> dict:
    p = pred_path(args, k)
    with open(p, newline="") as fh:
        rr = list(csv.DictReader(fh))
    y = np.array([float(r["target"]) for r in rr])
    q = np.array([float(r["pred"]) for r in rr])
    meta_p = p.with_suffix(".json")
    meta = json.loads(meta_p.read_text()) if meta_p.exists() else {"fold": k, "n_train": None, "wall_s": None,
                                                                    "epochs": None}
    meta.update({"fold": k, "score": float(np.mean(np.abs(q - y))) if len(y) else None, "n_test": len(y),
                 "resumed": True})
    return meta


# ----------------------------------------------------------------------------------------------

def main(args) -> dict:
    t0 = time.perf_counter()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available()
                          else ("cpu" if args.device == "auto" else args.device))
    rows = load_rows(args.csv)
    all_folds = sorted({int(r["fold"]) for r in rows})
    folds = all_folds if args.folds is None else [int(f) for f in args.folds.split(",")]
    mcfg = model_config(args)
    tcfg = training_config(args, mcfg)

    check_settings(args)
    todo = [k for k in folds if not pred_path(args, k).exists()]
    samples, failures, graph_s = {}, [], 0.0
    if todo:
        t = time.perf_counter()
        samples, failures = build_samples(rows, args)
        graph_s = time.perf_counter() - t
        log(f"built {len(samples)} graphs in {graph_s:.1f} s ({len(failures)} failed)")

    fold_results = []
    for k in folds:
        if pred_path(args, k).exists():
            res = load_fold(args, k)
            log(f"fold {k}: predictions exist, not recomputed (MAE {res['score']:.4f})")
        else:
            res = run_fold(k, rows, samples, args, mcfg, tcfg, device)
            save_fold(args, res)
            res = {kk: v for kk, v in res.items() if not kk.startswith("_")}
            log(f"fold {k}: MAE {res['score']:.4f} after {res['epochs']} epochs ({res['wall_s']:.1f} s)")
        fold_results.append(res)
        _common.write_json(args.out, report(args, fold_results, failures, graph_s, mcfg, tcfg, device, t0,
                                            all_folds))
    return report(args, fold_results, failures, graph_s, mcfg, tcfg, device, t0, all_folds)


def _data_source(args):
    """--data-source verbatim (parsed when it is JSON), else the input CSV's path."""
    if args.data_source is None:
        return {"file": str(args.csv)}
    try:
        return json.loads(args.data_source)
    except ValueError:
        return args.data_source


def report(args, fold_results, failures, graph_s, mcfg, tcfg, device, t0, all_folds) -> dict:
    scores = [f["score"] for f in fold_results if f.get("score") is not None]
    schema_keys = ("fold", "score", "n_test", "n_train", "wall_s", "epochs")
    folds_out = [{**{k: f.get(k) for k in schema_keys},
                  **{k: v for k, v in f.items() if k not in schema_keys}} for f in fold_results]
    epoch_s = [t for f in fold_results for t in f.get("epoch_s", [])]
    return {
        "task": args.task,
        "model": args.model,
        "protocol": "budget",
        "metric": "MAE",
        "folds": folds_out,
        "mean": float(np.mean(scores)) if scores else None,
        "std": float(np.std(scores, ddof=1)) if len(scores) > 1 else (0.0 if scores else None),
        "budget_minutes_per_fold": args.minutes_per_fold,
        "command": _common.command_line(),
        "seed": args.seed,
        "data_source": _data_source(args),
        "hardware": {**_common.hardware(args.threads if args.threads > 0 else None), "device": str(device)},
        "wall_s": graph_s + sum(f.get("wall_s") or 0.0 for f in fold_results),
        "invocation_wall_s": time.perf_counter() - t0,
        "versions": _common.versions(["alignn", "torch", "jarvis-tools", "ase", "numpy", "pydantic"]),
        "notes": {
            "complete": sorted(f["fold"] for f in fold_results) == all_folds,
            "model_class": "alignn.models.alignn_atomwise_pure.ALIGNNAtomWisePure",
            "model_config": mcfg.model_dump(),
            "n_parameters": sum(p.numel() for p in ALIGNNAtomWisePure(copy.deepcopy(mcfg)).parameters()),
            "training": {"optimizer": tcfg.optimizer, "learning_rate": tcfg.learning_rate,
                         "weight_decay": tcfg.weight_decay, "batch_size": tcfg.batch_size,
                         "scheduler": "OneCycleLR(pct_start=0.3), stepped per batch", "loss": "L1",
                         "max_epochs": tcfg.epochs, "schedule_horizon": args.schedule,
                         "val_fraction": args.val_fraction, "model_selection": "best validation MAE",
                         "early_stopping_patience": args.patience,
                         "target_scaling": "standardised (train-fold mean/std)" if args.standardise
                         else "none (as ALIGNN)"},
            "graph": {"builder": "alignn.torch_graph_builder.build_pure_torch_graph", "cutoff": tcfg.cutoff,
                      "three_body_cutoff": tcfg.three_body_cutoff, "max_neighbors": tcfg.max_neighbors,
                      "atom_features": "cgcnn", "cif_reader": "ase.io.read(format='cif') -> jarvis Atoms"},
            "graph_build_s": graph_s,
            "graph_failures": failures,
            "epoch_s_mean": float(np.mean(epoch_s)) if epoch_s else None,
            "budget_covers": "per fold: timing probe + training + validation; prediction on the test fold after",
            "wall_s_is": "graph building in this invocation + the sum of the folds' wall_s (resumed folds keep "
                         "theirs)",
        },
    }


if __name__ == "__main__":
    rep = main(ARGS)
    _common.write_json(ARGS.out, rep)
    print(json.dumps({k: rep[k] for k in ("task", "mean", "std", "wall_s")}))
