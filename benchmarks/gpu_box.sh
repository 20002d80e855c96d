#!/usr/bin/env bash
# A GPU box without TensorFlow or network, in one call (BENCHMARKS.md, GPU): install the
# Keras wheels from .whl/, print the GPU, the doctor's report (what `make doctor` runs:
# python -m doodle.gpu.doctor; make itself would build a venv here), then three gpu-check
# runs (python -m doodle.gpu.check, what `make gpu-check` runs) while time is left:
#   1. gpu_check          the default check: MobileNetV2 at 64 and 128 px, batch 256,
#                         1 / 4 / all workers, a 60-s training whose loss must fall;
#   2. gpu_effnet96_b512  kaggle-full's second family as the preset trains it
#                         (EfficientNetV2-B0, 96 px, batch 512, 8 and all workers);
#   3. gpu_mnv2_b512      kaggle-full's MobileNetV2 members (64 and 128 px, batch 512).
# The last two give the measured images/s that replace the presets' assumed rates
# (python -m doodle.presets). Everything lands under $OUT (default reports/gpu-box):
# session.log and reports/<run>.json + .md. BUDGET (seconds, default 540) bounds the whole
# script, so a call limited to 10 minutes still returns its files.
#     BUDGET=540 OUT=/tmp/out bash benchmarks/gpu_box.sh
# (on a CPU each run is gpu-check's tiny mode, but the batch-512 runs are too slow there)
set -o pipefail
OUT=${OUT:-reports/gpu-box}
WHEELS=${WHEELS:-.whl} # WHEELS=none where Keras is installed already
if ls "$WHEELS"/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site "$WHEELS"/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
fi
export KERAS_BACKEND=${KERAS_BACKEND:-jax} PYTHONUNBUFFERED=1
mkdir -p "$OUT/reports"
LOG="$OUT/session.log"
T0=$(date +%s)
left() { echo $((${BUDGET:-540} - ($(date +%s) - T0))); }
{
  nvidia-smi
  python3 -c "import jax, keras; print('jax', jax.__version__, jax.devices(), 'keras', keras.__version__)"
  nproc
  echo "== doctor: python3 -m doodle.gpu.doctor (make doctor)"
  timeout 120 python3 -m doodle.gpu.doctor
} 2>&1 | tee -a "$LOG"

step() { # step NAME MIN_SECONDS_LEFT ARGS...
  local name=$1 need=$2
  shift 2
  if [ "$(left)" -lt "$need" ]; then
    echo "== $name skipped: $(left)s left" | tee -a "$LOG"
    return
  fi
  echo "== $name: python3 -m doodle.gpu.check $* (at $(($(date +%s) - T0))s)" | tee -a "$LOG"
  timeout "$(($(left) - 5))" python3 -m doodle.gpu.check "$@" \
    --out "$OUT/reports/$name.json" 2>&1 | tee -a "$LOG"
  echo "== $name rc=$? at $(($(date +%s) - T0))s" | tee -a "$LOG"
}

step gpu_check 300 --train-s 60
step gpu_effnet96_b512 90 --arch efficientnetv2b0 --sizes 96 --batch 512 --workers 8,all \
  --no-train --window-s 6
step gpu_mnv2_b512 90 --sizes 64,128 --batch 512 --workers 8,all --no-train --window-s 6
echo "== done at $(($(date +%s) - T0))s" | tee -a "$LOG"
