"""Edge-engaged transformer graph convolution (eTGC), paper section 2.3.1, eqs. 2-9.

One eTGC layer updates node features :math:`x` and edge features :math:`e` of a graph whose
``edge_index`` has row 0 = neighbour :math:`j` (source) and row 1 = centre :math:`i` (target).
For every head :math:`h` (head width :math:`d`):

.. math::
    q = W_q x,\\quad k = W_k x,\\quad v = W_v x,\\quad e' = W_e e \\qquad (2)

    k_{ji} = W_{ke}(k_i \\,\\|\\, k_j \\,\\|\\, e'_{ji}),\\quad
    v_{ji} = W_{ve}(v_i \\,\\|\\, v_j \\,\\|\\, e'_{ji}) \\qquad (3)

    \\alpha_{ji} = \\operatorname{softmax}_{j \\in \\mathcal{N}(i)}
        \\Big(\\frac{q_i^\\top k_{ji}}{\\sqrt{d}}\\Big) \\qquad (4)

    h_{x,i} = \\sum_{j \\in \\mathcal{N}(i)} \\alpha_{ji} v_{ji},\\quad h_{e,ji} = \\alpha_{ji} e'_{ji} \\qquad (5)

The heads are concatenated, then

.. math::
    \\hat x = x + \\mathrm{LN}(W_{on} h_x),\\quad \\hat e = e + \\mathrm{LN}(W_{oe} h_e) \\qquad (6, 7)

    x' = \\hat x + \\mathrm{BN}(W_{x2}\\,\\mathrm{GELU}(W_{x1}\\hat x)),\\quad
    e' = \\hat e + \\mathrm{BN}(W_{e2}\\,\\mathrm{GELU}(W_{e1}\\hat e)) \\qquad (8, 9)

:math:`W_{ke}` and :math:`W_{ve}` have their own weights per head (``[3d] -> [d]``). Because they are
linear, :math:`W(a_i \\| b_j \\| c_{ji}) = A a_i + B b_j + C c_{ji} + b`, so the node parts are
projected once per node and gathered, instead of materialising ``[E, heads, 3d]``.

An :class:`ETGCBlock` (paper Fig. 1) runs a line-graph eTGC first (its nodes are the direct edges
:math:`e`, its edges the line features :math:`t`, index ``lg_edge_index``), then a direct eTGC.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch_geometric.utils import scatter, softmax

from crystograph.nn import fused
from crystograph.nn.ffn import FeedForward


class PairProjection(nn.Module):
    """Per-head :math:`W(a_i \\| b_j \\| c_{ji}) + b = a_i W_0 + b_j W_1 + c_{ji} W_2 + b` (eq. 3).

    ``weight`` is ``[3, heads, d, d]`` (centre, neighbour, edge parts; row-vector convention), ``bias`` is
    ``[heads, d]``; initialised like ``nn.Linear(3d, d)`` for each head. :class:`ETGC` never materialises
    the per-edge result: it uses the parts through :meth:`part` and :meth:`transposed_part`.
    """

    def __init__(self, num_heads: int, head_dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(3, num_heads, head_dim, head_dim))
        self.bias = nn.Parameter(torch.empty(num_heads, head_dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(3 * self.weight.size(-2))
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def part(self, which: int, rows: Tensor) -> Tensor:
        """``rows [R, heads, d] @ W_which`` per head -> ``[R, heads, d]``."""
        return torch.einsum("rhd,hdf->rhf", rows, self.weight[which])

    def transposed_part(self, which: int, rows: Tensor) -> Tensor:
        """``rows [R, heads, d] @ W_which^T`` per head -> ``[R, heads, d]``."""
        return torch.einsum("rhf,hdf->rhd", rows, self.weight[which])

    def forward(self, node: Tensor, edge: Tensor, src: Tensor, dst: Tensor) -> Tensor:
        """The explicit ``[E, heads, d]`` result (a reference for tests; ETGC uses the factorised form)."""
        return self.part(0, node)[dst] + self.part(1, node)[src] + self.part(2, edge) + self.bias


class _EdgeLayout:
    """Per-edge tensors either as ``[E, ...]`` with index gathers / PyG scatter (any graph), or, when
    every centre has the same number ``m`` of in-edges stored contiguously (kNN graphs and their line
    graphs, as `graphs.build` makes them), as ``[N, m, ...]`` where "gather by centre" is a broadcast and
    "sum over a centre's edges" a reduction over dim 1. Both give the same numbers."""

    def __init__(self, dst: Tensor, num_nodes: int, dense: bool | None = None):
        self.dst, self.n = dst, num_nodes
        n_edges = dst.numel()
        m = n_edges // num_nodes if num_nodes else 0
        if dense is None:
            dense = (
                m > 0
                and m * num_nodes == n_edges
                and bool((dst.view(num_nodes, m) == torch.arange(num_nodes, device=dst.device)[:, None]).all())
            )
        self.dense, self.m = dense, m

    def edges(self, t: Tensor) -> Tensor:
        """``[E, ...]`` -> the layout's edge shape."""
        return t.view(self.n, self.m, *t.shape[1:]) if self.dense else t

    def flat(self, t: Tensor) -> Tensor:
        """The layout's edge shape -> ``[E, ...]``."""
        return t.reshape(self.n * self.m, *t.shape[2:]) if self.dense else t

    def at_centre(self, t: Tensor) -> Tensor:
        """Node tensor ``[N, ...]`` -> its value at each edge's centre."""
        return t.unsqueeze(1) if self.dense else t.index_select(0, self.dst)

    def at_source(self, t: Tensor, src: Tensor) -> Tensor:
        return self.edges(t.index_select(0, src))

    def softmax(self, score: Tensor) -> Tensor:
        return torch.softmax(score, dim=1) if self.dense else softmax(score, self.dst, num_nodes=self.n)

    def sum(self, t: Tensor) -> Tensor:
        """Sum over each centre's edges -> ``[N, ...]``."""
        return t.sum(1) if self.dense else scatter(t, self.dst, dim=0, dim_size=self.n, reduce="sum")


