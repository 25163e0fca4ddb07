"""The CrysToGraph model: layouts, invariances, presets, checkpoints, pretrained atom embeddings."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from safetensors.torch import load_file, save_file
from test_nn_synthetic import random_batch, random_crystal, small_graph_config, synthetic_graph
from torch_geometric.data import Batch

from crystograph.config import ModelConfig
from crystograph.errors import InputError
from crystograph.nn import CrysToGraph

LAYOUTS = ["stacked", "gwt_first", "parallel", "no_gwt", "gwt_only", "no_line_graph"]
SIZES = (3, 5, 2)


def tiny_config(**overrides) -> ModelConfig:
    base = ModelConfig(hidden_dim=16, num_heads=2, head_dim=8, n_etgc=2, n_gwt=2, graph=small_graph_config())
    return dataclasses.replace(base, **overrides)


def make(layout="stacked", seed=0, **overrides) -> CrysToGraph:
    torch.manual_seed(seed)
    return CrysToGraph(tiny_config(layout=layout, **overrides))


def batch_for(model: CrysToGraph, sizes=SIZES, seed=0) -> Batch:
    return random_batch(sizes, seed=seed, cfg=model.config.graph)


def warm_up(model: CrysToGraph, batch: Batch) -> CrysToGraph:
    """One train-mode pass so BatchNorm running statistics are not the identity."""
    model.train()
    with torch.no_grad():
        model(batch)
    return model.eval()


@pytest.mark.parametrize("layout", LAYOUTS)
def test_layout_forward_backward_all_parameters_get_gradients(layout):
    model = make(layout)
    batch = batch_for(model)
    out = model.train()(batch)
    assert out.shape == (len(SIZES), 1) and torch.isfinite(out).all()
    out.square().sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, f"{layout}: parameters without gradient: {missing}"
    assert model.encode(batch).shape == (batch.num_nodes, 16)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_moving_one_neighbour_changes_the_prediction(layout):
    model = make(layout)
    batch = batch_for(model)
    warm_up(model, batch)
    # One edge feature of crystal 1 changes (its neighbour moved).
    moved = batch.clone()
    edge = int((moved.batch[moved.edge_index[1]] == 1).nonzero()[0])
    moved.edge_attr[edge] = moved.edge_attr[edge].roll(1)
    with torch.no_grad():
        a, b = model(batch), model(moved)
    assert not torch.allclose(a[1], b[1])
    torch.testing.assert_close(a[[0, 2]], b[[0, 2]])  # eval mode: crystals are independent

    # A real displacement, rebuilt through the synthetic graph builder, changes it too.
    cfg = model.config.graph
    g = random_crystal(SIZES[1], seed=1, cfg=cfg)
    lattice = torch.eye(3, dtype=torch.double) * 20
    pos = g.pos.double().clone()
    pos[0] += torch.tensor([0.05, -0.03, 0.02], dtype=torch.double)
    g1 = synthetic_graph(g.pos.double(), g.z, lattice, pe=g.pe, cfg=cfg)
    g2 = synthetic_graph(pos, g.z, lattice, pe=g.pe, cfg=cfg)
    with torch.no_grad():
        assert not torch.allclose(model(Batch.from_data_list([g1])), model(Batch.from_data_list([g2])))


@pytest.mark.parametrize("layout", ["stacked", "gwt_first", "parallel", "no_gwt"])
def test_line_graph_features_matter(layout):
    model = make(layout)
    batch = batch_for(model)
    warm_up(model, batch)
    moved = batch.clone()
    moved.lg_attr[0] = moved.lg_attr[0].flip(0)
    with torch.no_grad():
        assert not torch.allclose(model(batch), model(moved))


def test_no_line_graph_layout_needs_no_lg_fields():
    model = make("no_line_graph")
    assert model.line_embed is None and all(block.line is None for block in model.etgc)
    graphs = [random_crystal(n, i, model.config.graph) for i, n in enumerate(SIZES)]
    for g in graphs:
        del g.lg_edge_index, g.lg_attr
    out = model(Batch.from_data_list(graphs))
    assert out.shape == (3, 1)
    with pytest.raises(ValueError, match="lg_"):
        make("stacked")(Batch.from_data_list(graphs))


@pytest.mark.parametrize("layout", LAYOUTS)
def test_batch_members_are_independent_in_eval_mode(layout):
    model = make(layout)
    batch = batch_for(model)
    warm_up(model, batch)
    other = batch_for(model, sizes=(3, 7, 2), seed=0)  # crystal B replaced by a different one
    other_list = other.to_data_list()
    other_list[1] = random_crystal(7, seed=42, cfg=model.config.graph)
    other = Batch.from_data_list(other_list)
    with torch.no_grad():
        a, b = model(batch), model(other)
    torch.testing.assert_close(a[[0, 2]], b[[0, 2]], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_atom_permutation_leaves_prediction_unchanged(layout):
    model = make(layout)
    cfg = model.config.graph
    g = random_crystal(6, seed=5, cfg=cfg)
    lattice = torch.diag(torch.tensor([7.0, 7.7, 6.6], dtype=torch.double))
    perm = torch.tensor([3, 0, 5, 1, 4, 2])
    g1 = synthetic_graph(g.pos.double(), g.z, lattice, pe=g.pe, cfg=cfg)
    g2 = synthetic_graph(g.pos.double()[perm], g.z[perm], lattice, pe=g.pe[perm], cfg=cfg)
    other = random_crystal(4, seed=9, cfg=cfg)
    warm_up(model, Batch.from_data_list([g1, other]))
    with torch.no_grad():
        a = model(Batch.from_data_list([g1, other]))
        b = model(Batch.from_data_list([other, g2]))
    torch.testing.assert_close(a[0], b[1], atol=1e-5, rtol=1e-5)


def test_classification_returns_logits():
    batch = batch_for(make())
    reg, cls = make(task="regression").eval(), make(task="classification").eval()
    with torch.no_grad():
        logits = cls(batch)
        assert logits.shape == (3, 1)
        torch.testing.assert_close(logits, reg(batch))  # same network: raw logits, no sigmoid


def test_single_graph_and_single_atom_training():
    model = make()
    g = random_crystal(1, seed=0, cfg=model.config.graph)  # one atom: BatchNorm sees one row
    assert model.train()(g).shape == (1, 1)
    assert model(Batch.from_data_list([g])).shape == (1, 1)


@pytest.mark.parametrize("preset", ["small", "paper"])
def test_presets_build_and_count_parameters(preset):
    model = CrysToGraph(ModelConfig.preset(preset))
    n = model.num_parameters()
    print(f"{preset}: {n:,} parameters")
    assert n == sum(p.numel() for p in model.parameters())
    assert (100_000 < n < 1_000_000) if preset == "small" else (3_000_000 < n < 20_000_000)


@pytest.mark.parametrize("preset", ["small", "paper"])
def test_presets_run_on_default_graph_config(preset):
    torch.manual_seed(0)
    model = CrysToGraph(ModelConfig.preset(preset))
    out = model(random_batch((2, 3), seed=0, cfg=model.config.graph))
    assert out.shape == (2, 1)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_state_dict_roundtrip_via_safetensors(tmp_path):
    model = make("parallel")
    batch = batch_for(model)
    warm_up(model, batch)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp_path / "w.safetensors"))
    fresh = make("parallel", seed=123)
    fresh.load_state_dict(load_file(str(tmp_path / "w.safetensors")))
    fresh.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(batch), fresh(batch), atol=0, rtol=0)


def _write_table(path, rows=119, dim=5):
    table = torch.randn(rows, dim, generator=torch.Generator().manual_seed(0))
    save_file({"atom_embedding": table}, str(path))
    return table


def test_pretrained_atom_embedding(tmp_path):
    path = tmp_path / "atoms.safetensors"
    table = _write_table(path)
    model = make(atom_embedding_path=str(path))
    assert torch.equal(model.atom_embedding, table)
    assert model.atom_embed.in_features == 92 + 5
    assert "atom_embedding" in model.state_dict()
    assert all(p is not model.atom_embedding for p in model.parameters())  # frozen buffer
    batch = batch_for(model)
    warm_up(model, batch)
    with torch.no_grad():
        out = model(batch)
        changed = batch.clone()
        changed.z = changed.z.clone()
        changed.z[0] = (changed.z[0] % 90) + 1 if changed.z[0] != 1 else 2
        assert not torch.allclose(out[0], model(changed)[0])  # z is read through the table

    # load_model_dir builds the model without the path: the table comes from the weights.
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    fresh = make(atom_embedding_path=None, seed=7)
    fresh.load_state_dict(state)
    fresh.eval()
    assert fresh.atom_embed.in_features == 97
    with torch.no_grad():
        torch.testing.assert_close(fresh(batch), out, atol=0, rtol=0)


def test_bad_atom_embedding_files(tmp_path):
    with pytest.raises(InputError, match="not found"):
        make(atom_embedding_path=str(tmp_path / "missing.safetensors"))
    save_file({"other": torch.zeros(119, 3)}, str(tmp_path / "wrong_key.safetensors"))
    with pytest.raises(InputError, match="atom_embedding"):
        make(atom_embedding_path=str(tmp_path / "wrong_key.safetensors"))
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(InputError):
        make(atom_embedding_path=str(tmp_path / "junk.safetensors"))
    _write_table(tmp_path / "short.safetensors", rows=10)
    model = make(atom_embedding_path=str(tmp_path / "short.safetensors"))
    batch = batch_for(model)
    batch.z[:] = 50
    with pytest.raises(ValueError, match="outside the atom embedding table"):
        model(batch)


def test_input_width_and_layout_errors():
    model = make()
    batch = batch_for(model)
    batch.edge_attr = batch.edge_attr[:, :-1]
    with pytest.raises(ValueError, match="edge_attr"):
        model(batch)
    with pytest.raises(ValueError, match="layout"):
        CrysToGraph(tiny_config(layout="sideways"))
    with pytest.raises(ValueError, match="no layers"):
        CrysToGraph(tiny_config(layout="parallel", n_gwt=0))


def _build_graph():
    from crystograph.graphs import build_graph

    return build_graph


@pytest.mark.parametrize("layout", LAYOUTS)
def test_real_structures(layout, rocksalt, fcc_primitive):
    build_graph = _build_graph()
    torch.manual_seed(0)
    model = CrysToGraph(ModelConfig.preset("small", layout=layout))
    data = [build_graph(s) for s in (rocksalt, fcc_primitive)]
    out = model.train()(Batch.from_data_list(data))
    assert out.shape == (2, 1)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(Batch.from_data_list(data))[1:], model(Batch.from_data_list(data[1:])))


def test_real_structure_permutation_and_displacement(rocksalt):
    from pymatgen.core import Structure

    build_graph = _build_graph()
    torch.manual_seed(0)
    model = CrysToGraph(ModelConfig.preset("small"))
    order = [5, 2, 7, 0, 3, 6, 1, 4]
    shuffled = Structure.from_sites([rocksalt[i] for i in order])
    moved = rocksalt.copy()
    moved.translate_sites([0], [0.02, -0.01, 0.015], frac_coords=True)
    warm_up(model, Batch.from_data_list([build_graph(rocksalt), build_graph(moved)]))
    with torch.no_grad():
        base = model(build_graph(rocksalt))
        torch.testing.assert_close(model(build_graph(shuffled)), base, atol=1e-5, rtol=1e-5)
        assert not torch.allclose(model(build_graph(moved)), base)


def test_dropout_and_float64():
    model = make(dropout=0.2)
    batch = batch_for(model)
    out = model.train()(batch)
    out.sum().backward()
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(batch), model(batch), atol=0, rtol=0)
    double = make().double()
    assert double(batch).dtype == torch.float64


@pytest.mark.parametrize("layout", ["stacked", "parallel"])
def test_bf16_precision_close_to_fp32_and_trains(layout):
    """bf16 autocast: the same weights give outputs within bf16 rounding of fp32, in fp32, with gradients."""
    fp32 = warm_up(make(layout), batch_for(make(layout)))
    bf16 = make(layout, precision="bf16")
    bf16.load_state_dict(fp32.state_dict())
    bf16.eval()
    batch = batch_for(fp32)
    with torch.no_grad():
        a, b = fp32(batch), bf16(batch)
    assert b.dtype == torch.float32
    assert not torch.equal(a, b)  # the products really ran in bfloat16
    torch.testing.assert_close(b, a, atol=0.05 * float(a.abs().max()), rtol=0.0)
    bf16.train()
    bf16(batch).sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in bf16.parameters() if p.requires_grad)


def test_bf16_keeps_line_features_in_bf16_and_atom_edge_streams_in_fp32():
    model = make("stacked", precision="bf16").eval()
    seen = {}
    line, direct = model.etgc[0].line, model.etgc[0].direct
    line.register_forward_hook(lambda m, inp, out: seen.update(line_in=inp[2].dtype, line_out=out[1].dtype))
    direct.register_forward_hook(
        lambda m, inp, out: seen.update(x=inp[0].dtype, e=inp[2].dtype, x_out=out[0].dtype, e_out=out[1].dtype))
    with torch.no_grad():
        model(batch_for(model))
    assert seen["line_in"] == seen["line_out"] == torch.bfloat16
    assert seen["x"] == seen["e"] == seen["x_out"] == seen["e_out"] == torch.float32


def test_bad_precision_is_refused():
    with pytest.raises(ValueError, match="precision"):
        ModelConfig(precision="fp16")
