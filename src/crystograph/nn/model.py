"""The CrysToGraph network (paper eq. 1, Fig. 1, Fig. 11): embeddings, eTGC blocks, GwT layers, readout.

.. math::
    \\mathrm{CrysToGraph}(\\mathcal{G}, L(\\mathcal{G})) =
    \\mathrm{FFNN}\\big(\\mathrm{GwT}_{\\times N}(\\mathrm{eTGC}_{\\times N}(\\mathcal{G},
    L(\\mathcal{G})))\\big) \\qquad (1)

Inputs are the graph fields of ``docs/DESIGN.md`` (``x, z, edge_index, edge_attr, lg_edge_index,
lg_attr, pe, batch``). Embeddings: ``x ‖ E_pre[z]`` (the optional pretrained per-element table of
paper A.1: a frozen buffer, or a parameter with ``atom_embedding_trainable``; rows of elements the pretraining
corpus lacked are zero, see `crystograph.embeddings`) ``-> Linear -> h``; ``edge_attr -> Linear -> h``;
``lg_attr -> Linear -> h``.

Layouts (``ModelConfig.layout``):

* ``stacked`` (paper default): ``n_etgc`` eTGC blocks, then ``n_gwt`` GwT layers on the eTGC output
  (nodes and updated edges).
* ``gwt_first``: GwT layers on the embedded graph, then the eTGC blocks.
* ``parallel``: an eTGC branch and a GwT branch from the same embedded graph; node features are
  concatenated and mixed by ``Linear(2h, h)`` before pooling (Fig. 11).
* ``no_gwt``: eTGC blocks only. ``gwt_only``: GwT layers only (with the embedded edge term of eq. 11).
* ``no_line_graph``: ``stacked`` without the line-graph pass (``lg_*`` fields are not read).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, get_args

import copy
import warnings

import torch
from torch import Tensor, nn

from crystograph.config import N_ATOM_FEATURES, Layout, ModelConfig
from crystograph.errors import ConfigError
from crystograph.nn.etgc import ETGCBlock
from crystograph.nn.gwt import GwT
from crystograph.nn.heads import MeanPoolHead

_LAYOUTS: tuple[str, ...] = get_args(Layout)


def load_atom_embedding(path: str | Path) -> Tensor:
    """The ``"atom_embedding"`` tensor ``[n_elements, d]`` (row = atomic number) of a safetensors file
    (``"default"``: the table shipped in the package)."""
    from crystograph.embeddings import load_table

    return load_table(path).table


class CrysToGraph(nn.Module):
    """``CrysToGraph(config)``; ``forward(batch) -> [B, n_targets]`` (raw logits for classification)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        if config.layout not in _LAYOUTS:
            raise ConfigError(f"unknown layout {config.layout!r}; choose one of {', '.join(_LAYOUTS)}")
        self.config = config
        self.layout = config.layout
        h, g = config.hidden_dim, config.graph
        n_etgc = 0 if self.layout == "gwt_only" else config.n_etgc
        n_gwt = 0 if self.layout == "no_gwt" else config.n_gwt
        if n_etgc + n_gwt == 0 or (self.layout == "parallel" and min(n_etgc, n_gwt) == 0):
            raise ConfigError(f"layout {self.layout!r} with n_etgc={config.n_etgc}, n_gwt={config.n_gwt} has no layers")
        self.uses_line_graph = n_etgc > 0 and self.layout != "no_line_graph"
        self.uses_gwt = n_gwt > 0

        # Embeddings.
        # [n_elements, d], row = atomic number: a frozen buffer, or a parameter when fine-tuned
        if config.atom_embedding_trainable:
            self.register_parameter("atom_embedding", None)
        else:
            self.register_buffer("atom_embedding", None)
        self.register_buffer("atom_covered", None)  # bool [n_elements]: rows learned in pretraining (None = all)
        self._warned_uncovered: set[int] = set()  # elements already named in a warning by this model
        self.atom_embed = nn.Linear(N_ATOM_FEATURES, h)
        if config.atom_embedding_path is not None:
            from crystograph.embeddings import load_table

            loaded = load_table(config.atom_embedding_path)
            self._set_atom_embedding(loaded.table, loaded.covered)
        self.edge_embed = nn.Linear(g.edge_dim, h)
        self.line_embed = nn.Linear(g.line_dim, h) if self.uses_line_graph else None

        # eTGC blocks; the last block's t (and e, when no GwT reads it) outputs are not computed.
        gwt_reads_etgc_edges = self.layout in ("stacked", "no_line_graph") and n_gwt > 0
        self.etgc = nn.ModuleList(
            ETGCBlock(
                h,
                config.num_heads,
                config.head_dim,
                config.ffn_mult,
                config.dropout,
                use_line_graph=self.uses_line_graph,
                update_line_edges=b < n_etgc - 1,
                update_edges=b < n_etgc - 1 or gwt_reads_etgc_edges,
            )
            for b in range(n_etgc)
        )
        self.gwt = nn.ModuleList(
            GwT(h, config.num_heads, config.head_dim, g.pe_dim, config.ffn_mult, config.dropout) for _ in range(n_gwt)
        )
        self.merge = nn.Linear(2 * h, h) if self.layout == "parallel" else None
        self.head = MeanPoolHead(h, config.n_ffnn, config.n_targets, config.dropout)

    # ------------------------------------------------------------------ pretrained atom table
    def _set_atom_embedding(self, table: Tensor, covered: Tensor | None = None) -> None:
        """Install a ``[n_elements, d]`` table (and its coverage mask) and resize the atom input layer to ``92 + d``."""
        ref = self.atom_embed.weight
        table = table.to(device=ref.device, dtype=ref.dtype)
        if self.config.atom_embedding_trainable:
            self.atom_embedding = nn.Parameter(table.clone())
        else:
            self.atom_embedding = table
        self.atom_covered = None if covered is None else covered.to(device=ref.device, dtype=torch.bool)
        self.atom_embed = nn.Linear(N_ATOM_FEATURES + table.size(1), self.config.hidden_dim).to(ref.device, ref.dtype)

    def _load_from_state_dict(
        self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
    ):
        # The table (and its coverage mask) travels in the weights: a model built without atom_embedding_path
        # (e.g. by train.export.load_model_dir) takes their shapes from the state dict before loading them.
        # Frozen and fine-tuned tables have the same key, so either kind of saved model loads into either.
        table = state_dict.get(prefix + "atom_embedding")
        covered = state_dict.get(prefix + "atom_covered")
        if table is not None and (self.atom_embedding is None or self.atom_embedding.shape != table.shape
                                  or (covered is not None) != (self.atom_covered is not None)):
            mask = None if covered is None else torch.ones(covered.shape, dtype=torch.bool)
            self._set_atom_embedding(torch.zeros(table.shape), mask)
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )

    # ------------------------------------------------------------------ inputs
    def _check(self, batch: Any) -> None:
        g = self.config.graph
        needed = {"x": N_ATOM_FEATURES, "edge_attr": g.edge_dim}
        if self.uses_line_graph:
            needed["lg_attr"] = g.line_dim
        if self.uses_gwt:
            needed["pe"] = g.pe_dim
        for name, width in needed.items():
            t = getattr(batch, name, None)
            if t is None:
                raise ValueError(f"layout {self.layout!r} needs batch.{name} (see docs/DESIGN.md)")
            if t.dim() != 2 or t.size(1) != width:
                raise ValueError(f"batch.{name} must be [rows, {width}] for this ModelConfig, got {tuple(t.shape)}")
        if self.uses_line_graph and getattr(batch, "lg_edge_index", None) is None:
            raise ValueError(
                f"layout {self.layout!r} needs batch.lg_edge_index (use layout='no_line_graph' without it)"
            )
        if self.atom_embedding is not None and getattr(batch, "z", None) is None:
            raise ValueError("a pretrained atom embedding needs batch.z (atomic numbers)")

    @staticmethod
    def _batch_index(batch: Any) -> tuple[Tensor, int]:
        idx = getattr(batch, "batch", None)
        if idx is None:  # a single graph, not a Batch
            return torch.zeros(batch.x.size(0), dtype=torch.long, device=batch.x.device), 1
        num_graphs = getattr(batch, "num_graphs", None)
        return idx, int(num_graphs) if num_graphs is not None else int(idx.max()) + 1

    @property
    def _dtype(self) -> torch.dtype:
        return self.atom_embed.weight.dtype  # inputs follow the weights (float32, or float64 after .double())

    def _atom_input(self, batch: Any) -> Tensor:
        x = batch.x.to(self._dtype)  # [N, 92]
        if self.atom_embedding is None:
            return x
        z = batch.z.long()  # [N]
        if z.numel() and int(z.max()) >= self.atom_embedding.size(0):
            rows = self.atom_embedding.size(0)
            raise ConfigError(f"atomic number {int(z.max())} outside the atom embedding table ({rows} rows)")
        learned = self.atom_embedding[z]  # [N, d]
        if self.atom_covered is not None:
            covered = self.atom_covered[z]  # [N]
            learned = learned * covered.unsqueeze(-1).to(learned.dtype)  # uncovered elements: 92-d features only
            if not bool(covered.all()):
                self._warn_uncovered(z[~covered])
        return torch.cat([x, learned], dim=-1)  # [N, 92 + d]

    def _warn_uncovered(self, z: Tensor) -> None:
        """Warn once per model and element that an element has no learned embedding."""
        new = sorted(set(z.tolist()) - self._warned_uncovered)
        if not new:
            return
        from pymatgen.core.periodic_table import Element

        self._warned_uncovered.update(new)
        names = ", ".join(f"{Element.from_Z(int(n)).symbol} (Z={n})" for n in new)
        warnings.warn(f"atom embeddings: {names} did not occur in the pretraining corpus; their learned embedding "
                      "part is zero, so only the 92-d atom features describe them", UserWarning, stacklevel=3)

    # ------------------------------------------------------------------ stages
    def _run_etgc(self, x: Tensor, e: Tensor, t: Tensor | None, batch: Any) -> tuple[Tensor, Tensor]:
        lg_edge_index = batch.lg_edge_index if self.uses_line_graph else None
        for block in self.etgc:
            x, e, t = block(x, batch.edge_index, e, lg_edge_index, t)
        return x, e

    def _run_gwt(self, x: Tensor, e: Tensor, batch: Any, batch_idx: Tensor, num_graphs: int) -> Tensor:
        for layer in self.gwt:
            x = layer(x, e, batch.edge_index, batch.pe.to(x.dtype), batch_idx, num_graphs)
        return x

    def _encode(self, batch: Any) -> tuple[Tensor, Tensor, int]:
        if getattr(batch, "edge_attr", None) is None and getattr(batch, "edge_vec", None) is not None:
            from crystograph.graphs import add_edge_features

            batch = add_edge_features(copy.copy(batch), self.config.graph)  # compact graphs: expand RBFs per batch
        self._check(batch)
        batch_idx, num_graphs = self._batch_index(batch)
        with torch.autocast(batch.x.device.type, enabled=False):  # the residual streams start (and stay) fp32
            x = self.atom_embed(self._atom_input(batch))  # [N, h]
            e = self.edge_embed(batch.edge_attr.to(self._dtype))  # [E, h]
            t = self.line_embed(batch.lg_attr.to(self._dtype)) if self.line_embed is not None else None  # [L, h]
        if t is not None and self.config.precision == "bf16":
            t = t.to(torch.bfloat16)  # [L, h]: the line-feature stream (~12x the edges) is kept in bf16

        if self.layout in ("stacked", "no_line_graph", "no_gwt"):
            x, e = self._run_etgc(x, e, t, batch)
            x = self._run_gwt(x, e, batch, batch_idx, num_graphs)
        elif self.layout == "gwt_first":
            x = self._run_gwt(x, e, batch, batch_idx, num_graphs)
            x, _ = self._run_etgc(x, e, t, batch)
        elif self.layout == "gwt_only":
            x = self._run_gwt(x, e, batch, batch_idx, num_graphs)
        else:  # parallel
            x_local, _ = self._run_etgc(x, e, t, batch)  # [N, h]
            x_global = self._run_gwt(x, e, batch, batch_idx, num_graphs)  # [N, h]
            x = self.merge(torch.cat([x_local, x_global], dim=-1))  # [N, h]
        return x, batch_idx, num_graphs

    # ------------------------------------------------------------------ API
    def encode(self, batch: Any) -> Tensor:
        """Node features ``[N, hidden_dim]`` before pooling (used by pretraining)."""
        with self._autocast(batch.x.device):
            x = self._encode(batch)[0]
        return x.to(self._dtype)

    def forward(self, batch: Any) -> Tensor:
        """``[B, n_targets]`` predictions (raw logits for classification)."""
        with self._autocast(batch.x.device):
            x, batch_idx, num_graphs = self._encode(batch)
        return self.head(x.to(self._dtype), batch_idx, num_graphs)

    def _autocast(self, device: torch.device):
        """bfloat16 autocast of the eTGC/GwT stages when `config.precision == "bf16"` (a no-op otherwise).

        The embeddings run in fp32, so the atom and edge residual streams x, e stay fp32 (fp32 + bf16 -> fp32);
        the line-feature stream t, ~12x larger than e, is cast to bf16 once after its embedding and stays bf16
        (no per-layer casts of the largest tensors). Projections, attention products and FFNs run in bfloat16."""
        return torch.autocast(device.type, dtype=torch.bfloat16, enabled=self.config.precision == "bf16")

    def num_parameters(self, trainable_only: bool = True) -> int:
        """Number of parameters (a frozen pretrained atom table is a buffer and never counted; a fine-tuned one is)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)
