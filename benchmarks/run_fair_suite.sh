#!/usr/bin/env bash
# The fair budget suite: every model ALONE on all cores, in turn, on identical folds, with the same training
# minutes per fold. Labelled "protocol": "budget" in every JSON. Resumable: rerun the same command and finished
# folds (and ALIGNN fold files) are loaded, never recomputed; a rerun with other MINUTES/settings into the same
# folders is refused by the runners (use another OUT/RUNS).
#
#   MINUTES=2 bash benchmarks/run_fair_suite.sh                   # all 7 offline tasks, all models
#   TASKS=local_supercon MODELS="crystograph cgcnn" bash benchmarks/run_fair_suite.sh
#
# Share of the machine: one training process at a time (tasks outer, models inner), torch/OpenMP threads =
# THREADS (default: nproc). Cleanest: nothing else runs meanwhile. THREADS=1 beside one other steady
# single-threaded job also gives every model the same share (one core each); the JSONs record the load average
# at start, the suite log at each model's start.
# Models: dummy (no training), crystograph-small (preset small), crystograph-nolg (not in the default MODELS:
# the small preset's no_line_graph ablation layout, eTGC on the crystal graph + GwT), cgcnn (reference recipe: MSE, SGD 0.01,
# MultiStepLR [100]), alignn (published width), alignn-h64 (hidden 64, batch 32, standardised target).
# Results: $OUT/<task>__<model>.json (default benchmarks/results/fair), per-fold files under $RUNS.
# Budget cost: 5 folds x MINUTES x (trained models) per task + graph building; 7 tasks x 4 trained models x 5 folds
# x 2 min = 280 min of training, about 5-6 h in all on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES=${MINUTES:-2}
TASKS=${TASKS:-local_supercon,local_matbench_jdft2d,local_matbench_phonons,local_c2db_gap,local_2dmatpedia_exf,local_perov5,local_mp_e_form}
MODELS=${MODELS:-dummy crystograph cgcnn alignn alignn-h64}
THREADS=${THREADS:-$(nproc)}
OUT=${OUT:-benchmarks/results/fair}
RUNS=${RUNS:-runs/fair}
ALIGNN_VENV=${ALIGNN_VENV:-/work/alignn-venv}
FOLDS=${FOLDS:-}   # smoke tests: e.g. FOLDS=0,1 (default: all 5)
LIMIT=${LIMIT:-}   # smoke tests: the first N rows only (not a benchmark number)
LOGS=$RUNS/logs
mkdir -p "$LOGS" "$RUNS/folds" "$OUT"
export OMP_NUM_THREADS=$THREADS MKL_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS

sel=()
[ -n "$LIMIT" ] && sel+=(--limit "$LIMIT")
bench() {  # crystograph bench with this suite's folders
  .venv/bin/python benchmarks/run_bench.py "$@" --out "$OUT" --run-dir "$RUNS/bench" --no-progress \
      ${FOLDS:+--folds "$FOLDS"} ${sel[@]+"${sel[@]}"}
}

for task in ${TASKS//,/ }; do
  for model in $MODELS; do
    echo "[$(date +%H:%M:%S)] $task · $model ($THREADS threads, $MINUTES min/fold, load $(cut -d' ' -f1 /proc/loadavg))" \
      | tee -a "$LOGS/suite.log"
    case "$model" in
      dummy)
        bench "$task" --model dummy >> "$LOGS/dummy.log" 2>&1 || echo "dummy failed on $task" | tee -a "$LOGS/suite.log" ;;
      crystograph)
        bench "$task" --model crystograph --preset small --max-minutes "$MINUTES" \
            >> "$LOGS/crystograph.log" 2>&1 || echo "crystograph failed on $task" | tee -a "$LOGS/suite.log" ;;
      crystograph-nolg)  # declared once for all tasks: the no_line_graph ablation layout of the small preset
        bench "$task" --model crystograph --preset small --layout no_line_graph --max-minutes "$MINUTES" \
            >> "$LOGS/crystograph-nolg.log" 2>&1 || echo "crystograph-nolg failed on $task" | tee -a "$LOGS/suite.log" ;;
      cgcnn)
        bench "$task" --model cgcnn --max-minutes "$MINUTES" \
            >> "$LOGS/cgcnn.log" 2>&1 || echo "cgcnn failed on $task" | tee -a "$LOGS/suite.log" ;;
      alignn|alignn-h64)
        if [ ! -x "$ALIGNN_VENV/bin/python" ]; then
          echo "no ALIGNN venv at $ALIGNN_VENV (benchmarks/setup_alignn.sh); skipping $model" | tee -a "$LOGS/suite.log"
          continue
        fi
        [ -f "$RUNS/folds/${task}_folds.csv" ] || \
          .venv/bin/python benchmarks/run_bench.py "$task" --export-folds "$RUNS/folds" --no-progress \
              ${sel[@]+"${sel[@]}"} >> "$LOGS/$model.log" 2>&1
        "$ALIGNN_VENV/bin/python" benchmarks/alignn_train.py "$RUNS/folds/${task}_folds.csv" --task "$task" \
            --model "$model" --minutes-per-fold "$MINUTES" --threads "$THREADS" --out "$OUT/${task}__${model}.json" \
            --preds-dir "$RUNS/alignn/$task/$model" ${FOLDS:+--folds "$FOLDS"} >> "$LOGS/$model.log" 2>&1 \
          || echo "$model failed on $task" | tee -a "$LOGS/suite.log" ;;
      *) echo "unknown model $model" >&2; exit 2 ;;
    esac
  done
done
.venv/bin/python benchmarks/make_table.py --stdout --results "$OUT" | tee "$LOGS/table.md"
