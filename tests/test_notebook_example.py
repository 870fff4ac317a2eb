"""``examples/notebook.py`` runs end to end as a script (size ``tiny``) against a live
server: it submits the theory and the simulation, waits, plots, and queries by regime."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.live_server import live_app_url

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_notebook_runs_as_a_script(sqlite_url, tmp_path: Path) -> None:
    figure = tmp_path / "exp1.png"
    with live_app_url(sqlite_url) as url:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SWEEPS_")}
        env |= {"SWEEPS_URL": url, "SWEEPS_CONFIG": str(tmp_path / "none.toml")}
        done = subprocess.run(
            [sys.executable, "examples/notebook.py", "--size", "tiny", "--out", str(figure)],
            cwd=ROOT,
            env=env | {"OMP_NUM_THREADS": "1"},
            capture_output=True,
            text=True,
            timeout=600,
        )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "size tiny: 18 simulated networks" in done.stdout
    assert "runs in regime IV" in done.stdout and "regime_theory" in done.stdout
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and figure.stat().st_size > 10_000
    # One final progress line per sweep on a non-terminal stderr.
    assert sum("100.0%" in line for line in done.stderr.splitlines()) == 2, done.stderr
