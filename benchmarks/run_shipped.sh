#!/usr/bin/env bash
# Train and ship the package's property models (issue 16), one after the other, resumable.
#
#   NAMES="mp-gap qmof-gap" bash benchmarks/run_shipped.sh        # 75 min each model, 1 thread
#   NAMES=mp-e-form EPOCHS=12 bash benchmarks/run_shipped.sh      # an epoch budget; CGCNN gets the same minutes
#
# For each name: CrysToGraph (preset small) on the fixed split, then CGCNN on the same split with the same
# budget (minutes x threads; with EPOCHS, the minutes CrysToGraph took), then `shipped_models.py ship` (fp16
# weights + card into src/crystograph/pretrained/<name>). A finished step (its result JSON exists for this
# budget) is skipped, a killed one resumes from its checkpoint when the command is run again.
set -euo pipefail
cd "$(dirname "$0")/.."
NAMES=${NAMES:?name the models, e.g. NAMES="mp-gap qmof-gap" (benchmarks/shipped_models.py lists them)}
MINUTES=${MINUTES:-75}
EPOCHS=${EPOCHS:-}
THREADS=${THREADS:-1}
DATA_DIR=${DATA_DIR:-../shared/data}
export OMP_NUM_THREADS=$THREADS MKL_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS
PY=${PY:-.venv/bin/python}
RESULTS=benchmarks/results/models

budget_of() {  # the budget a finished result JSON records: "m<minutes>" or "e<epochs>"
  "$PY" -c "import json,sys; d=json.load(open(sys.argv[1])); e=d.get('budget_epochs');
print(f'e{e}' if e else f'm{float(d[\"budget_minutes\"]):g}')" "$1" 2>/dev/null || echo none
}

for name in $NAMES; do
  if [ -n "$EPOCHS" ]; then want="e$EPOCHS"; budget=(--epochs "$EPOCHS"); else want="m$(printf '%g' "$MINUTES")"; budget=(--minutes "$MINUTES"); fi
  ours=$RESULTS/${name}__crystograph.json
  if [ "$(budget_of "$ours")" = "$want" ]; then
    echo "[$(date +%H:%M:%S)] $name: crystograph ($want) finished earlier"
  else
    echo "[$(date +%H:%M:%S)] $name: crystograph, budget $want, $THREADS thread(s)"
    "$PY" benchmarks/shipped_models.py train "$name" --model crystograph "${budget[@]}" --threads "$THREADS" \
        --data-dir "$DATA_DIR" --no-progress
  fi
  # CGCNN: the same minutes (with an epoch budget, the wall time CrysToGraph's training took)
  cg_minutes=$MINUTES
  # (details.train_wall_s: every sitting of a resumed fit, per ensemble member; the top-level one is the last sitting)
  [ -n "$EPOCHS" ] && cg_minutes=$("$PY" -c "import json,sys; d=json.load(open(sys.argv[1])); s=d['details'].get('train_wall_s')
print(round((sum(s) if s and None not in s else d['train_wall_s'])/60, 1))" "$ours")
  cg=$RESULTS/${name}__cgcnn.json
  if [ "$(budget_of "$cg")" = "m$(printf '%g' "$cg_minutes")" ]; then
    echo "[$(date +%H:%M:%S)] $name: cgcnn ($cg_minutes min) finished earlier"
  else
    echo "[$(date +%H:%M:%S)] $name: cgcnn, $cg_minutes min, $THREADS thread(s)"
    "$PY" benchmarks/shipped_models.py train "$name" --model cgcnn --minutes "$cg_minutes" --threads "$THREADS" \
        --data-dir "$DATA_DIR" --no-progress
  fi
  echo "[$(date +%H:%M:%S)] $name: ship"
  "$PY" benchmarks/shipped_models.py ship "$name" --data-dir "$DATA_DIR"
done
