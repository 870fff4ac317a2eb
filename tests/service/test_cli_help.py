"""Every ``sweeps`` command's help: an example, no reStructuredText markup; the client
commands import neither Ray nor torch; pure rendering fits the width it is given."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import UTC, datetime

import pytest
from rich.console import Console

from api_schemas.wire import ResultRead
from service.cli import app, main
from service.cli.render import RESULT_COLUMNS, fit_columns, results_table

COMMANDS = sorted(command.name for command in app.registered_commands)


def test_every_command_is_there() -> None:
    old = {"serve", "worker", "migrate", "plan", "submit", "status", "cancel", "results"}
    assert old | {"export", "plot", "report", "watch", "login"} <= set(COMMANDS)


@pytest.mark.parametrize("name", COMMANDS)
def test_help_has_an_example_and_no_markup(name: str, capsys) -> None:
    assert main([name, "--help"]) == 0
    text = capsys.readouterr().out
    flat = " ".join(text.split())
    assert re.search(rf"Example: .*sweeps {name}\b", flat), flat
    assert "``" not in text and ":class:" not in text


def test_top_level_help_and_no_command(capsys) -> None:
    assert main(["--help"]) == 0
    assert "``" not in capsys.readouterr().out
    assert main([]) in (0, 2)


def test_client_commands_import_neither_ray_nor_torch() -> None:
    code = (
        "import sys, service.cli; print(sorted({'ray', 'torch', 'sqlalchemy'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def _result(trial_id: int) -> ResultRead:
    return ResultRead(
        trial_id=trial_id,
        key="k",
        workload="dln_finetune",
        status="succeeded",
        params={"c_pt": 0.01, "lambda_pt": -0.5, "gamma_ft": 0.5, "alpha": 0.5},
        seed=0,
        gen_error_sim=0.0123,
        gen_error_theory=0.0119,
        gen_error_asymptotic=None,
        regime_theory="IV",
        regime_empirical="IV",
        finished_at=datetime.now(UTC),
    )


@pytest.mark.parametrize("width", [40, 60, 80, 200])
def test_results_table_fits_the_width(width: int) -> None:
    table, hidden = results_table([_result(1), _result(22)], width)
    console = Console(width=width, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(table)
    lines = console.export_text().splitlines()
    assert len(lines) == 3 and all(len(line) <= width for line in lines)
    assert "E_gen sim" in lines[0] and "id" in lines[0]
    assert (hidden > 0) == (width < 90)


def test_fit_columns_drops_the_least_kept_first() -> None:
    widths = [4] * len(RESULT_COLUMNS)
    shown = fit_columns(RESULT_COLUMNS, widths, available=4 * 9 + 2 * 8)
    dropped = [RESULT_COLUMNS[i].title for i in range(len(RESULT_COLUMNS)) if i not in shown]
    assert dropped == ["seed", "emp."]  # keep 3 and 2: the two lowest
