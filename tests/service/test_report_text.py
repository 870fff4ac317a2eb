"""``sweeps report`` text: a worst-config line names what tells its config apart."""

from __future__ import annotations

import json
from pathlib import Path

from api_schemas.report import AgreementReport
from service.cli.render import report_text

# A real report (the paper-scale regime figure at α = 0.108 and 0.157, D = 5000).
STORED = (
    Path(__file__).resolve().parents[2]
    / "docs/figures/paper-scale/regimes-paper-scale-a0.108-0.157_report.json"
)


def _worst_lines(report: AgreementReport) -> list[str]:
    lines = report_text(report).splitlines()
    start = lines.index("worst configs (largest |z|):") + 1
    return [line for line in lines[start:] if line.startswith("  alpha=")]


def test_worst_lines_show_the_figure_knobs_and_nothing_constant() -> None:
    report = AgreementReport.model_validate(json.loads(STORED.read_text()))
    lines = _worst_lines(report)
    assert len(lines) == len(report.worst) > 0
    assert all("omega=" in line and "gamma_ft=" in line for line in lines)
    # D, n_test and teacher_norm are the same in every config: not repeated on each line.
    assert not any("D=" in line or "n_test=" in line or "teacher_norm" in line for line in lines)


def test_a_parameter_that_varies_between_configs_is_shown() -> None:
    """The same config at two D (examples/checks/finite_d_lazy.yaml) read as two identical
    lines before; now each names its D."""
    report = AgreementReport.model_validate(json.loads(STORED.read_text()))
    first, second = report.worst[0], report.worst[1]
    at_15000 = first.model_copy(update={"params": {**first.params, "D": 15000}})
    report = report.model_copy(update={"rows": [*report.rows, at_15000]})
    report = report.model_copy(update={"worst": [first, at_15000, second]})
    lines = _worst_lines(report)
    assert "D=5000" in lines[0] and "D=15000" in lines[1] and lines[0] != lines[1]
    assert lines[0].replace("D=5000", "D=15000") == lines[1]
