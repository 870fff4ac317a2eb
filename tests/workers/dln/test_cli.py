"""Tests of ``python -m workers.dln run`` (JSON in, one JSON record out)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from workers.dln.__main__ import main

ROOT = Path(__file__).resolve().parents[3]
SPEC = {
    "D": 100,
    "alpha": 0.3,
    "rho_pt": 0.1,
    "rho_ft": 0.05,
    "omega": 0.5,
    "c_pt": 1e-2,
    "lambda_pt": -0.5,
    "gamma_ft": 0.3,
    "seed": 0,
    "max_steps": 3000,
    "n_test": 100,
}


def test_happy_path_in_a_subprocess() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "workers.dln", "run", json.dumps(SPEC)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    for key in (
        "gen_error_sim",
        "gen_error_theory",
        "beta_rel_diff",
        "train_loss",
        "steps",
        "stop_reason",
        "regime_theory",
        "regime_empirical",
    ):
        assert key in record


def test_stdin_and_paper_parameterization(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = {k: v for k, v in SPEC.items() if k not in ("rho_ft", "omega")}
    spec |= {"rho_ft_shared": 0.25, "rho_ft_new": 0.03, "D": 60}
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO(json.dumps(spec)))
    assert main(["run"]) == 0
    assert json.loads(capsys.readouterr().out)["dtype"] == "float64"


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"bogus": 1}, "'bogus'"),
        ({"lambda_pt": -1.0, "gamma_ft": 0.0}, "lambda_pt = -1 with gamma_ft = 0"),
        ({"D": "big"}, "D must be an integer"),
        ({"lr": -0.5}, "lr must be"),
        ({"rho_ft": 0.9, "omega": 1.0}, "infeasible"),
        ({"dtype": "float16"}, "dtype"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    change: dict[str, object], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", json.dumps(SPEC | change)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0]


def test_missing_key_and_bad_json(capsys: pytest.CaptureFixture[str]) -> None:
    spec = {k: v for k, v in SPEC.items() if k != "c_pt"}
    assert main(["run", json.dumps(spec)]) == 2
    assert "'c_pt'" in capsys.readouterr().err
    assert main(["run", "{not json"]) == 2
    assert "invalid JSON" in capsys.readouterr().err
