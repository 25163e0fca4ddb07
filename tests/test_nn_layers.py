"""eTGC, GwT, FFN and readout layers on small synthetic graphs."""

from __future__ import annotations

import pytest
import torch
from test_nn_synthetic import random_batch, small_graph_config
from torch_geometric.utils import scatter

from crystograph.nn import ETGC, ETGCBlock, GwT, MeanPoolHead
from crystograph.nn.ffn import FeedForward, RowBatchNorm

H = 16  # hidden width used in these tests


def _embedded(seed: int = 0, sizes=(3, 5, 2)):
    cfg = small_graph_config()
    batch = random_batch(sizes, seed=seed, cfg=cfg)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch.num_nodes, H, generator=g)
    e = torch.randn(batch.edge_index.size(1), H, generator=g)
    t = torch.randn(batch.lg_edge_index.size(1), H, generator=g)
    return batch, x, e, t


def _all_grads(module: torch.nn.Module) -> None:
    missing = [n for n, p in module.named_parameters() if p.grad is None]
    assert not missing, f"no gradient for {missing}"
    assert all(torch.isfinite(p.grad).all() for p in module.parameters())


# ---------------------------------------------------------------------------------------- eTGC
def test_etgc_shapes_and_gradients():
    torch.manual_seed(0)
    batch, x, e, _ = _embedded()
    layer = ETGC(H, num_heads=2, head_dim=4)
    x2, e2 = layer(x, batch.edge_index, e)
    assert x2.shape == x.shape and e2.shape == e.shape
    (x2.square().sum() + e2.square().sum()).backward()
    _all_grads(layer)


@pytest.mark.parametrize("graph", ["crystal", "line_graph", "irregular"])
def test_etgc_factorised_matches_explicit_equations(graph):
    """The factorised attention (dense kNN layout and general PyG path) equals eqs. 2-9 written out."""
    torch.manual_seed(0)
    batch, x, e, t = _embedded(sizes=(3, 5, 2))
    if graph == "crystal":
        nodes, edge_index, edges = x, batch.edge_index, e
    elif graph == "line_graph":
        order = torch.sort(batch.lg_edge_index[1], stable=True).indices  # by centre, as graphs.build orders it
        nodes, edge_index, edges = e, batch.lg_edge_index[:, order], t[order]
    else:  # drop some edges: centres with unequal in-degrees, only the general path applies
        keep = torch.rand(batch.edge_index.size(1)) > 0.3
        nodes, edge_index, edges = x, batch.edge_index[:, keep], e[keep]
    layer = ETGC(H, num_heads=2, head_dim=4).double()
    nodes, edges = nodes.double(), edges.double()
    want_x, want_e, want_attn = layer.reference_forward(nodes, edge_index, edges)
    for dense in (None, False):
        got_x, got_e, got_attn = layer(nodes, edge_index, edges, return_attention=True, dense=dense)
        torch.testing.assert_close(got_attn, want_attn)
        torch.testing.assert_close(got_x, want_x)
        torch.testing.assert_close(got_e, want_e)
    from crystograph.nn.etgc import _EdgeLayout

    assert _EdgeLayout(edge_index[1], nodes.size(0)).dense == (graph != "irregular")


def test_real_crystal_and_line_graph_use_the_dense_layout(rocksalt):
    from crystograph.graphs import build_graph
    from crystograph.nn.etgc import _EdgeLayout

    g = build_graph(rocksalt)
    assert _EdgeLayout(g.edge_index[1], g.num_nodes).dense
    assert _EdgeLayout(g.lg_edge_index[1], g.edge_index.size(1)).dense


def test_etgc_attention_sums_to_one_per_centre():
    torch.manual_seed(0)
    batch, x, e, _ = _embedded()
    layer = ETGC(H, num_heads=3, head_dim=4)
    _, _, attn = layer(x, batch.edge_index, e, return_attention=True)
    assert attn.shape == (batch.edge_index.size(1), 3)
    assert (attn >= 0).all()
    sums = scatter(attn, batch.edge_index[1], dim=0, dim_size=batch.num_nodes, reduce="sum")
    torch.testing.assert_close(sums, torch.ones_like(sums))


def test_etgc_without_edge_update_keeps_edges_and_has_no_edge_weights():
    batch, x, e, _ = _embedded()
    layer = ETGC(H, 2, 4, update_edges=False)
    assert not hasattr(layer, "out_e") and not hasattr(layer, "ffn_e")
    x2, e2 = layer(x, batch.edge_index, e)
    assert e2 is e
    x2.sum().backward()
    _all_grads(layer)