class ETGC(nn.Module):
    """One eTGC layer (eqs. 2-9): ``forward(x [N, h], edge_index [2, E], e [E, h]) -> (x', e')``.

    The per-edge keys and values of eq. 3 are never materialised. With :math:`k_{ji} = k_i W_0 + k_j W_1
    + e'_{ji} W_2 + b` (per head),

    .. math::
        q_i^\\top k_{ji} = q_i^\\top(k_i W_0 + b) + (q_i W_1^\\top)^\\top k_j + (q_i W_2^\\top)^\\top e'_{ji}

        \\sum_j \\alpha_{ji} v_{ji} = \\Big(\\sum_j \\alpha_{ji}\\Big)(v_i W_0 + b)
            + \\Big(\\sum_j \\alpha_{ji} v_j\\Big) W_1 + \\Big(\\sum_j \\alpha_{ji} e'_{ji}\\Big) W_2

    so the ``d x d`` products run once per node, not once per edge: the same function, 2 of the 3
    per-edge matrix products of a line-graph layer fewer (``tests/test_nn_layers.py`` checks it against
    the explicit form).

    Args:
        hidden_dim: width ``h`` of node and edge features (in and out).
        num_heads, head_dim: attention heads and the projected width ``d`` of each.
        ffn_mult: FFN hidden width as a multiple of ``hidden_dim``.
        dropout: on attention weights and inside the FFNs.
        update_edges: when False the edge output (eqs. 5b, 7, 9) is not computed and ``e`` is
            returned unchanged, so a layer whose edge output nobody reads holds no unused weights.
    """

    def __init__(
        self,
        hidden_dim: int,
        num_heads: int,
        head_dim: int,
        ffn_mult: int = 2,
        dropout: float = 0.0,
        update_edges: bool = True,
    ):
        super().__init__()
        self.hidden_dim, self.num_heads, self.head_dim = hidden_dim, num_heads, head_dim
        self.update_edges = update_edges
        inner = num_heads * head_dim
        self.lin_q = nn.Linear(hidden_dim, inner)  # W_q
        self.lin_k = nn.Linear(hidden_dim, inner)  # W_k
        self.lin_v = nn.Linear(hidden_dim, inner)  # W_v
        self.lin_e = nn.Linear(hidden_dim, inner)  # W_e
        self.key_edge = PairProjection(num_heads, head_dim)  # W_ke
        self.value_edge = PairProjection(num_heads, head_dim)  # W_ve
        self.attn_dropout = nn.Dropout(dropout)
        self.out_x = nn.Linear(inner, hidden_dim)  # W_on
        self.norm_x = nn.LayerNorm(hidden_dim)
        self.ffn_x = FeedForward(hidden_dim, ffn_mult, norm="batch", dropout=dropout)
        if update_edges:
            self.out_e = nn.Linear(inner, hidden_dim)  # W_oe
            self.norm_e = nn.LayerNorm(hidden_dim)
            self.ffn_e = FeedForward(hidden_dim, ffn_mult, norm="batch", dropout=dropout)

    def forward(
        self,
        x: Tensor,
        edge_index: Tensor,
        e: Tensor,
        return_attention: bool = False,
        dense: bool | None = None,
    ) -> tuple[Tensor, Tensor] | tuple[Tensor, Tensor, Tensor]:
        """Returns ``(x', e')``, plus the attention weights ``[E, heads]`` if ``return_attention``.

        ``dense``: None = detect the regular layout (see :class:`_EdgeLayout`); False forces the general path.
        """
        n, heads, d = x.size(0), self.num_heads, self.head_dim
        src, dst = edge_index[0], edge_index[1]  # neighbour j, centre i
        lay = _EdgeLayout(dst, n, dense)
        wk, wv = self.key_edge, self.value_edge
        q = self.lin_q(x).view(n, heads, d)  # [N, heads, d]
        k = self.lin_k(x).view(n, heads, d)  # [N, heads, d]
        v = self.lin_v(x).view(n, heads, d)  # [N, heads, d]
        e_proj = lay.edges(self.lin_e(e).view(-1, heads, d))  # [E, heads, d]  (e')

        # Scores q_i . k_ji (eqs. 3-4), factorised as in the class docstring.
        score_node = (q * (wk.part(0, k) + wk.bias)).sum(-1)  # [N, heads]
        q_w1 = lay.at_centre(wk.transposed_part(1, q))  # [N, heads, d] at each edge
        q_w2 = lay.at_centre(wk.transposed_part(2, q))
        pair_scores = fused.get("scores") if lay.dense else fused.scores  # the same formula, fused when enabled
        score = lay.at_centre(score_node) + pair_scores(q_w1, lay.at_source(k, src), q_w2, e_proj)  # [E, heads]
        attn = lay.softmax(score / math.sqrt(d))  # [E, heads], sums to 1 over each centre's edges
        attn_d = self.attn_dropout(attn).unsqueeze(-1)  # [E, heads, 1]
        attn_p = attn_d.to(e_proj.dtype)  # the products' dtype: bf16 under autocast (no fp32 [E, heads, d] copies)

        # h_x = sum_j alpha_ji v_ji (eq. 5a), factorised; h_e = alpha_ji e'_ji (eq. 5b).
        if lay.dense:
            h_e, sum_av, sum_he = fused.get("weighted_sums")(attn_p, lay.at_source(v, src), e_proj)
        else:
            h_e = attn_p * e_proj  # [E, heads, d]
            sum_av, sum_he = lay.sum(attn_p * lay.at_source(v, src)), lay.sum(h_e)
        h_x = (
            lay.sum(attn_d) * (wv.part(0, v) + wv.bias) + wv.part(1, sum_av) + wv.part(2, sum_he)
        )  # [N, heads, d]
        x_hat = x + self.norm_x(self.out_x(h_x.reshape(n, heads * d)))  # [N, h]  (eq. 6)
        x_out = x_hat + self.ffn_x(x_hat)  # [N, h]  (eq. 8)

        e_out = e
        if self.update_edges:
            e_hat = e + self.norm_e(self.out_e(lay.flat(h_e).reshape(-1, heads * d)))  # [E, h]  (eq. 7)
            e_out = e_hat + self.ffn_e(e_hat)  # [E, h]  (eq. 9)
        if return_attention:
            return x_out, e_out, lay.flat(attn)
        return x_out, e_out

    def reference_forward(self, x: Tensor, edge_index: Tensor, e: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Eqs. 2-9 written out literally, materialising ``k_ji, v_ji [E, heads, d]``: ``(x', e', attn)``.

        Slow; the yardstick that tests and ``benchmarks/etgc_speed.py`` hold :meth:`forward` against.
        """
        n, heads, d = x.size(0), self.num_heads, self.head_dim
        src, dst = edge_index[0], edge_index[1]
        q, k, v = (lin(x).view(n, heads, d) for lin in (self.lin_q, self.lin_k, self.lin_v))
        e_proj = self.lin_e(e).view(-1, heads, d)  # [E, heads, d]
        k_edge = self.key_edge(k, e_proj, src, dst)  # [E, heads, d]  (k_ji)
        v_edge = self.value_edge(v, e_proj, src, dst)  # [E, heads, d]  (v_ji)
        attn = softmax((q[dst] * k_edge).sum(-1) / math.sqrt(d), dst, num_nodes=n)  # [E, heads]
        attn_d = self.attn_dropout(attn).unsqueeze(-1)
        h_x = scatter(attn_d * v_edge, dst, dim=0, dim_size=n, reduce="sum").reshape(n, heads * d)
        x_hat = x + self.norm_x(self.out_x(h_x))
        e_out = e
        if self.update_edges:
            e_hat = e + self.norm_e(self.out_e((attn_d * e_proj).reshape(-1, heads * d)))
            e_out = e_hat + self.ffn_e(e_hat)
        return x_hat + self.ffn_x(x_hat), e_out, attn

    def extra_repr(self) -> str:
        return (
            f"hidden_dim={self.hidden_dim}, heads={self.num_heads}, head_dim={self.head_dim}, "
            f"update_edges={self.update_edges}"
        )


class ETGCBlock(nn.Module):
    """Line-graph eTGC (updates ``e`` and ``t``) followed by a direct eTGC (updates ``x`` and ``e``).

    ``use_line_graph=False`` (the ``no_line_graph`` ablation) keeps only the direct layer; ``t`` and
    ``lg_edge_index`` are then ignored. ``update_line_edges`` / ``update_edges`` switch off the
    ``t`` / ``e`` outputs of the last block when no later layer reads them (see :class:`ETGC`).
    """

    def __init__(
        self,
        hidden_dim: int,
        num_heads: int,
        head_dim: int,
        ffn_mult: int = 2,
        dropout: float = 0.0,
        use_line_graph: bool = True,
        update_line_edges: bool = True,
        update_edges: bool = True,
    ):
        super().__init__()
        self.use_line_graph = use_line_graph
        self.line = (
            ETGC(hidden_dim, num_heads, head_dim, ffn_mult, dropout, update_edges=update_line_edges)
            if use_line_graph
            else None
        )
        self.direct = ETGC(hidden_dim, num_heads, head_dim, ffn_mult, dropout, update_edges=update_edges)

    def forward(
        self,
        x: Tensor,
        edge_index: Tensor,
        e: Tensor,
        lg_edge_index: Tensor | None = None,
        t: Tensor | None = None,
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        """``x [N, h]``, ``e [E, h]``, ``t [L, h]`` -> updated ``(x, e, t)``."""
        if self.line is not None:
            if lg_edge_index is None or t is None:
                raise ValueError("ETGCBlock with use_line_graph=True needs lg_edge_index and t")
            e, t = self.line(e, lg_edge_index, t)  # nodes = direct edges, edges = line features
        x, e = self.direct(x, edge_index, e)
        return x, e, t
