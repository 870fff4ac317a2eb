#!/usr/bin/env bash
# The test suite: installs what is missing, then runs pytest.
#   bash scripts/test.sh                 # everything (CI runs exactly this)
#   bash scripts/test.sh --skip-slow     # skip the slow end-to-end tests locally
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
# PostgreSQL tests are mandatory under CI=true; start the local cluster if it is down.
if [ "${CI:-}" = "true" ] && command -v pg_isready >/dev/null 2>&1; then
  if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  fi
fi
# The page's browser tests drive Debian's chromium through Playwright (never
# `playwright install`); install it when missing (they are mandatory under CI=true and
# skip with the reason elsewhere).
if ! command -v chromium >/dev/null 2>&1; then
  (apt-get update && apt-get install -y chromium) || echo "could not install chromium" >&2
fi
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
# Two pytest workers (pytest-xdist; CI has 2 cores): much of a test's time is waiting
# (a server starting, Ray starting, a signal being handled), and two workers overlap it.
# SWEEPS_TEST_WORKERS=0 runs in one process; arguments after it override (-n 0).
exec .venv/bin/python -m pytest -n "${SWEEPS_TEST_WORKERS:-2}" --dist worksteal "$@"
