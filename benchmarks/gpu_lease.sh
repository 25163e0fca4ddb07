#!/usr/bin/env bash
# What to run in one short lease of a GPU machine (a fresh machine with python3, torch, PyG and Lightning but
# none of pymatgen, ASE, vesin, gemmi or ALIGNN, and no network). Every job has its own log and wall-clock
# limit, and a failed job does not stop the others; everything it wrote comes back as one tarball.
#
#   MODE=smoke bash benchmarks/gpu_lease.sh     # ~1-2 min: every path below on 64 structures, 1 epoch
#   MODE=full  bash benchmarks/gpu_lease.sh     # ~9 min: the runs below
#
# full:
#   * train_throughput.py --device cuda (CrysToGraph small/paper/paper-bf16, CGCNN, ALIGNN fp32/bf16; same
#     structures, same batches) -> benchmarks/results/train_throughput_gpu.json
#   * shipped model mp-e-form: CrysToGraph small and CGCNN on the fixed split, MP_MINUTES each, side by side
#     on the one GPU; then `shipped_models.py ship` (fp16 weights + card + parity plot)
#   * the ablation studies (components, layouts): one process per cell (task x variant), niced below the MP
#     jobs; their budgets are optimiser steps, so a GPU fold is the same experiment as a CPU fold
#   * JOBS=... jdft2d: converged protocol, preset paper, matbench_jdft2d official folds, one process per fold
#     (ENSEMBLE members each, <= 300 epochs, patience 50, weight decay 0.01), then the 5-fold JSON
#
# Inputs it expects beside the tree (ignored by git; name them in the device tool's `carry`):
#   .whl/       cp312 wheels of what the machine lacks (pymatgen, pymatgen-core, monty, spglib, ruamel.yaml,
#               uncertainties, palettable, orjson, ase, vesin, gemmi; alignn, jarvis-tools, pydantic, ... for ALIGNN)
#   .gpu/data/  a copy of the shared datasets used (matbench/, mp_mtcgcnn/, supercon/, with PROVENANCE.md)
# Environment: OUT (results folder), CRYSTOGRAPH_GIT_COMMIT (the commit the tree is a copy of).
set -uo pipefail
cd "$(dirname "$0")/.."
MODE=${MODE:-smoke}
OUT=${OUT:-/tmp/gpu_out}
MP_MINUTES=${MP_MINUTES:-5.5}
ENSEMBLE=${ENSEMBLE:-1}
FOLD_LIMIT_S=${FOLD_LIMIT_S:-360}
STUDY_END_S=${STUDY_END_S:-450}   # seconds after the start by which every study cell has ended
STUDY_EXTRA=${STUDY_EXTRA:-}       # e.g. --dry-run to try the plumbing
STUDY_PROCS=${STUDY_PROCS:-10}     # study cells at a time (each holds its activations on the GPU)
JOBS=${JOBS:-throughput mp studies}   # of: throughput mp studies jdft2d
ACCEL=${ACCEL:-gpu}            # cpu/cpu and WHEELS=0 try the script on a machine without a GPU
DEVICE=${DEVICE:-cuda}
WHEELS=${WHEELS:-1}
ALIGNN_PY=${ALIGNN_PY:-python3}    # a Python that imports alignn
LOGS=runs/gpu_logs
mkdir -p "$OUT" "$LOGS"
export CRYSTOGRAPH_SHARED_DATA=$PWD/.gpu/data PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
export PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True
if [ "$WHEELS" = 1 ] && [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || { echo "wheel install failed"; exit 1; }
  export PYTHONPATH=/tmp/site:$PWD/src
else
  export PYTHONPATH=$PWD/src
fi
[ -e .venv/bin/python ] || { mkdir -p .venv/bin && ln -s "$(command -v python3)" .venv/bin/python; }
nvidia-smi -L 2>/dev/null
python3 -c "import torch, torch_geometric, lightning; print(torch.__version__, torch.cuda.is_available() and torch.cuda.get_device_name(0))"
DATA=$CRYSTOGRAPH_SHARED_DATA
T0=$(date +%s)
stamp() { echo "[$(( $(date +%s) - T0 ))s] $*"; }

pack() {  # everything the runs wrote, logs included (no checkpoints: the paper preset's are ~75 MB each)
  for f in "$LOGS"/*.log; do echo "== $f"; tail -4 "$f"; done > "$OUT/summary.txt"
  tar czf "$OUT/results.tgz" --exclude='*.partial' --exclude='*.ckpt' \
    benchmarks/results/train_throughput_gpu.json benchmarks/results/converged benchmarks/results/models \
    benchmarks/results/plots/models benchmarks/results/studies src/crystograph/pretrained runs/models runs/bench \
    runs/studies "$LOGS" 2>/dev/null
  ls -la "$OUT"
}

if [ "$MODE" = smoke ]; then
  S=/tmp/smoke
  stamp "import"; python3 -c "import crystograph.api, pymatgen.core, gemmi, ase, vesin; print('imports ok')" || exit 1
  stamp "shipped crystograph"; timeout 120 python3 benchmarks/shipped_models.py train jdft2d-exf --epochs 1 --limit 64 \
      --scratch $S --accelerator "$ACCEL" --workers 4 --data-dir "$DATA" --no-progress 2>&1 | tail -5
  stamp "shipped cgcnn"; timeout 120 python3 benchmarks/shipped_models.py train jdft2d-exf --model cgcnn --minutes 0.1 \
      --limit 64 --scratch $S --accelerator "$ACCEL" --workers 4 --data-dir "$DATA" --no-progress 2>&1 | tail -3
  stamp "ship"; timeout 120 python3 benchmarks/shipped_models.py ship jdft2d-exf --scratch $S --data-dir "$DATA" 2>&1 | tail -3
  stamp "converged paper"; timeout 150 python3 benchmarks/run_bench.py local_matbench_jdft2d --model crystograph \
      --protocol converged --preset paper --epochs 2 --folds 0, --limit 64 --out $S/res --run-dir $S/runs \
      --atom-embeddings default --weight-decay 0.01 --no-progress 2>&1 | tail -4
  stamp "study cell"; timeout 150 python3 -m crystograph ablate benchmarks/studies/components.yaml --tasks paper_bulk_s \
      --variants no_gwt --no-reference --limit 64 --max-steps 2 --folds 1 --out $S/studies --run-dir $S/sr \
      --data-dir "$DATA" --device "$DEVICE" --no-progress 2>&1 | tail -6
  stamp "throughput"; timeout 150 python3 benchmarks/train_throughput.py --device "$DEVICE" --alignn-python "$ALIGNN_PY" --n 64 \
      --repeats 1 --out $S/tt.json 2>&1 | grep -E "throughput|Error|error" | tail -12
  stamp "done"; exit 0
fi

# full
want() { case " $JOBS " in *" $1 "*) return 0;; *) return 1;; esac; }
if want mp; then
  stamp "mp-e-form: crystograph and CGCNN, $MP_MINUTES min each"
  for model in crystograph cgcnn; do
    timeout 450 python3 benchmarks/shipped_models.py train mp-e-form --model $model \
        --minutes "$MP_MINUTES" --accelerator "$ACCEL" --workers 6 --data-dir "$DATA" --no-progress \
        > "$LOGS/mp_$model.log" 2>&1 &
  done
fi
if want throughput; then
  stamp "throughput (the other jobs are building graphs on the CPU meanwhile)"
  timeout 100 python3 benchmarks/train_throughput.py --device "$DEVICE" --alignn-python "$ALIGNN_PY" --n 512 \
      --repeats 3 --out benchmarks/results/train_throughput_gpu.json > "$LOGS/throughput.log" 2>&1
  stamp "throughput rc=$?"
fi
if want studies; then  # one process per cell (task x variant), STUDY_PROCS at a time, below the MP jobs' priority
  python3 benchmarks/carry_runs.py restore > "$LOGS/carry.log" 2>&1   # folds finished on a CPU earlier
  python3 - > runs/study_cells.txt <<'PY'
from crystograph.bench.study import load_study
for name in ("layouts", "components"):
    s = load_study(f"benchmarks/studies/{name}.yaml")
    for task, v in s.cells():
        print(name, task, v.name)
PY
  export DATA DEVICE LOGS STUDY_EXTRA DEADLINE=$(( T0 + STUDY_END_S ))
  # shellcheck disable=SC2016
  xargs -P "$STUDY_PROCS" -L 1 bash -c 'left=$(( DEADLINE - $(date +%s) )); [ "$left" -gt 60 ] || exit 0
      nice -n 10 timeout "$left" python3 -m crystograph ablate "benchmarks/studies/$0.yaml" --tasks "$1" \
      --variants "$2" --no-reference --out benchmarks/results/studies --run-dir runs/studies --data-dir "$DATA" \
      --device "$DEVICE" --no-progress $STUDY_EXTRA > "$LOGS/study_$0_$1_$2.log" 2>&1' \
      < runs/study_cells.txt &
fi
if want jdft2d; then
  for fold in 0 1 2 3 4; do
    timeout "$FOLD_LIMIT_S" python3 benchmarks/run_bench.py local_matbench_jdft2d --model crystograph \
        --protocol converged --preset paper --ensemble "$ENSEMBLE" --epochs 300 --weight-decay 0.01 \
        --folds "$fold," --atom-embeddings default --no-progress > "$LOGS/jdft2d_fold$fold.log" 2>&1 &
  done
fi
wait
stamp "all jobs ended"
if want mp; then
  timeout 45 python3 benchmarks/shipped_models.py ship mp-e-form --data-dir "$DATA" > "$LOGS/ship.log" 2>&1
  stamp "ship rc=$?"
fi
if want studies; then  # each study's JSON and figure from the cells on disk (nothing is trained here)
  timeout 60 python3 - > "$LOGS/study_summaries.log" 2>&1 <<'PY'
from crystograph.bench.study import load_study, write_summary
for name in ("layouts", "components"):
    doc = write_summary(load_study(f"benchmarks/studies/{name}.yaml"), "benchmarks/results/studies",
                        command="benchmarks/gpu_lease.sh: one ablate process per cell (--no-reference)")
    print(name, "complete" if doc.get("complete") else f"missing {doc.get('missing')}")
PY
  stamp "study summaries rc=$?"
fi
if want jdft2d && [ "$(ls runs/bench/converged/local_matbench_jdft2d/crystograph-paper/fold_*/fold.json 2>/dev/null | wc -l)" = 5 ]; then
  timeout 45 python3 benchmarks/run_bench.py local_matbench_jdft2d --model crystograph --protocol converged \
      --preset paper --ensemble "$ENSEMBLE" --epochs 300 --weight-decay 0.01 --folds 5 --atom-embeddings default \
      --no-progress > "$LOGS/jdft2d_all.log" 2>&1
  stamp "jdft2d 5-fold JSON rc=$?"
fi
pack
stamp "packed"
