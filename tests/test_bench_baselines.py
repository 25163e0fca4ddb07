"""Baselines: CGCNN on our graphs (forward/backward, 8 Å cut-off) and the mean predictor."""

from __future__ import annotations

import numpy as np
import torch

from crystograph.bench.baselines import CGCNN, GaussianDistance, cgcnn_train_config, mean_predictor


def _graphs(*structures):
    from crystograph.graphs import build_graph

    out = []
    for i, s in enumerate(structures):
        g = build_graph(s)
        g.y = torch.tensor([[float(i)]])
        out.append(g)
    return out


def test_gaussian_expansion_matches_cgcnn():
    gdf = GaussianDistance()
    assert gdf.n_features == 41
    assert torch.allclose(gdf.centres[[0, -1]], torch.tensor([0.0, 8.0]))
    e = gdf(torch.tensor([2.0]))
    assert e.shape == (1, 41) and e[0, 10] == 1.0 and torch.isclose(e[0, 11], torch.exp(torch.tensor(-1.0)))


def test_cgcnn_forward_backward(rocksalt, fcc_primitive, simple_cubic):
    from torch_geometric.data import Batch

    torch.manual_seed(0)
    batch = Batch.from_data_list(_graphs(rocksalt, fcc_primitive, simple_cubic, rocksalt))
    model = CGCNN()
    out = model(batch)
    assert out.shape == (4, 1) and torch.isfinite(out).all()
    torch.nn.functional.l1_loss(out, batch.y).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters() if p.requires_grad)
    model.eval()  # BatchNorm on running statistics: each crystal's output is independent of the batch
    out_a = model(Batch.from_data_list(_graphs(rocksalt, fcc_primitive)))
    out_b = model(Batch.from_data_list(_graphs(fcc_primitive, rocksalt)))
    assert torch.allclose(out_a, out_b.flip(0), atol=1e-5)
    clf = CGCNN(n_targets=2, task="classification")
    assert clf(batch).shape == (4, 2)


def test_cgcnn_drops_edges_beyond_8_angstrom():
    from pymatgen.core import Lattice, Structure
    from torch_geometric.data import Batch

    far = Structure(Lattice.cubic(9.0), ["Na"], [[0, 0, 0]])  # every neighbour at >= 9 Å
    g = _graphs(far)[0]
    assert (g.edge_vec.norm(dim=1) > 8).all()
    model = CGCNN().eval()
    seen = {}
    conv = model.convs[0]

    def hook(module, args):
        seen["n_edges"] = args[1].size(1)  # edge_index [2, E'] after the 8 Å cut

    conv.register_forward_pre_hook(hook)
    out = model(Batch.from_data_list([g]))
    assert seen["n_edges"] == 0 and torch.isfinite(out).all()


def test_cgcnn_train_config_and_mean_predictor():
    cfg = cgcnn_train_config(3.0, seed=5)
    assert (cfg.optimizer, cfg.lr, cfg.batch_size, cfg.max_minutes, cfg.seed) == ("sgd", 0.01, 256, 3.0, 5)
    # the reference main.py recipe: MSE, SGD, weight decay 0, lr ÷ 10 at epoch 100 (MultiStepLR)
    assert (cfg.loss, cfg.weight_decay, cfg.lr_schedule, cfg.lr_milestones) == ("mse", 0.0, "multistep", [100])
    pred = mean_predictor(np.array([1.0, 2.0, 6.0]), 4)
    assert pred.shape == (4, 1) and np.allclose(pred, 3.0)


def test_mse_loss_option_is_what_the_module_minimises(rocksalt, fcc_primitive):
    from torch_geometric.data import Batch

    from crystograph.train.module import PropertyModule

    torch.manual_seed(0)
    batch = Batch.from_data_list(_graphs(rocksalt, fcc_primitive))
    model = CGCNN()
    module = PropertyModule(model, cgcnn_train_config(None), y_mean=[0.5], y_std=[2.0])
    loss, _ = module._loss(batch)
    raw = model(batch)
    assert torch.isclose(loss, torch.nn.functional.mse_loss(raw, (batch.y - 0.5) / 2.0))


def test_new_train_config_fields_round_trip_through_a_run_config():
    """A run's config.yaml (which now lists loss / lr_milestones) still works as `--config`; a CGCNN recipe in it
    cannot be smuggled into `train`."""
    import dataclasses

    from crystograph.cli_config import _from_run_config
    from crystograph.config import TrainConfig

    errors: list[str] = []
    out = _from_run_config(dataclasses.asdict(TrainConfig()), errors)
    assert errors == [] and "loss" not in out and "lr_milestones" not in out
    _from_run_config(dataclasses.asdict(cgcnn_train_config(None)), errors)
    assert any("loss" in e for e in errors) and any("lr_milestones" in e for e in errors)
