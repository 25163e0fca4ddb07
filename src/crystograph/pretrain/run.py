"""Masked-atom pretraining end to end: structures → (expanded) graphs → CGCNN → atom embeddings.

`pretrain(records, out_dir)` writes into `out_dir`:
  - `atom_embeddings.safetensors`: {"atom_embedding": float32 [119, embed_dim]}, row = atomic number
    (row 0 is the MASK token) — pass it as `ModelConfig.atom_embedding_path`;
  - `pretrain.json`: validation masked-atom accuracy and loss of the exported model, the majority-class
    baseline, epochs, skipped structures, wall time, config;
  - `metrics.csv` (Lightning CSV log), `pretrain_loss.png` (loss curve, cf. Fig. A1),
    `checkpoints/{best,last}.ckpt` (a rerun with the same arguments resumes from `last.ckpt`).
Structures with fewer than 7 atoms are expanded 2×2×2 before their graph is built (masking.py); a
structure whose graph fails is reported as a `Skipped`, never dropped silently.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from crystograph.config import GraphConfig, PretrainConfig
from crystograph.errors import ConfigError, Skipped
from crystograph.pretrain.dataset import FIXED_EPOCH, slim_graph
from crystograph.pretrain.masking import IGNORE_INDEX, MASK_TOKEN, MIN_ATOMS, N_TOKENS, expand_small_cell
from crystograph.pretrain.model import MaskedAtomCGCNN, MaskedAtomModule
from crystograph.train.fit import graph_loader
from crystograph.train.quiet import quiet_lightning

quiet_lightning()

EMBEDDING_FILE = "atom_embeddings.safetensors"
EMBEDDING_KEY = "atom_embedding"
DECAY_FRACTION = 0.4  # Fig. A1: ×0.1 at epoch 20; scaled as round(0.4 · epochs) (= 20 of 50)


@dataclass
class PretrainResult:
    out_dir: Path
    embedding_path: Path  # atom_embeddings.safetensors
    accuracy: float  # masked-atom accuracy on the validation graphs (`eval_draws` fixed masks), exported model
    loss: float  # masked-atom cross-entropy on the same
    accuracy_mask_token: float  # accuracy on the atoms replaced by the MASK token only (no identity cue)
    baseline_accuracy: float  # always predicting the most frequent masked element of the training graphs
    epochs: int
    n_train: int
    n_val: int
    skipped: list[Skipped] = field(default_factory=list)
    wall_s: float = 0.0
    resumed_from_epoch: int | None = None  # epoch at which this call picked up from last.ckpt


@dataclass
class _Record:  # a record whose structure was expanded; what `build_graphs` reads
    id: str
    structure: object
    source: str
    targets: dict = field(default_factory=dict)


def _expand(records: Sequence, min_atoms: int) -> tuple[list[_Record], list[Skipped]]:
    out, skipped = [], []
    for i, rec in enumerate(records):
        source = str(getattr(rec, "source", None) or getattr(rec, "id", None) or f"record {i}")
        rid = str(getattr(rec, "id", None) or i)
        try:
            structure = expand_small_cell(rec.structure, min_atoms)
        except Exception as err:
            skipped.append(Skipped(source, f"cell expansion failed: {type(err).__name__}: {err}"))
            continue
        out.append(_Record(rid, structure, source))
    return out, skipped


def _eval_epochs(n_draws: int) -> list[int]:
    return [FIXED_EPOCH - d for d in range(max(1, n_draws))]  # -1 (the validation mask), -2, ...


@torch.no_grad()
def evaluate(module: MaskedAtomModule, graphs, batch_size: int = 64, n_draws: int = 1) -> dict:
    """Masked-atom loss, accuracy and the number of scored atoms over `graphs` (slim, with idx).

    `n_draws` fixed mask draws per graph are pooled (draw 0 is the validation mask used during training),
    which steadies the estimate on small validation sets.
    """
    module.eval()
    device = next(module.parameters()).device
    total_loss, correct, count, correct_tok, count_tok = 0.0, 0, 0, 0, 0
    for epoch in _eval_epochs(n_draws):
        for batch in graph_loader(graphs, batch_size, shuffle=False, seed=0):
            batch = module.mask(batch.to(device), epoch)
            logits = module.model(batch)  # [n, 119]
            sel = batch.labels != IGNORE_INDEX
            hit = logits.argmax(-1) == batch.labels  # [n]
            total_loss += float(torch.nn.functional.cross_entropy(logits[sel], batch.labels[sel], reduction="sum"))
            correct += int(hit[sel].sum())
            count += int(sel.sum())
            tok = sel & (batch.tokens == MASK_TOKEN)  # the element is hidden: predicted from its neighbours only
            correct_tok += int(hit[tok].sum())
            count_tok += int(tok.sum())
    nan = float("nan")
    return {"loss": total_loss / count if count else nan, "accuracy": correct / count if count else nan,
            "accuracy_mask_token": correct_tok / count_tok if count_tok else nan, "n_masked": count}


@torch.no_grad()
def majority_baseline(module: MaskedAtomModule, train_graphs, eval_graphs, n_draws: int = 1) -> float:
    """Accuracy, on the masks `evaluate` scores, of always guessing the training set's most frequent masked Z."""
    def masked_labels(graphs, epochs):
        labels = []
        for epoch in epochs:
            for batch in graph_loader(graphs, 256, shuffle=False, seed=0):
                lab = module.mask(batch, epoch).labels
                labels.extend(lab[lab != IGNORE_INDEX].tolist())
        return labels

    train_labels = masked_labels(train_graphs, [0])
    eval_labels = masked_labels(eval_graphs, _eval_epochs(n_draws))
    if not train_labels or not eval_labels:
        return float("nan")
    majority = Counter(train_labels).most_common(1)[0][0]
    return sum(1 for z in eval_labels if z == majority) / len(eval_labels)


