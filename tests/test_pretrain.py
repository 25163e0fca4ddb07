"""Masked-atom pretraining (paper A.1): masking statistics, small-cell expansion, per-epoch re-masking,
the CGCNN masked-atom model, and a short pretraining run on real structures that beats the
majority-class baseline and exports a loadable atom-embedding table."""

from __future__ import annotations

import gzip
import json
import warnings
from types import SimpleNamespace

import pytest
import torch
from pymatgen.core import Lattice, Structure
from torch_geometric.data import Batch

from tests.conftest import shared_file
from crystograph.config import PretrainConfig
from crystograph.pretrain import (
    IGNORE_INDEX,
    MASK_TOKEN,
    N_TOKENS,
    MaskedAtomCGCNN,
    MaskedAtomModule,
    expand_small_cell,
    mask_atoms,
    n_masked,
    pretrain,
)
from crystograph.pretrain.dataset import FIXED_EPOCH, mask_batch, mask_graph, slim_graph
from crystograph.pretrain.masking import mask_seed


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# -- masking ------------------------------------------------------------------------------------------
def test_mask_proportions_on_a_large_graph():
    n = 40_000
    z = torch.randint(1, 101, (n,), generator=_gen(1))
    masked = mask_atoms(z, _gen(0))
    sel = masked.labels != IGNORE_INDEX
    assert int(sel.sum()) == n_masked(n) == 6000  # 15 %
    assert torch.equal(masked.labels[sel], z[sel])
    assert torch.equal(masked.tokens[~sel], z[~sel])  # unchosen atoms are untouched
    tok = masked.tokens[sel]
    frac_mask = (tok == MASK_TOKEN).float().mean().item()
    frac_same = (tok == z[sel]).float().mean().item()
    frac_random = 1.0 - frac_mask - frac_same
    # 3σ of a binomial proportion over 6000 draws is ≈ 0.016 (0.8) and ≈ 0.012 (0.1).
    assert abs(frac_mask - 0.8) < 0.02
    assert abs(frac_same - 0.1) < 0.015  # a random replacement hits the original Z 1 time in 118
    assert abs(frac_random - 0.1) < 0.015
    random_tokens = tok[(tok != MASK_TOKEN) & (tok != z[sel])]
    assert random_tokens.min() >= 1 and random_tokens.max() <= 118
    assert random_tokens.unique().numel() > 100  # drawn over the whole table, not just this graph's elements

    again = mask_atoms(z, _gen(0))
    assert torch.equal(again.tokens, masked.tokens) and torch.equal(again.labels, masked.labels)
    other = mask_atoms(z, _gen(1))
    assert not torch.equal(other.labels, masked.labels)


@pytest.mark.parametrize(("n", "m"), [(1, 1), (6, 1), (7, 1), (13, 1), (14, 2), (20, 3), (100, 15), (0, 0)])
def test_n_masked_keeps_at_most_15_percent_once_n_is_at_least_7(n, m):
    assert n_masked(n) == m
    if n >= 7:
        assert m / n <= 0.15


def test_mask_seed_separates_seed_epoch_and_index():
    seeds = {mask_seed(s, e, i) for s in range(3) for e in (-2, -1, 0, 1, 2) for i in range(50)}
    assert len(seeds) == 3 * 5 * 50
    assert mask_seed(0, 3, 7) == mask_seed(0, 3, 7)


# -- small cells --------------------------------------------------------------------------------------
def test_one_atom_cell_is_expanded_in_three_dimensions(simple_cubic):
    big = expand_small_cell(simple_cubic)
    assert len(simple_cubic) == 1  # the input is not modified
    assert len(big) >= 7 and len(big) == 8
    assert big.lattice.abc == pytest.approx(tuple(2 * a for a in simple_cubic.lattice.abc))
    assert big.volume == pytest.approx(8 * simple_cubic.volume)
    assert big.composition.reduced_formula == simple_cubic.composition.reduced_formula


def test_expansion_keeps_composition_ratios(rocksalt):
    prim = rocksalt.get_primitive_structure()  # Na1 Cl1
    assert len(prim) == 2
    big = expand_small_cell(prim)
    assert len(big) == 16
    assert big.composition["Na"] == big.composition["Cl"] == 8
    six = Structure(Lattice.cubic(6.0), ["Li"] * 2 + ["O"] * 4, [[0, 0, 0], [0.5, 0.5, 0.5], [0.25, 0, 0],
                                                               [0.75, 0, 0], [0, 0.25, 0.5], [0, 0.75, 0.5]])
    big6 = expand_small_cell(six)
    assert len(big6) == 48 and big6.composition["O"] == 2 * big6.composition["Li"]
    assert expand_small_cell(rocksalt) is rocksalt  # 8 atoms: already large enough


