"""Masked-atom pretraining of atom embeddings (paper A.1): `pretrain(records, out_dir) -> PretrainResult`."""

from crystograph.pretrain.masking import (
    IGNORE_INDEX,
    MASK_TOKEN,
    MIN_ATOMS,
    N_TOKENS,
    MaskedAtoms,
    expand_small_cell,
    mask_atoms,
    n_masked,
)
from crystograph.pretrain.model import MaskedAtomCGCNN, MaskedAtomModule
from crystograph.pretrain.run import EMBEDDING_FILE, EMBEDDING_KEY, PretrainResult, pretrain

__all__ = [
    "EMBEDDING_FILE",
    "EMBEDDING_KEY",
    "IGNORE_INDEX",
    "MASK_TOKEN",
    "MIN_ATOMS",
    "N_TOKENS",
    "MaskedAtomCGCNN",
    "MaskedAtomModule",
    "MaskedAtoms",
    "PretrainResult",
    "expand_small_cell",
    "mask_atoms",
    "n_masked",
    "pretrain",
]
