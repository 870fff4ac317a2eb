#!/usr/bin/env bash
# The prepared GPU check, run once when a GPU is lent:
# 1. the nonlinear workloads: one trial of each in-process on the GPU (samples/s, bf16
#    autocast), the shared-pretraining saving, and a small sweep of each workload through
#    the dispatcher and Ray asking for a quarter GPU per trial (trials/s, samples/s);
# 2. the paper-scale campaign (benchmarks/paper_scale.py): exp1_full and regimes_full at
#    D = 5000, 14 seeds, through the service on the GPU, until CAMPAIGN_SECONDS (default
#    420) runs out; then the agreement reports, figures, the table and the projection of
#    the whole campaign, written to $OUT/paper-scale (or docs/figures/paper-scale).
# Prints one table per measurement; paste them into the README.
#
#   bash scripts/gpu_check.sh                 # on a machine with a CUDA GPU
#   bash scripts/gpu_check.sh --device cpu    # the same script on CPU (CAMPAIGN_DIM and
#                                             # CAMPAIGN_SEEDS shrink the campaign there)
#   CAMPAIGN_LEDGER=FILE bash scripts/gpu_check.sh   # continue a campaign's ledger
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
"$PYTHON" benchmarks/bench_nets.py --device "$DEVICE" --sweep --repeats 3

CAMPAIGN_OUT="${OUT:-docs/figures}/paper-scale"
CAMPAIGN_ARGS=(--device "$DEVICE" --budget-s "${CAMPAIGN_SECONDS:-420}" --out "$CAMPAIGN_OUT")
[[ -n "${CAMPAIGN_ALPHAS:-}" ]] && CAMPAIGN_ARGS+=(--alphas $CAMPAIGN_ALPHAS)
[[ -n "${CAMPAIGN_DIM:-}" ]] && CAMPAIGN_ARGS+=(--dim "$CAMPAIGN_DIM")
[[ -n "${CAMPAIGN_SEEDS:-}" ]] && CAMPAIGN_ARGS+=(--seeds "$CAMPAIGN_SEEDS")
# A ledger (paper_scale.py --ledger) continues a campaign across runs; CUDA results have
# their own keys, so a GPU run keeps its own (e.g. $OUT/paper-scale/ledger-cuda.sqlite.gz).
[[ -n "${CAMPAIGN_LEDGER:-}" ]] && CAMPAIGN_ARGS+=(--ledger "$CAMPAIGN_LEDGER")
exec "$PYTHON" benchmarks/paper_scale.py "${CAMPAIGN_ARGS[@]}"