def test_etgc_is_local_one_edge_changes_only_its_centre():
    torch.manual_seed(0)
    batch, x, e, _ = _embedded()
    layer = ETGC(H, 2, 4).eval()
    edge = 7
    centre = int(batch.edge_index[1, edge])
    e_moved = e.clone()
    e_moved[edge] += 1.0
    with torch.no_grad():
        x_a, e_a = layer(x, batch.edge_index, e)
        x_b, e_b = layer(x, batch.edge_index, e_moved)
    changed = (x_a - x_b).abs().amax(dim=1) > 1e-6
    assert changed.nonzero().flatten().tolist() == [centre]
    # Edges of the same centre share its attention softmax, so they change too; other edges do not.
    edge_changed = (e_a - e_b).abs().amax(dim=1) > 1e-6
    same_centre = batch.edge_index[1] == centre
    assert edge_changed[same_centre].all() and not edge_changed[~same_centre].any()


def test_etgc_permutation_equivariant():
    torch.manual_seed(0)
    batch, x, e, _ = _embedded()
    layer = ETGC(H, 2, 4).eval()
    n, n_e = x.size(0), e.size(0)
    perm = torch.randperm(n)  # new node p holds old node perm[p]
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(n)
    eperm = torch.randperm(n_e)
    ei = inv[batch.edge_index[:, eperm]]
    with torch.no_grad():
        x_a, e_a = layer(x, batch.edge_index, e)
        x_b, e_b = layer(x[perm], ei, e[eperm])
    torch.testing.assert_close(x_b, x_a[perm], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(e_b, e_a[eperm], atol=1e-5, rtol=1e-5)


def test_etgc_block_line_graph_updates_and_ablation():
    torch.manual_seed(0)
    batch, x, e, t = _embedded()
    block = ETGCBlock(H, 2, 4)
    x2, e2, t2 = block(x, batch.edge_index, e, batch.lg_edge_index, t)
    assert x2.shape == x.shape and e2.shape == e.shape and t2.shape == t.shape
    (x2.sum() + e2.sum() + t2.sum()).backward()
    _all_grads(block)

    plain = ETGCBlock(H, 2, 4, use_line_graph=False)
    assert plain.line is None
    x3, e3, t3 = plain(x, batch.edge_index, e)
    assert t3 is None and x3.shape == x.shape
    with pytest.raises(ValueError, match="lg_edge_index"):
        block(x, batch.edge_index, e)


def test_etgc_block_line_features_reach_nodes():
    torch.manual_seed(0)
    batch, x, e, t = _embedded()
    block = ETGCBlock(H, 2, 4).eval()
    t2 = t.clone()
    t2[3] += 1.0
    with torch.no_grad():
        assert not torch.allclose(block(x, batch.edge_index, e, batch.lg_edge_index, t)[0],
                                  block(x, batch.edge_index, e, batch.lg_edge_index, t2)[0])


# ----------------------------------------------------------------------------------------- GwT
def _gwt_inputs(seed=0, sizes=(3, 5, 2)):
    batch, x, e, _ = _embedded(seed, sizes)
    return batch, x, e, batch.pe


def test_gwt_shapes_gradients_and_injection():
    torch.manual_seed(0)
    batch, x, e, pe = _gwt_inputs()
    layer = GwT(H, num_heads=2, head_dim=4, pe_dim=pe.size(1))
    out = layer(x, e, batch.edge_index, pe, batch.batch, batch.num_graphs)
    assert out.shape == x.shape
    out.square().sum().backward()
    _all_grads(layer)
    with torch.no_grad():  # eq. 11: both the PE and the incoming edge sum reach the output
        assert not torch.allclose(out, layer(x, e, batch.edge_index, pe + 1, batch.batch))
        e2 = e.clone()
        e2[0] += 1
        assert not torch.allclose(out, layer(x, e2, batch.edge_index, pe, batch.batch))
        layer(x, None, batch.edge_index, pe, batch.batch)  # edge term optional


def test_gwt_attention_is_masked_per_crystal():
    torch.manual_seed(0)
    batch, x, e, pe = _gwt_inputs(sizes=(3, 5, 2))
    layer = GwT(H, 2, 4, pe.size(1))  # train mode: LayerNorm only, so crystals must still not mix
    in_b = batch.batch == 1
    x2 = x.clone()
    x2[in_b] = torch.randn(int(in_b.sum()), H)
    out_a = layer(x, e, batch.edge_index, pe, batch.batch)
    out_b = layer(x2, e, batch.edge_index, pe, batch.batch)
    torch.testing.assert_close(out_a[~in_b], out_b[~in_b])
    assert not torch.allclose(out_a[in_b], out_b[in_b])
    # and a crystal alone gives the same result as inside the padded batch
    first = batch.batch == 0
    n0 = int(first.sum())
    keep = batch.edge_index[1] < n0
    alone = layer(x[first], e[keep], batch.edge_index[:, keep], pe[first], torch.zeros(n0, dtype=torch.long))
    torch.testing.assert_close(alone, out_a[first], atol=1e-5, rtol=1e-5)


def test_gwt_is_fully_connected_within_a_crystal():
    torch.manual_seed(0)
    batch, x, e, pe = _gwt_inputs(sizes=(6,))
    layer = GwT(H, 2, 4, pe.size(1)).eval()
    x2 = x.clone()
    x2[0] += 1.0
    with torch.no_grad():
        diff = (layer(x, e, batch.edge_index, pe, batch.batch) - layer(x2, e, batch.edge_index, pe, batch.batch))
    assert (diff.abs().amax(dim=1) > 1e-6).all()  # every atom sees atom 0


# -------------------------------------------------------------------------------- FFN and head
def test_row_batchnorm_single_row_in_training():
    bn = RowBatchNorm(4)
    out = bn(torch.randn(1, 4))
    assert out.shape == (1, 4) and torch.equal(bn.running_mean, torch.zeros(4))
    ffn = FeedForward(4, 2, norm="batch")
    assert ffn(torch.randn(1, 4)).shape == (1, 4)
    with pytest.raises(ValueError):
        FeedForward(4, 2, norm="group")


def test_head_mean_pool_and_ffnn_depth():
    head = MeanPoolHead(H, n_ffnn=2, n_targets=3)
    assert sum(isinstance(m, torch.nn.Softplus) for m in head.modules()) == 2
    x = torch.randn(5, H)
    batch = torch.tensor([0, 0, 1, 1, 1])
    out = head(x, batch, 2)
    assert out.shape == (2, 3)
    # the crystal feature is the mean: duplicating every atom changes nothing
    out2 = head(torch.cat([x, x]), torch.cat([batch, batch]), 2)
    torch.testing.assert_close(out, out2)


def test_etgc_and_gwt_gradcheck_float64():
    torch.manual_seed(0)
    edge_index = torch.tensor([[1, 2, 0, 2, 0, 1], [0, 0, 1, 1, 2, 2]])
    x = torch.randn(3, 4, dtype=torch.double, requires_grad=True)
    e = torch.randn(6, 4, dtype=torch.double, requires_grad=True)
    etgc = ETGC(4, num_heads=2, head_dim=2).double()
    assert torch.autograd.gradcheck(lambda a, b: etgc(a, edge_index, b), (x, e))
    gwt = GwT(4, 2, 2, pe_dim=3).double()
    pe = torch.randn(3, 3, dtype=torch.double)
    batch = torch.tensor([0, 0, 1])
    assert torch.autograd.gradcheck(lambda a, b: gwt(a, b, edge_index, pe, batch), (x, e))


def test_gwt_size_buckets_equal_one_padded_call(monkeypatch):
    """Unbalanced batches are attended in size buckets; outputs and gradients equal the single padded call."""
    import crystograph.nn.gwt as gwt_module

    torch.manual_seed(0)
    batch, x, e, pe = _gwt_inputs(sizes=(2, 17, 3, 2, 9))
    layer = GwT(H, 2, 4, pe.size(1))
    results = []
    for waste in (float("inf"), 0.0):  # inf: one padded call; 0: always buckets
        monkeypatch.setattr(gwt_module, "PAD_WASTE", waste)
        xi = x.clone().requires_grad_(True)
        out = layer(xi, e, batch.edge_index, pe, batch.batch, batch.num_graphs)
        out.square().sum().backward()
        results.append((out.detach(), xi.grad))
    torch.testing.assert_close(results[1][0], results[0][0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(results[1][1], results[0][1], atol=1e-5, rtol=1e-5)
