"""Masks drawn per (run seed, epoch, graph index), so each epoch sees new masks and reruns repeat them.

Each pretraining graph is slimmed to what the model reads and carries its dataset index `idx`.
`mask_batch` draws the masks of a collated batch graph by graph, each from its own generator seeded
with `mask_seed(seed, epoch, idx)`: the mask of a graph depends only on (seed, epoch, idx), not on the
batch it landed in, the shuffle order or the number of loader workers. The Lightning module calls it
with its own `current_epoch` for training (new masks every epoch, also right after a resume, when the
epoch counter is restored after the loaders have already started) and with `FIXED_EPOCH` for
validation (one fixed mask per graph, so validation accuracy is comparable from epoch to epoch).
"""

from __future__ import annotations

import torch
from torch_geometric.data import Data

from crystograph.pretrain.masking import MASK_RATE, MaskedAtoms, mask_atoms, mask_seed

FIXED_EPOCH = -1


def slim_graph(graph, index: int) -> Data:
    """Only what the masked-atom model reads: z [n], edge_index [2, E], edge_vec [E, 3]; plus idx [1]."""
    return Data(z=graph.z.long(), edge_index=graph.edge_index.long(), edge_vec=graph.edge_vec.float(),
                idx=torch.tensor([index], dtype=torch.long), num_nodes=int(graph.z.numel()))


def mask_graph(z: torch.Tensor, seed: int, epoch: int, index: int, rate: float = MASK_RATE) -> MaskedAtoms:
    """The mask of graph `index` at `epoch` (a pure function of its arguments)."""
    generator = torch.Generator().manual_seed(mask_seed(seed, epoch, index))
    return mask_atoms(z.cpu(), generator, rate=rate)


def mask_batch(batch, seed: int, epoch: int, rate: float = MASK_RATE) -> MaskedAtoms:
    """Tokens [n] and labels [n] of a collated batch (needs `z`, `ptr`, `idx`), on the batch's device."""
    z = batch.z  # [n]
    ptr = batch.ptr.tolist()  # [B + 1]
    idx = batch.idx.reshape(-1).tolist()  # [B]
    tokens, labels = [], []
    for g, index in enumerate(idx):
        masked = mask_graph(z[ptr[g]:ptr[g + 1]], seed, epoch, index, rate)
        tokens.append(masked.tokens)
        labels.append(masked.labels)
    return MaskedAtoms(torch.cat(tokens).to(z.device), torch.cat(labels).to(z.device))
