"""python -m workers.theory (THEORY.md §3-4 on the command line)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
GOOD = {
    "rho_pt": 0.1,
    "rho_ft": 0.01,
    "omega": 1,
    "c_pt": 1e-3,
    "lambda_pt": -0.99,
    "gamma_ft": 0,
    "alpha": [0.05, 0.1, 0.2],
}


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "workers.theory", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    )


def test_curve_happy_path() -> None:
    proc = run("curve", json.dumps(GOOD))
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    for key in (
        "alpha",
        "gen_error",
        "regime",
        "l_order",
        "pd",
        "reliable",
        "branch_mismatch",
        "gen_error_alt",
        "classifier_version",
    ):
        assert key in out
    assert out["regime"] == "IV" and len(out["gen_error"]) == 3


def test_stdin_and_paper_parameterization() -> None:
    spec = {**GOOD, "alpha": 0.2}
    del spec["rho_ft"], spec["omega"]
    spec.update(rho_ft_shared=0.1, rho_ft_new=0.0)
    proc = run("curve", "-", stdin=json.dumps(spec))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["alpha"] == [0.2]


def test_bad_input_exits_2_naming_the_key() -> None:
    for spec, key in (
        ({**GOOD, "bogus": 1}, "bogus"),
        ({**GOOD, "alpha": [0.1, 0]}, "alpha"),
        ({**GOOD, "lambda_pt": 2}, "lambda_pt"),
    ):
        proc = run("curve", json.dumps(spec))
        assert proc.returncode == 2
        assert key in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_single_subcommand() -> None:
    proc = run("single", json.dumps({"rho": 0.1, "c": 1e-3, "alpha": [0.1, 0.3]}))
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads(proc.stdout)["gen_error"]) == 2


def test_monte_carlo_expectation_reproduces_the_reference_entry() -> None:
    """THEORY.md §3's first reference entry (1.0295 at alpha = 0.01), from the command line."""
    spec = {
        "rho_pt": 0.1,
        "rho_ft": 0.1,
        "omega": 0.5,
        "c_pt": 1e-3,
        "lambda_pt": 0,
        "gamma_ft": 0,
        "alpha": 0.01,
        "expectation": "monte_carlo",
        "mc_samples": 80000,
        "mc_seed": 0,
    }
    proc = run("curve", json.dumps(spec))
    assert proc.returncode == 0, proc.stderr
    assert abs(json.loads(proc.stdout)["gen_error"][0] - 1.0295) < 1e-3
    proc = run("curve", json.dumps({**spec, "expectation": "mc"}))
    assert proc.returncode == 2 and "expectation" in proc.stderr
