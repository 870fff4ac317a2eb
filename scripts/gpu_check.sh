#!/usr/bin/env bash
# The prepared CUDA check of the nonlinear workloads: one trial of each in-process on
# the GPU (samples/s, bf16 autocast), the shared-pretraining saving, and a small sweep
# of each workload through the dispatcher and Ray asking for a quarter GPU per trial
# (trials/s, samples/s).  Prints one table per measurement; paste them into the README.
#
#   bash scripts/gpu_check.sh            # on a machine with a CUDA GPU
#   bash scripts/gpu_check.sh --device cpu   # the same script on CPU (what CI can run)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
DEVICE="cuda"
if [[ "${1:-}" == "--device" ]]; then DEVICE="${2:?--device needs cpu or cuda}"; fi

if [[ "$DEVICE" == "cuda" ]]; then
  if ! "$PYTHON" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "gpu_check: torch sees no CUDA device (is this the CUDA build of torch?)" >&2
    exit 2
  fi
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
fi
"$PYTHON" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"
exec "$PYTHON" benchmarks/bench_nets.py --device "$DEVICE" --sweep --repeats 3
