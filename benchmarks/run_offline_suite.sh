#!/usr/bin/env bash
# The offline benchmark suite: 7 tasks × {crystograph, cgcnn, alignn, dummy} on identical folds,
# an equal wall-clock training budget per fold, each model in its own single-threaded process, all three trained
# models at once (so they share the 2 cores equally). Finished folds are never recomputed: rerun to resume.
#   MINUTES=2 bash benchmarks/run_offline_suite.sh
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES=${MINUTES:-2}
TASKS=${TASKS:-local_supercon,local_matbench_jdft2d,local_matbench_phonons,local_c2db_gap,local_2dmatpedia_exf,local_perov5,local_mp_e_form}
ALIGNN_VENV=${ALIGNN_VENV:-/work/alignn-venv}
LOGS=runs/suite_logs
mkdir -p "$LOGS" runs/folds
export OMP_NUM_THREADS=1

.venv/bin/python benchmarks/run_bench.py "$TASKS" --model dummy --no-progress > "$LOGS/dummy.log" 2>&1

.venv/bin/python benchmarks/run_bench.py "$TASKS" --model crystograph --preset small \
    --max-minutes "$MINUTES" --no-progress > "$LOGS/crystograph.log" 2>&1 &
.venv/bin/python benchmarks/run_bench.py "$TASKS" --model cgcnn \
    --max-minutes "$MINUTES" --no-progress > "$LOGS/cgcnn.log" 2>&1 &

if [ -x "$ALIGNN_VENV/bin/python" ]; then
  (
    for task in ${TASKS//,/ }; do
      .venv/bin/python benchmarks/run_bench.py "$task" --export-folds runs/folds >> "$LOGS/alignn.log" 2>&1
      "$ALIGNN_VENV/bin/python" benchmarks/alignn_train.py "runs/folds/${task}_folds.csv" --task "$task" \
          --minutes-per-fold "$MINUTES" --threads 1 --out "benchmarks/results/${task}__alignn.json" \
          --preds-dir "runs/bench/$task/alignn" >> "$LOGS/alignn.log" 2>&1 || echo "alignn failed on $task" >> "$LOGS/alignn.log"
    done
  ) &
else
  echo "no ALIGNN venv at $ALIGNN_VENV (run benchmarks/setup_alignn.sh); skipping ALIGNN" | tee -a "$LOGS/alignn.log"
fi
wait
.venv/bin/python benchmarks/make_table.py
