#!/usr/bin/env bash
# Install everything, then run the main job on the embedded default: the API on SQLite
# (./sweeps.db) with a local Ray, submit examples/quickstart.yaml, wait for it, and
# print its results beside their theory predictions.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
PORT=${SWEEPS_QUICKSTART_PORT:-8765}
export SWEEPS_URL="http://127.0.0.1:${PORT}"
log=$(mktemp -t sweeps-serve.XXXXXX.log)
.venv/bin/sweeps serve --port "$PORT" --log-level warning >"$log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do
  if .venv/bin/python -c "import httpx,sys; sys.exit(httpx.get('$SWEEPS_URL/healthz').status_code != 200)" 2>/dev/null; then
    break
  fi
  if ! kill -0 "$server" 2>/dev/null; then cat "$log"; exit 1; fi
  sleep 1
done
echo "server up at $SWEEPS_URL (log: $log)"
# stderr: the submission, then one live progress line that ends as the sweep's final state.
sweep=$(.venv/bin/sweeps submit examples/quickstart.yaml --wait)
.venv/bin/sweeps results --sweep "$sweep" --sort alpha --limit 100
echo
echo "Summary over seeds (mean ± SEM beside the theory):"
.venv/bin/python - "$sweep" <<'PY'
import sys
from finetune_sweeps import Client  # the Python client; SWEEPS_URL is set above

summary = Client().summary("lambda_pt,gamma_ft", sweep_id=sys.argv[1])
f = lambda v, w=10: f"{v:>{w}.4g}" if v is not None else f"{'-':>{w}}"
print(f"{'λ_pt':>6} {'γ_ft':>6} {'n':>3} {'E_gen sim':>10} {'± SEM':>8} {'finite thy':>10} {'replica':>9} regime")
for r in summary.rows:
    g = r.group
    print(f"{g['lambda_pt']:>6.2f} {g['gamma_ft']:>6.2f} {r.count:>3} {f(r.gen_error_sim_mean)} "
          f"{f(r.gen_error_sim_sem, 8)} {f(r.gen_error_theory_mean)} {f(r.gen_error_asymptotic, 9)} {r.regime_theory}")
PY
