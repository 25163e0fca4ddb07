"""2-D PCA of learned atom embeddings, one point per element, coloured by block (s/p/d/f), labelled by symbol.

    .venv/bin/python benchmarks/embedding_projection.py src/crystograph/embeddings/default.safetensors \
        --out benchmarks/results/plots/atom_embeddings_pca.png

Only the elements the table marks as covered ("covered" mask, see crystograph.embeddings) are drawn; a table
without a mask draws Z = 1..100. The axes give each component's share of the variance of the drawn rows.

--stats JSON also says how chemical the table's neighbourhoods are: for each drawn element, its nearest other
element by cosine similarity in the full d-dimensional table; the share of those pairs in the same block and in
the same group, against the share expected by chance (the same labels shuffled over the elements, 1,000 times).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from _common import REPO_ROOT

BLOCK_COLOURS = {"s": "tab:blue", "p": "tab:orange", "d": "tab:green", "f": "tab:purple"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("embeddings", help="a .safetensors table, or 'default'")
    p.add_argument("--out", type=Path,
                   default=REPO_ROOT / "benchmarks" / "results" / "plots" / "atom_embeddings_pca.png")
    p.add_argument("--stats", type=Path, default=None, help="write the neighbour statistics JSON here")
    return p.parse_args(argv)


def element_rows(table) -> list[int]:
    """Atomic numbers drawn: the covered rows (Z >= 1), or 1..100 without a mask."""
    n = table.table.size(0)
    if table.covered is None:
        return list(range(1, min(n, 101)))
    return [z for z in range(1, n) if bool(table.covered[z])]


def project(vectors):
    """(2-D coordinates [n, 2], explained variance ratios [2]) of the rows of `vectors` [n, d]."""
    from sklearn.decomposition import PCA

    pca = PCA(n_components=2, random_state=0)
    coords = pca.fit_transform(vectors)
    return coords, pca.explained_variance_ratio_


def neighbour_agreement(vectors, labels: list, draws: int = 1000, seed: int = 0) -> dict:
    """Share of elements whose nearest other element (cosine, full dimension) has the same label, and that share
    with the labels shuffled (mean and 95th percentile over `draws`)."""
    import numpy as np

    v = np.asarray(vectors, dtype=float)
    v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    sim = v @ v.T
    np.fill_diagonal(sim, -np.inf)
    nearest = sim.argmax(axis=1)
    lab = np.asarray([str(x) for x in labels])
    observed = float(np.mean(lab == lab[nearest]))
    rng = np.random.default_rng(seed)
    chance = np.array([np.mean(p == p[nearest]) for p in (rng.permutation(lab) for _ in range(draws))])
    return {"observed": observed, "chance_mean": float(chance.mean()), "chance_p95": float(np.quantile(chance, 0.95)),
            "p_value": float((1 + np.sum(chance >= observed)) / (1 + draws)), "n": len(lab)}


def stats(zs: list[int], vectors, ratios, path) -> dict:
    from pymatgen.core.periodic_table import Element

    els = [Element.from_Z(z) for z in zs]
    grouped = [i for i, e in enumerate(els) if e.block != "f"]  # f-block elements have no single group number
    return {"table": str(path), "elements": len(zs), "dim": int(vectors.shape[1]),
            "pca_variance_ratio": [float(r) for r in ratios],
            "nearest_same_block": neighbour_agreement(vectors, [e.block for e in els]),
            "nearest_same_group_s_p_d": neighbour_agreement(vectors[grouped], [els[i].group for i in grouped])}


def plot(zs: list[int], coords, ratios, out: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from pymatgen.core.periodic_table import Element

    fig, ax = plt.subplots(figsize=(8, 7))
    blocks = [Element.from_Z(z).block for z in zs]
    for block, colour in BLOCK_COLOURS.items():
        idx = [i for i, b in enumerate(blocks) if b == block]
        if idx:
            ax.scatter(coords[idx, 0], coords[idx, 1], c=colour, s=28, label=f"{block}-block", alpha=0.8)
    for i, z in enumerate(zs):
        el = Element.from_Z(z)
        group = f"{el.group}" if el.block != "f" else ""
        ax.annotate(f"{el.symbol}" + (f"$_{{{group}}}$" if group else ""), coords[i], fontsize=7,
                    xytext=(3, 2), textcoords="offset points")
    ax.set_xlabel(f"PC1 ({100 * ratios[0]:.1f} % of variance)")
    ax.set_ylabel(f"PC2 ({100 * ratios[1]:.1f} % of variance)")
    ax.set_title(title, fontsize=10)
    ax.legend(title="block (subscript: group)", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=130)
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from crystograph.embeddings import load_table

    table = load_table(args.embeddings)
    zs = element_rows(table)
    if len(zs) < 3:
        raise SystemExit(f"error: {len(zs)} covered elements; a projection needs at least 3")
    coords, ratios = project(table.table[zs].numpy())
    title = f"PCA of learned atom embeddings ({table.path.name}, {len(zs)} elements, d = {table.table.size(1)})"
    out = plot(zs, coords, ratios, args.out, title)
    print(f"wrote {out} ({len(zs)} elements; PC1 {100 * ratios[0]:.1f} %, PC2 {100 * ratios[1]:.1f} % of variance)")
    if args.stats is not None:
        doc = stats(zs, table.table[zs].numpy(), ratios, table.path)
        args.stats.parent.mkdir(parents=True, exist_ok=True)
        args.stats.write_text(json.dumps(doc, indent=2) + "\n")
        for key in ("nearest_same_block", "nearest_same_group_s_p_d"):
            r = doc[key]
            print(f"{key}: {r['observed']:.2f} (shuffled labels {r['chance_mean']:.2f}, p = {r['p_value']:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