def plot_loss_curve(metrics_csv: Path, out_png: Path, decay_epoch: int | None = None) -> Path | None:
    """Train/validation cross-entropy per epoch (and validation accuracy on a second axis)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    if not metrics_csv.exists():
        return None
    metrics = pd.read_csv(metrics_csv)
    fig, ax = plt.subplots(figsize=(6, 4))
    for column, label in (("train_loss", "train loss"), ("val_loss", "validation loss")):
        if column in metrics:
            series = metrics[["epoch", column]].dropna()
            if len(series):
                ax.plot(series["epoch"], series[column], label=label)
    if decay_epoch is not None and "epoch" in metrics and metrics["epoch"].max() >= decay_epoch:
        ax.axvline(decay_epoch, color="grey", ls=":", lw=1, label="lr × 0.1")
    ax.set_xlabel("epoch")
    ax.set_ylabel("masked-atom cross-entropy")
    ax.grid(alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    if "val_acc" in metrics and metrics["val_acc"].notna().any():
        ax2 = ax.twinx()
        series = metrics[["epoch", "val_acc"]].dropna()
        (line,) = ax2.plot(series["epoch"], series["val_acc"], color="tab:green", ls="--", label="validation accuracy")
        ax2.set_ylabel("masked-atom accuracy")
        ax2.set_ylim(0, 1)
        handles.append(line)
        labels.append(line.get_label())
    ax.legend(handles, labels, loc="upper right")
    fig.tight_layout()
    fig.savefig(out_png, dpi=120)
    plt.close(fig)
    return Path(out_png)


def save_atom_embedding(table: torch.Tensor, path: Path) -> Path:
    from safetensors.torch import save_file

    table = table.detach().to("cpu", torch.float32).contiguous()  # [119, d]
    if table.shape[0] != N_TOKENS:
        raise ConfigError(f"atom embedding must have {N_TOKENS} rows, got {tuple(table.shape)}")
    from crystograph.train.export import write_atomic

    metadata = {"format": "crystograph-atom-embedding", "rows": "atomic number Z (row 0 = MASK token)"}
    return write_atomic(Path(path), writer=lambda tmp: save_file({EMBEDDING_KEY: table}, str(tmp), metadata=metadata))


def pretrain(
    records: Sequence,
    out_dir: Path | str,
    *,
    embed_dim: int = PretrainConfig.embed_dim,
    epochs: int = PretrainConfig.epochs,
    max_minutes: float | None = None,
    batch_size: int = PretrainConfig.batch_size,
    lr: float = PretrainConfig.lr,
    seed: int = 0,
    graph_config: GraphConfig | None = None,
    progress: bool = True,
    n_conv: int = PretrainConfig.n_conv,
    embed_init_std: float = PretrainConfig.embed_init_std,
    val_fraction: float = PretrainConfig.val_fraction,
    cache_dir: Path | str | None = None,
    accelerator: str = "auto",
    resume: bool = True,
    strict: bool = False,
    eval_draws: int = 8,
    read_skipped: Sequence[Skipped] = (),
    graph_workers: int = 1,
) -> PretrainResult:
    """Masked-atom pretraining (paper A.1) on `records` (anything with `.structure`, `.id`, `.source`).

    The default `graph_config` is `GraphConfig(pe_mode="none")`: the model reads only the kNN edges and
    bond lengths, so positional encodings would be computed for nothing. `read_skipped`: inputs the caller
    could not read; they are counted and listed in pretrain.json with the structures skipped here.
    `graph_workers`: processes that build the graphs (`build_graphs`; 0 = every usable core).
    """
    import lightning.pytorch as pl

    from crystograph.data import build_graphs, train_val_split
    from crystograph.device import lightning_accelerator, resolve_device
    from crystograph.train.checkpoints import (
        batches_done_in_epoch,
        interval_checkpoint,
        merge_metrics,
        read_metrics,
        resumable_checkpoint,
    )
    from crystograph.train.export import load_lightning_state, write_atomic
    from crystograph.train.fit import make_trainer

    started = time.monotonic()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    graph_config = graph_config or GraphConfig(pe_mode="none")
    pl.seed_everything(seed, workers=True, verbose=False)

    if not (epochs >= 1 and batch_size >= 1 and lr > 0 and (max_minutes is None or max_minutes > 0)):
        raise ConfigError(f"pretraining needs epochs ≥ 1, batch size ≥ 1, lr > 0 and max_minutes > 0 (got {epochs}, "
                          f"{batch_size}, {lr}, {max_minutes})")
    expanded, skipped = _expand(records, MIN_ATOMS)
    skipped = [*read_skipped, *skipped]
    graphs, failed = build_graphs(expanded, graph_config, cache_dir=cache_dir, progress=progress, strict=strict,
                                  description="pretraining graphs", workers=graph_workers)
    skipped += failed
    if not graphs:
        raise ConfigError(f"no usable structures for pretraining ({len(skipped)} skipped)")
    graphs = [slim_graph(g, i) for i, g in enumerate(graphs)]
    tr, va = train_val_split(len(graphs), val_fraction, seed=seed)
    train_graphs = [graphs[i] for i in tr]
    val_graphs = [graphs[i] for i in va]
    has_val = len(val_graphs) > 0

    decay_epoch = max(1, round(DECAY_FRACTION * epochs))
    model = MaskedAtomCGCNN(embed_dim=embed_dim, n_conv=n_conv, n_rbf=graph_config.n_rbf_r,
                            r_min=graph_config.r_min, r_max=graph_config.r_max, init_std=embed_init_std)
    module = MaskedAtomModule(model, lr=lr, decay_epoch=decay_epoch, max_minutes=max_minutes,
                              decay_fraction=DECAY_FRACTION, seed=seed)

    monitor = "val_loss" if has_val else "train_loss"
    ckpt_dir = out_dir / "checkpoints"
    trainer, checkpoint = make_trainer(out_dir, monitor, max_epochs=epochs, max_minutes=max_minutes, progress=progress,
                                       steps_per_epoch=math.ceil(len(train_graphs) / batch_size),
                                       extra_callbacks=[interval_checkpoint(ckpt_dir)],
                                       accelerator=lightning_accelerator(accelerator), devices=1)
    last = resumable_checkpoint(ckpt_dir / "last.ckpt", resume)
    resuming = last is not None
    metrics_csv = out_dir / "metrics.csv"
    previous_metrics = read_metrics(metrics_csv, resuming=resuming)
    train_loader = graph_loader(train_graphs, batch_size, shuffle=True, seed=seed)
    train_loader.sampler.resume_within(*batches_done_in_epoch(last))  # a mid-epoch checkpoint: the rest of it
    trainer.fit(
        module,
        train_dataloaders=train_loader,
        val_dataloaders=graph_loader(val_graphs, batch_size, shuffle=False, seed=seed) if has_val else None,
        ckpt_path=last if resuming else None,
        weights_only=True,
    )
    merge_metrics(metrics_csv, previous_metrics)
    resumed_from = (module.first_epoch if module.first_epoch is not None else int(trainer.current_epoch)) \
        if resuming else None

    best_path = Path(checkpoint.best_model_path) if checkpoint.best_model_path else ckpt_dir / "last.ckpt"
    if best_path.exists():
        module.load_state_dict(load_lightning_state(best_path))
    module = module.to(resolve_device("cuda" if lightning_accelerator(accelerator) == "gpu" else accelerator))
    eval_graphs = val_graphs if has_val else train_graphs
    scores = evaluate(module, eval_graphs, batch_size=max(64, batch_size), n_draws=eval_draws)
    baseline = majority_baseline(module, train_graphs, eval_graphs, n_draws=eval_draws)

    embedding_path = save_atom_embedding(module.model.atom_embedding, out_dir / EMBEDDING_FILE)
    wall_s = time.monotonic() - started
    result = PretrainResult(out_dir, embedding_path, scores["accuracy"], scores["loss"],
                            scores["accuracy_mask_token"], baseline,
                            int(trainer.current_epoch), len(train_graphs), len(val_graphs), skipped, wall_s,
                            resumed_from)
    summary = {
        "accuracy": result.accuracy,
        "accuracy_mask_token": scores["accuracy_mask_token"],
        "loss": result.loss,
        "baseline_accuracy": baseline,
        "evaluated_on": "validation" if has_val else "training (no validation graphs)",
        "n_masked_scored": scores["n_masked"],
        "eval_mask_draws": eval_draws,
        "epochs": result.epochs,
        "resumed_from_epoch": resumed_from,
        "best_checkpoint": str(best_path.relative_to(out_dir) if best_path.is_relative_to(out_dir) else best_path),
        "n_train": len(train_graphs),
        "n_val": len(val_graphs),
        "n_skipped": len(skipped),
        "n_read_failures": len(read_skipped),
        "skipped": [str(s) for s in skipped],
        "wall_s": wall_s,
        "embedding": {"path": EMBEDDING_FILE, "key": EMBEDDING_KEY, "shape": [N_TOKENS, embed_dim],
                      "rows": "atomic number (row 0 = MASK token)"},
        "config": {"embed_dim": embed_dim, "embed_init_std": embed_init_std, "n_conv": n_conv, "epochs": epochs,
                   "max_minutes": max_minutes,
                   "batch_size": batch_size, "lr": lr, "lr_decay_epoch": decay_epoch, "seed": seed,
                   "val_fraction": val_fraction, "mask_rate": module.mask_rate, "min_atoms": MIN_ATOMS,
                   "graph": dataclasses.asdict(graph_config)},
    }
    write_atomic(out_dir / "pretrain.json", json.dumps(summary, indent=2).encode())
    plot_loss_curve(metrics_csv, out_dir / "pretrain_loss.png", decay_epoch)
    return result
