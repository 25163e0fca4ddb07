"""Graph-wise transformer (GwT), paper section 2.3.2, eqs. 11-15.

Every node attends to every node of its own crystal (not across crystals of a batch). Before the
attention the positional encoding and the sum of incoming edge features are injected (eq. 11):

.. math::
    x_{i,pe} = x_i + W_{pe} p_i + \\sum_{j \\in \\mathcal{N}(i)} W_e e_{ji} \\qquad (11)

    Q = W_q X_{pe},\\ K = W_k X_{pe},\\ V = W_v X_{pe},\\quad
    \\mathrm{Attn} = \\operatorname{softmax}\\Big(\\frac{QK^\\top}{\\sqrt{d}}\\Big) \\qquad (12, 13)

    H = X_{pe} + \\mathrm{LN}(W_o\\,\\mathrm{Attn}\\,V) \\qquad (14)

    X' = H + \\mathrm{LN}(W_2\\,\\mathrm{GELU}(W_1 H + b_1) + b_2) \\qquad (15)

Each GwT layer owns its :math:`W_{pe}, W_e` and re-applies eq. 11 to its input, so in a stack of
GwT layers every layer sees the positional encoding and the edge sum again (as the authors' code
does). :math:`W_e` has no bias and is applied after the sum, :math:`W_e\\sum_j e_{ji}`, which equals
eq. 11 exactly and costs a node-level instead of an edge-level matmul.

Attention is computed densely per crystal: ``to_dense_batch`` pads crystals to the largest one and
``scaled_dot_product_attention`` masks padded keys. ``batch`` must be sorted (as in any PyG batch).
PyTorch's CPU kernel for this is memory-efficient (no [B, heads, M, M] weights are stored), but its work
grows as B * M^2: one crystal of 2,000 atoms among 31 of 8 atoms made a layer 30x slower than the big
crystal alone. When padding would cost more than ``PAD_WASTE`` times the useful work (sum of n_i^2),
crystals are attended in buckets of similar size (n_i in (2^(j-1), 2^j]), so each pads at most to twice its
own size; the result is the same up to float round-off (every crystal still attends only to itself).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.utils import scatter, to_dense_batch

from crystograph.nn.ffn import FeedForward

PAD_WASTE = 8.0  # attend in size buckets when B * M^2 > PAD_WASTE * sum(n_i^2)


class GwT(nn.Module):
    """One GwT layer: ``forward(x [N, h], e [E, h] | None, edge_index [2, E], pe [N, p], batch [N]) -> x' [N, h]``.

    Args:
        hidden_dim: node / edge width ``h``.
        num_heads, head_dim: attention heads and the width ``d`` of each (``W_q: h -> heads * d``).
        pe_dim: width of the positional encoding ``p``.
        ffn_mult: FFN hidden width as a multiple of ``hidden_dim``.
        dropout: on attention weights and inside the FFN.
    """

    def __init__(
        self,
        hidden_dim: int,
        num_heads: int,
        head_dim: int,
        pe_dim: int,
        ffn_mult: int = 2,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.hidden_dim, self.num_heads, self.head_dim = hidden_dim, num_heads, head_dim
        self.dropout = dropout
        inner = num_heads * head_dim
        self.lin_pe = nn.Linear(pe_dim, hidden_dim)  # W_pe
        self.lin_edge = nn.Linear(hidden_dim, hidden_dim, bias=False)  # W_e
        self.lin_qkv = nn.Linear(hidden_dim, 3 * inner)  # W_q, W_k, W_v stacked
        self.lin_out = nn.Linear(inner, hidden_dim)  # W_o
        self.norm_attn = nn.LayerNorm(hidden_dim)
        self.ffn = FeedForward(hidden_dim, ffn_mult, norm="layer", dropout=dropout)

    def inject(self, x: Tensor, e: Tensor | None, edge_index: Tensor, pe: Tensor) -> Tensor:
        """Eq. 11: ``x + W_pe p + W_e Σ_j e_ji`` (the edge term is skipped when ``e`` is None)."""
        x = x + self.lin_pe(pe)  # [N, h]
        if e is not None:
            e_sum = scatter(e, edge_index[1], dim=0, dim_size=x.size(0), reduce="sum")  # [N, h]
            x = x + self.lin_edge(e_sum)
        return x

    def forward(
        self,
        x: Tensor,
        e: Tensor | None,
        edge_index: Tensor,
        pe: Tensor,
        batch: Tensor,
        num_graphs: int | None = None,
    ) -> Tensor:
        x = self.inject(x, e, edge_index, pe)  # [N, h]  (x_pe)
        out = self.attend(self.lin_qkv(x), batch, num_graphs)  # [N, heads * d]
        h = x + self.norm_attn(self.lin_out(out))  # [N, h]  (eq. 14)
        return h + self.ffn(h)  # [N, h]  (eq. 15)

    def attend(self, qkv: Tensor, batch: Tensor, num_graphs: int | None = None) -> Tensor:
        """Eqs. 12-13 per crystal: qkv [N, 3 * heads * d] (node order) -> [N, heads * d]."""
        counts = torch.bincount(batch, minlength=num_graphs or 0)  # [B]
        if counts.numel() == 0:
            return self._attend_padded(qkv, batch, num_graphs)
        useful = float((counts.double() ** 2).sum())
        if counts.numel() * float(counts.max()) ** 2 <= PAD_WASTE * useful:
            return self._attend_padded(qkv, batch, counts.numel())
        bucket = torch.ceil(torch.log2(counts.clamp_min(1).double())).long()  # [B] size class of each crystal
        node_bucket = bucket[batch]  # [N]
        out = qkv.new_empty(qkv.size(0), self.num_heads * self.head_dim)
        for j in torch.unique(bucket).tolist():
            in_bucket = bucket == j  # [B]
            new_id = torch.cumsum(in_bucket, 0) - 1  # [B] graph index within the bucket
            sel = node_bucket == j  # [N] (batch sorted -> new ids sorted)
            out[sel] = self._attend_padded(qkv[sel], new_id[batch[sel]], int(in_bucket.sum()))
        return out

    def _attend_padded(self, qkv: Tensor, batch: Tensor, num_graphs: int | None) -> Tensor:
        heads, d = self.num_heads, self.head_dim
        qkv, mask = to_dense_batch(qkv, batch, batch_size=num_graphs)  # [B, M, 3hd], [B, M]
        b, m = mask.shape
        q, k, v = qkv.view(b, m, 3, heads, d).permute(2, 0, 3, 1, 4)  # each [B, heads, M, d]
        out = F.scaled_dot_product_attention(
            q,
            k,
            v,
            attn_mask=mask[:, None, None, :],  # [B, 1, 1, M]: keys of the same crystal only
            dropout_p=self.dropout if self.training else 0.0,
        )  # [B, heads, M, d]
        return out.transpose(1, 2).reshape(b, m, heads * d)[mask]  # [N, heads * d], sparse node order

    def extra_repr(self) -> str:
        return f"hidden_dim={self.hidden_dim}, heads={self.num_heads}, head_dim={self.head_dim}"