# -- per-epoch re-masking -----------------------------------------------------------------------------
def _toy_graph(n: int, index: int, seed: int):
    z = torch.randint(1, 90, (n,), generator=_gen(seed))
    src = torch.arange(n).repeat_interleave(2)
    dst = torch.stack([(torch.arange(n) + 1) % n, (torch.arange(n) - 1) % n], 1).reshape(-1)
    vec = torch.randn(src.numel(), 3, generator=_gen(seed + 1))
    g = SimpleNamespace(z=z, edge_index=torch.stack([src, dst]), edge_vec=vec)
    return slim_graph(g, index)


def test_masks_depend_on_seed_epoch_and_graph_not_on_batching():
    graphs = [_toy_graph(n, i, i) for i, n in enumerate([7, 30, 12, 50])]
    batch = Batch.from_data_list(graphs)
    m0 = mask_batch(batch, seed=0, epoch=0)
    m0_again = mask_batch(Batch.from_data_list(graphs), seed=0, epoch=0)
    assert torch.equal(m0.tokens, m0_again.tokens)
    # graph 2 alone, or in another batch order, gets the same mask
    alone = mask_batch(Batch.from_data_list([graphs[2]]), seed=0, epoch=0)
    ptr = batch.ptr
    assert torch.equal(alone.labels, m0.labels[ptr[2]:ptr[3]])
    shuffled = mask_batch(Batch.from_data_list([graphs[3], graphs[2]]), seed=0, epoch=0)
    assert torch.equal(shuffled.labels[50:], m0.labels[ptr[2]:ptr[3]])
    assert torch.equal(alone.labels, mask_graph(graphs[2].z, 0, 0, 2).labels)
    # every graph has its 15 % (at least one) chosen
    for g in range(4):
        labels = m0.labels[ptr[g]:ptr[g + 1]]
        assert int((labels != IGNORE_INDEX).sum()) == n_masked(graphs[g].num_nodes)
    # new epoch → new masks; other seed → other masks; validation masks are fixed
    assert not torch.equal(mask_batch(batch, seed=0, epoch=1).labels, m0.labels)
    assert not torch.equal(mask_batch(batch, seed=1, epoch=0).labels, m0.labels)
    assert torch.equal(mask_batch(batch, 0, FIXED_EPOCH).labels, mask_batch(batch, 0, FIXED_EPOCH).labels)


def test_module_remasks_every_training_epoch_and_keeps_validation_masks():
    graphs = [_toy_graph(40, i, i) for i in range(3)]
    module = MaskedAtomModule(MaskedAtomCGCNN(embed_dim=8, n_conv=1, n_rbf=4), seed=0)
    batch = Batch.from_data_list(graphs)
    a = module.mask(batch.clone(), 0).labels
    b = module.mask(batch.clone(), 1).labels
    v = module.mask(batch.clone(), FIXED_EPOCH).labels
    assert not torch.equal(a, b) and not torch.equal(a, v)


# -- the model ----------------------------------------------------------------------------------------
def test_model_gives_logits_over_119_classes_and_ignores_cgcnn_features(rocksalt):
    from crystograph.graphs import build_graph

    graph = build_graph(rocksalt)
    model = MaskedAtomCGCNN(embed_dim=16, n_conv=2).eval()
    batch = Batch.from_data_list([slim_graph(graph, 0), slim_graph(graph, 1)])
    assert "x" not in batch  # the 92-d features would reveal the masked elements
    batch.tokens = batch.z.clone()
    logits = model(batch)
    assert logits.shape == (16, N_TOKENS)
    assert model.atom_embedding.shape == (N_TOKENS, 16)
    # permutation equivariance within a structure: same element, same site type → same logits
    assert torch.allclose(logits[:8], logits[8:], atol=1e-5)
    batch.tokens[0] = MASK_TOKEN
    assert not torch.allclose(model(batch)[0], logits[0])


def test_lr_decays_tenfold_at_the_decay_epoch():
    module = MaskedAtomModule(MaskedAtomCGCNN(embed_dim=8, n_conv=1, n_rbf=4), lr=1e-3, decay_epoch=3)
    opt_cfg = module.configure_optimizers()
    opt, sched = opt_cfg["optimizer"], opt_cfg["lr_scheduler"]["scheduler"]
    lrs = []
    for _ in range(5):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([1e-3, 1e-3, 1e-3, 1e-4, 1e-4])
    assert bool(module.lr_decayed)  # kept in the state dict, so a resumed run stays decayed
    assert "lr_decayed" in module.state_dict()


