"""Configuration dataclasses with the paper's defaults (Table A1, sections 2.1-2.3).

One place holds every size and range: graph construction (`GraphConfig`), the network
(`ModelConfig`), the training loop (`TrainConfig`) and masked-atom pretraining (`PretrainConfig`). The CLI
flags and `--config run.yaml` mirror these fields one to one.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from crystograph.errors import ConfigError

Frame = Literal["canonical", "lab"]
Cell = Literal["as_given", "primitive"]
PEMode = Literal["laplacian+rw", "laplacian", "rw", "periodic_rw", "none"]
LapPEForm = Literal["projector", "eigvec"]
Layout = Literal["stacked", "gwt_first", "parallel", "no_gwt", "gwt_only", "no_line_graph"]
Task = Literal["regression", "classification"]
Precision = Literal["fp32", "bf16"]

N_ATOM_FEATURES = 92  # CGCNN-style one-hot atom features (paper 2.1.1)
MAX_Z = 100  # elements Z = 1..MAX_Z have atom features


def _check_choice(owner: str, name: str, value: Any, choices: Any) -> None:
    allowed = get_args(choices)
    if value not in allowed:
        raise ConfigError(f"{owner}.{name} = {value!r}; choose one of {', '.join(map(str, allowed))}")


@dataclass
class GraphConfig:
    """How a structure becomes a CrysToGraph input graph (paper 2.1 and 2.2)."""

    k: int = 12  # neighbours per atom (paper: theoretical maximum coordination)
    max_radius: float = 20.0  # periodic images searched out to this distance, in Å
    long_bond_cutoff: float = 8.0  # boolean edge feature "r > 8 Å" (longest ionic bond)
    # Frame of the edge angles θ, φ and of the k-th-shell tie-breaks: "canonical" = the crystal's own frame
    # (same features whatever the file's orientation, origin, atom order or cell vectors; graphs/frame.py);
    # "lab" = the file's Cartesian frame, the paper's literal behaviour (for reproduction).
    frame: Frame = "canonical"
    # Cell the graph is built on: "as_given" = the file's cell (the paper; the positional encodings are those of
    # that cell's graph, so a conventional cell or supercell of the same crystal gets other encodings);
    # "primitive" = spglib's primitive cell of the crystal first (positions not idealised; found within
    # `symprec` Å), so every cell of the same crystal gives the same graph (graphs/cell.py). Crystals that are
    # not periodic along all three axes are used as given.
    cell: Cell = "as_given"
    symprec: float = 0.01
    # Gaussian radial-basis expansions of the spherical displacement (r, θ, φ).
    # Centres span [r_min, r_max] about every 0.25 Å. r_max = max_radius, so every edge the graph can hold has
    # distance information (measured k = 12 edges of the shared datasets and CoRE MOF end below 8 Å,
    # the repository's edge-length benchmark; sparse, porous or 2-D cells can reach max_radius).
    n_rbf_r: int = 80
    r_min: float = 0.0
    r_max: float = 20.0
    n_rbf_theta: int = 16  # θ ∈ [0, π]
    n_rbf_phi: int = 16  # φ ∈ [-π, π]
    n_rbf_angle: int = 40  # line-graph bond-angle cosine ∈ [-1, 1]
    # Positional encodings: Laplacian eigenvectors + random-walk return probabilities.
    lap_pe_dim: int = 8
    rw_pe_dim: int = 8
    # "laplacian+rw": the paper's PE on the kNN graph of the cell (moves under supercell expansion);
    # "periodic_rw": random-walk return probabilities on the infinite periodic graph (supercell-invariant,
    # Laplacian part zero); "laplacian" / "rw": one part of "laplacian+rw", the other zero (ablation, Fig. A9);
    # "none": zeros.
    pe_mode: PEMode = "laplacian+rw"
    # "projector": per node, the diagonal of each eigenspace projector U U^T (sign- and basis-invariant form of
    # the Laplacian eigenvectors, so symmetric crystals with degenerate eigenvalues are handled);
    # "eigvec": raw eigenvectors with a canonical sign (the paper's literal form; not basis-invariant).
    lap_pe_form: LapPEForm = "projector"

    def __post_init__(self) -> None:
        _check_choice("GraphConfig", "frame", self.frame, Frame)
        _check_choice("GraphConfig", "cell", self.cell, Cell)
        _check_choice("GraphConfig", "pe_mode", self.pe_mode, PEMode)
        _check_choice("GraphConfig", "lap_pe_form", self.lap_pe_form, LapPEForm)
        if not self.symprec > 0:
            raise ConfigError(f"GraphConfig.symprec must be > 0 Å (got {self.symprec})")
        if self.k < 1 or self.max_radius <= 0:
            raise ConfigError(f"GraphConfig needs k >= 1 and max_radius > 0 "
                              f"(got k={self.k}, max_radius={self.max_radius})")

    @property
    def edge_dim(self) -> int:
        return self.n_rbf_r + self.n_rbf_theta + self.n_rbf_phi + 1

    @property
    def line_dim(self) -> int:
        return self.n_rbf_angle

    @property
    def pe_dim(self) -> int:
        # The feature width stays the same whatever pe_mode is, so a model can switch modes;
        # disabled parts are zero.
        return self.lap_pe_dim + self.rw_pe_dim


@dataclass
class ModelConfig:
    """The CrysToGraph network (paper 2.3, Table A1)."""

    hidden_dim: int = 256
    num_heads: int = 8
    head_dim: int = 32  # projected feature dimension per head (paper: 32 or 24)
    n_etgc: int = 3  # eTGC blocks
    n_gwt: int = 1  # GwT layers
    n_ffnn: int = 1  # hidden layers of the output FFNN (Softplus)
    ffn_mult: int = 2  # width of the FFN inside eTGC/GwT, as a multiple of hidden_dim
    dropout: float = 0.0
    layout: Layout = "stacked"
    task: Task = "regression"
    n_targets: int = 1
    # Pretrained atom embeddings (paper A.1): a .safetensors table (`crystograph pretrain`) or "default" (the
    # table shipped in the package, crystograph/embeddings). Frozen (paper) or fine-tuned with the network.
    atom_embedding_path: str | None = None
    atom_embedding_trainable: bool = False
    # "bf16": the eTGC/GwT stages run under bfloat16 autocast (projections, attention products, FFNs and their
    # norms in bf16; embeddings, the atom and edge residual streams and the output head in fp32; the line-feature
    # stream, the largest tensor, is kept in bf16); "fp32": everything in float32.
    precision: Precision = "fp32"
    graph: GraphConfig = field(default_factory=GraphConfig)

    def __post_init__(self) -> None:
        _check_choice("ModelConfig", "layout", self.layout, Layout)
        _check_choice("ModelConfig", "task", self.task, Task)
        _check_choice("ModelConfig", "precision", self.precision, Precision)
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"ModelConfig.dropout = {self.dropout}; it must be in [0, 1)")

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> "ModelConfig":
        """`paper` = Table A1; `small` = a CPU-sized model for minutes-long runs."""
        if name == "paper":
            base = cls()
        elif name == "small":
            base = cls(hidden_dim=64, num_heads=4, head_dim=16, n_etgc=2, n_gwt=1)
        else:
            raise ConfigError(f"unknown preset {name!r}; choose 'small' or 'paper'")
        return dataclasses.replace(base, **overrides)


@dataclass
class TrainConfig:
    """The training loop (paper A.6-A.9)."""

    lr: float = 1e-4
    optimizer: Literal["adamw", "sgd"] = "adamw"  # sgd (momentum 0.9) is for the CGCNN baseline
    lr_schedule: Literal["cosine", "onecycle", "none", "multistep"] = "onecycle"
    lr_milestones: list[int] = field(default_factory=list)  # "multistep": epochs where the lr is divided by 10
    loss: Literal["l1", "mse"] = "l1"  # regression loss on the standardised target (mse: the CGCNN baseline)
    weight_decay: float = 0.0  # paper: 1e-2 if overfitting else 0.0
    batch_size: int = 32
    epochs: int = 300
    max_minutes: float | None = None  # wall-clock budget for one fit (a fold / ensemble member); not reproducible
    max_steps: int | None = None  # optimiser-step budget for one fit: reproducible, unlike max_minutes
    patience: int = 50  # early stopping on validation MAE
    val_fraction: float = 0.1
    folds: int = 1  # >1: k-fold cross-validation
    ensemble: int = 1  # models with different seeds; prediction = mean, uncertainty = std
    seed: int = 0
    num_workers: int = 0  # DataLoader worker processes that collate batches (0: in the training process)
    accelerator: str = "auto"  # auto | cpu | gpu | mps
    devices: int | str = 1
    num_nodes: int = 1
    strategy: str = "auto"  # e.g. "ddp" for multi-process training
    deterministic: bool = False

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> "TrainConfig":
        """The training settings that go with `ModelConfig.preset(name)`: `paper` = Table A1 (lr 1e-4, hundreds
        of GPU epochs); `small` = lr 1e-3, which converges within a few CPU minutes (supercon holdout at
        1.5 min: 2.78 K MAE against 3.04 K with 1e-4)."""
        if name not in TRAIN_PRESETS:
            raise ConfigError(f"unknown preset {name!r}; choose 'small' or 'paper'")
        return dataclasses.replace(cls(**TRAIN_PRESETS[name]), **overrides)


@dataclass(frozen=True)
class PretrainConfig:
    """Masked-atom pretraining (paper A.1): the defaults of `crystograph.pretrain.pretrain` and `crystograph
    pretrain`. The model is a CGCNN-style encoder of `n_conv` convolutions over the kNN graph."""

    embed_dim: int = 64  # width of the learned atom embedding
    # std of the table's normal initialisation: small, so that what pretraining learns dominates the exported rows
    # (at torch's N(0, 1) default, 3 epochs moved the rows by 0.06 std: the table stayed 0.998-correlated with noise)
    embed_init_std: float = 0.02
    n_conv: int = 3
    epochs: int = 50
    batch_size: int = 32
    lr: float = 1e-3  # Adam; divided by 10 after 40 % of the epochs (or of a wall-clock budget)
    val_fraction: float = 0.1


TRAIN_PRESETS: dict[str, dict[str, Any]] = {"paper": {"lr": 1e-4, "epochs": 300}, "small": {"lr": 1e-3, "epochs": 300}}


def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def from_dict(cls: type, data: dict[str, Any]) -> Any:
    """Rebuild a (nested) config dataclass, ignoring unknown keys with a clear error list."""
    names = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ConfigError(f"unknown {cls.__name__} keys: {', '.join(unknown)}")
    kwargs = dict(data)
    if cls is ModelConfig and isinstance(kwargs.get("graph"), dict):
        kwargs["graph"] = from_dict(GraphConfig, kwargs["graph"])
    return cls(**kwargs)
