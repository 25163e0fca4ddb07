#!/usr/bin/env bash
# Create an isolated venv with ALIGNN (the baseline we compare against).
#
# ALIGNN is NOT a dependency of crystograph: it lives in its own venv, outside
# the repository (default /work/alignn-venv, override with $ALIGNN_VENV), and
# the benchmark scripts talk to it through a subprocess.
#
# Why the install order matters:
#   * torch==2.13.0 goes in FIRST. On this machine that exact version resolves
#     to a local CPU wheel (pip's find-links); alignn only asks for
#     torch>=2.2.1, which 2.13.0 satisfies, so pip then installs nothing more
#     for torch. Installing alignn first (or a looser torch pin) would pull a
#     multi-GB CUDA build from PyPI.
#   * alignn >= 2026 ships a DGL-free graph builder
#     (alignn.torch_graph_builder.build_pure_torch_graph) and a pure-torch model
#     (alignn.models.alignn_atomwise_pure.ALIGNNAtomWisePure); its wheel does not
#     depend on dgl, so no --no-deps workaround is needed. We do not install dgl.
#   * matscipy is deliberately NOT installed: without it the pure-torch builder
#     uses its own torch neighbour list (the code path the benchmark measures).
#
# Idempotent: re-running only checks/repairs the install.
# Usage: bash benchmarks/setup_alignn.sh        (ALIGNN_VENV=/path to relocate)
set -euo pipefail

VENV="${ALIGNN_VENV:-/work/alignn-venv}"
PYTHON="${PYTHON:-python3}"
TORCH_VERSION="${ALIGNN_TORCH_VERSION:-2.13.0}"
ALIGNN_VERSION="${ALIGNN_VERSION:-2026.8.11}"

if [ ! -x "$VENV/bin/python" ]; then
    echo "[setup_alignn] creating venv $VENV"
    "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)

have() {  # have <dist> <version>: is exactly this version installed?
    "$VENV/bin/python" - "$1" "$2" <<'EOF'
import sys
from importlib.metadata import version, PackageNotFoundError
try:
    v = version(sys.argv[1])
except PackageNotFoundError:
    sys.exit(1)
sys.exit(0 if v.split("+")[0] == sys.argv[2] else 1)
EOF
}

if have torch "$TORCH_VERSION"; then
    echo "[setup_alignn] torch $TORCH_VERSION already installed"
else
    echo "[setup_alignn] installing torch==$TORCH_VERSION (CPU build)"
    "${PIP[@]}" install "torch==$TORCH_VERSION"
fi

if have alignn "$ALIGNN_VERSION"; then
    echo "[setup_alignn] alignn $ALIGNN_VERSION already installed"
else
    echo "[setup_alignn] installing alignn==$ALIGNN_VERSION"
    # Keep torch where it is: the constraint pins it to the CPU build above.
    CONSTRAINT="$(mktemp)"
    trap 'rm -f "$CONSTRAINT"' EXIT
    echo "torch==$TORCH_VERSION" >"$CONSTRAINT"
    "${PIP[@]}" install "alignn==$ALIGNN_VERSION" -c "$CONSTRAINT"
fi

echo "[setup_alignn] verifying"
OMP_NUM_THREADS=1 "$VENV/bin/python" - <<'EOF'
import importlib.metadata as md
import torch
from jarvis.core.atoms import Atoms
from alignn.torch_graph_builder import build_pure_torch_graph, batch_torch_graph_pairs
from alignn.models.alignn import ALIGNNConfig  # defaults only; the DGL model class is not used
from alignn.models.alignn_atomwise_pure import ALIGNNAtomWisePure, ALIGNNAtomWisePureConfig

try:
    import dgl  # noqa: F401
    print("[setup_alignn] note: dgl is importable (not needed)")
except ImportError:
    pass

atoms = Atoms(lattice_mat=[[0, 2.715, 2.715], [2.715, 0, 2.715], [2.715, 2.715, 0]],
              coords=[[0, 0, 0], [0.25, 0.25, 0.25]], elements=["Si", "Si"], cartesian=False)
g, lg = build_pure_torch_graph(atoms=atoms, two_body_cutoff=8.0, three_body_cutoff=8.0,
                               max_neighbors=12, atom_features="cgcnn", compute_line_graph=True)
assert g.num_edges == 24 and lg.src.numel() == 24 * 12, (g.num_edges, lg.src.numel())
d = ALIGNNConfig(name="alignn").model_dump()
cfg = ALIGNNAtomWisePureConfig(
    name="alignn_atomwise_pure",
    **{k: d[k] for k in ("alignn_layers", "gcn_layers", "atom_input_features", "edge_input_features",
                         "triplet_input_features", "embedding_features", "hidden_features",
                         "output_features")},
    calculate_gradient=False, gradwise_weight=0.0, energy_mult_natoms=False, use_penalty=False,
    three_body_cutoff=8.0)
model = ALIGNNAtomWisePure(cfg).eval()
gb, lgb = batch_torch_graph_pairs([(g, lg), (g, lg)])
with torch.no_grad():
    out = model([gb, lgb, torch.zeros(2, 3, 3)])["out"]
assert out.shape == (2,), out.shape
print("[setup_alignn] OK: torch", torch.__version__, "| alignn", md.version("alignn"),
      "| jarvis-tools", md.version("jarvis-tools"),
      "| params", sum(p.numel() for p in model.parameters()), "| forward", tuple(out.shape))
EOF