# -- a short pretraining run on real structures -------------------------------------------------------
def _supercon_records(n: int):
    import pandas as pd

    path = shared_file("supercon/supercon.csv.gz")
    with gzip.open(path, "rt") as fh:
        frame = pd.read_csv(fh, nrows=n)
    records = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "fractional coordinates rounded" notes from the CIF parser
        for row in frame.itertuples():
            structure = Structure.from_str(row.cif, fmt="cif")
            records.append(SimpleNamespace(id=row.material_id, structure=structure, targets={},
                                           source=f"supercon.csv.gz:{row.material_id}"))
    return records


@pytest.mark.shared_data
@pytest.mark.slow
def test_pretraining_beats_majority_baseline_and_exports_embeddings(tmp_path):
    from safetensors.torch import load_file

    # 80 structures, a quarter held out: with 40, the 10 held-out crystals are mostly made of elements that
    # never occur in the 30 training crystals, and both accuracy and baseline are ~0 (a data-size limit).
    records = _supercon_records(80)
    assert any(len(r.structure) < 7 for r in records)  # small cells are exercised
    disordered = Structure(Lattice.cubic(3.0), [{"Fe": 0.5, "Co": 0.5}], [[0, 0, 0]])
    records.append(SimpleNamespace(id="bad", structure=disordered, targets={}, source="test:disordered"))

    result = pretrain(records, tmp_path, embed_dim=32, epochs=30, batch_size=8, lr=3e-3, seed=0, progress=False,
                      val_fraction=0.25, accelerator="cpu")
    assert result.resumed_from_epoch is None

    assert [s.source for s in result.skipped] == ["test:disordered"]
    assert (result.n_train, result.n_val) == (60, 20)
    assert result.epochs == 30
    assert result.accuracy > result.baseline_accuracy + 0.05, (result.accuracy, result.baseline_accuracy)
    # also where the element is hidden behind the MASK token: learned from the neighbourhood, not copied
    assert result.accuracy_mask_token > result.baseline_accuracy + 0.05, result

    tensors = load_file(str(tmp_path / "atom_embeddings.safetensors"))
    assert list(tensors) == ["atom_embedding"]
    table = tensors["atom_embedding"]
    assert table.shape == (119, 32) and table.dtype == torch.float32 and torch.isfinite(table).all()
    # what pretraining learned dominates the rows of the elements it saw; the others keep their small initial values
    seen = sorted({int(z) for r in records[:-1] for z in r.structure.atomic_numbers})
    unseen = sorted(set(range(1, 119)) - set(seen))
    assert table[unseen].std() == pytest.approx(PretrainConfig.embed_init_std, rel=0.2)
    assert table[seen].std() > 1.25 * table[unseen].std()  # at an N(0, 1) start both stay at ~1

    summary = json.loads((tmp_path / "pretrain.json").read_text())
    assert summary["accuracy"] == pytest.approx(result.accuracy)
    assert summary["n_skipped"] == 1 and summary["epochs"] == 30
    assert summary["config"]["lr_decay_epoch"] == 12  # 20 of 50, scaled to 30 epochs
    assert summary["config"]["embed_init_std"] == PretrainConfig.embed_init_std
    assert (tmp_path / "pretrain_loss.png").stat().st_size > 1000
    assert (tmp_path / "checkpoints" / "last.ckpt").exists()

    # the table plugs into CrysToGraph (concatenated with the 92-d CGCNN features)
    from crystograph.config import ModelConfig
    from crystograph.graphs import build_graph
    from crystograph.nn import CrysToGraph

    model = CrysToGraph(ModelConfig.preset("small", atom_embedding_path=str(result.embedding_path))).eval()
    batch = Batch.from_data_list([build_graph(records[0].structure)])
    with torch.no_grad():
        assert torch.isfinite(model(batch)).all()

    # a rerun resumes from last.ckpt (the latest epoch, not the best one): two more epochs, not thirty
    resumed = pretrain(records, tmp_path, embed_dim=32, epochs=32, batch_size=8, lr=3e-3, seed=0, progress=False,
                       val_fraction=0.25, accelerator="cpu")
    assert resumed.resumed_from_epoch == 30 and resumed.epochs == 32
    import pandas as pd

    epochs_logged = pd.read_csv(tmp_path / "metrics.csv")[["epoch", "train_loss"]].dropna()["epoch"]
    assert sorted(epochs_logged.astype(int).unique()) == list(range(32))  # the earlier run's rows are kept
