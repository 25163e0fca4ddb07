"""Masked-atom corruption for pretraining atom embeddings (paper A.1).

Per graph with n atoms, m = max(1, floor(rate · n)) atoms are chosen uniformly without replacement
(rate = 0.15). Each chosen atom is, independently (BERT-style),
  - replaced by the MASK token (token 0)        with probability 0.8,
  - replaced by a uniformly random element Z'    with probability 0.1 (Z' ∈ 1..118, may equal Z),
  - left unchanged                               with probability 0.1.
The model input is the element-token tensor (0 = MASK, 1..118 = Z); the labels are the original Z at the
chosen positions and `IGNORE_INDEX` (-100) elsewhere, so `F.cross_entropy(logits, labels)` scores only the
chosen atoms.

A cell with n < 7 atoms cannot keep the masking rate at or below 15 % with at least one masked atom
(1/6 > 0.15 ≥ 1/7), so it is expanded in all three dimensions first (`expand_small_cell`, 2×2×2 until
n ≥ 7). A periodic 2×2×2 supercell describes the same crystal, so the kNN neighbourhoods are unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

MASK_TOKEN = 0
N_ELEMENTS = 118  # tokens 1..118 are atomic numbers
N_TOKENS = N_ELEMENTS + 1  # 119 = MASK + elements; the embedding table is indexed by Z directly
IGNORE_INDEX = -100
MASK_RATE = 0.15
MIN_ATOMS = 7  # smallest n with floor(0.15 · n) >= 1


@dataclass
class MaskedAtoms:
    tokens: torch.Tensor  # [n] long, model input: 0 = MASK, else an atomic number
    labels: torch.Tensor  # [n] long, original Z at chosen positions, IGNORE_INDEX elsewhere


def n_masked(n_atoms: int, rate: float = MASK_RATE) -> int:
    """How many atoms of an n-atom graph are chosen: max(1, floor(rate · n)) (0 for an empty graph)."""
    if n_atoms <= 0:
        return 0
    return min(n_atoms, max(1, int(math.floor(rate * n_atoms + 1e-9))))


def mask_atoms(
    z: torch.Tensor,
    generator: torch.Generator | None = None,
    *,
    rate: float = MASK_RATE,
    mask_prob: float = 0.8,
    random_prob: float = 0.1,
) -> MaskedAtoms:
    """Corrupt one graph's atomic numbers `z` [n] (long, 1..118). Deterministic for a seeded generator."""
    z = z.long().reshape(-1)  # [n]
    n = z.numel()
    tokens = z.clone()
    labels = torch.full_like(z, IGNORE_INDEX)
    m = n_masked(n, rate)
    if m == 0:
        return MaskedAtoms(tokens, labels)
    chosen = torch.randperm(n, generator=generator)[:m]  # [m]
    labels[chosen] = z[chosen]
    u = torch.rand(m, generator=generator)  # [m]
    random_z = torch.randint(1, N_ELEMENTS + 1, (m,), generator=generator)  # [m]
    to_mask = u < mask_prob
    to_random = (u >= mask_prob) & (u < mask_prob + random_prob)
    tokens[chosen[to_mask]] = MASK_TOKEN
    tokens[chosen[to_random]] = random_z[to_random]
    return MaskedAtoms(tokens, labels)


def mask_seed(seed: int, epoch: int, index: int) -> int:
    """A well-mixed 63-bit seed for (run seed, epoch, sample index); epoch < 0 is used for fixed masks."""
    entropy = [int(seed) & 0xFFFFFFFF, int(epoch) + (1 << 20), int(index)]
    return int(np.random.SeedSequence(entropy).generate_state(1, dtype=np.uint64)[0]) >> 1


def expand_small_cell(structure, min_atoms: int = MIN_ATOMS):
    """A copy of `structure` repeated 2×2×2 (again and again) until it has at least `min_atoms` sites.

    Cells that are already large enough are returned unchanged (the same object). Composition ratios are
    kept: every site is repeated the same number of times.
    """
    if len(structure) == 0:
        raise ValueError("cannot expand an empty structure")
    if len(structure) >= min_atoms:
        return structure
    expanded = structure.copy()
    while len(expanded) < min_atoms:
        expanded.make_supercell([2, 2, 2])
    return expanded
