#!/usr/bin/env bash
# Reproduce the reduced-size paper figures and agreement reports (README.md, "Reproducing the paper").
#
# Needs a running server (`sweeps serve`; SWEEPS_URL, default http://127.0.0.1:8000).
# Submissions are content-addressed, so a rerun reuses every finished trial.
set -euo pipefail
cd "$(dirname "$0")/../.."
S=${SWEEPS:-sweeps}
OUT=${OUT:-docs/figures}
mkdir -p "$OUT"
submit() { $S submit "examples/paper/$1.yaml" --wait --quiet; }

# Theory first (seconds): the simulations then find their replica values stored.
EXP1_T=$(submit exp1_theory)
REG_T=$(submit regimes_theory)
PHASE=$(submit phase)
PHASE_C=$(submit phase_c)
PHASE_R=$(submit phase_refine)     # adaptive: waits until refinement ends
# Simulations (minutes on 2 cores).
EXP1=$(submit exp1)
REG=$(submit regimes)
echo "exp1=$EXP1 exp1_theory=$EXP1_T regimes=$REG regimes_theory=$REG_T phase=$PHASE phase_c=$PHASE_C phase_refine=$PHASE_R"

$S plot "$EXP1" --kind gen_error --theory-sweep "$EXP1_T" -o "$OUT/exp1_gen_error.png"
$S plot "$EXP1" --kind scatter -o "$OUT/exp1_scatter.png"
$S plot "$REG" --kind regimes --theory-sweep "$REG_T" -o "$OUT/regimes.png"
$S plot "$REG" --kind scatter -o "$OUT/regimes_scatter.png"
$S plot "$PHASE" --kind phase -o "$OUT/phase_lambda_gamma.png"
$S plot "$PHASE" --kind l_order -o "$OUT/l_order_lambda_gamma.png"
$S plot "$PHASE" --kind pd -o "$OUT/pd_lambda_gamma.png"
$S plot "$PHASE_C" --kind phase -o "$OUT/phase_lambda_c.png"
$S plot "$PHASE_R" --kind phase -o "$OUT/phase_refine_lambda_gamma.png"
$S report "$EXP1" > "$OUT/exp1_report.txt"
$S report "$REG" > "$OUT/regimes_report.txt"
echo "figures and reports in $OUT/"
