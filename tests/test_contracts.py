"""The contracts between layers, enforced (issue "Typed seams").

- one definition of the result columns: the ORM model, the page schema, the export and
  the outcome record all agree with ``api_schemas.result_columns.RESULT_COLUMNS``;
- one workload registry on each side of the wire, and the two agree;
- the records that cross into Ray are standard library only;
- rows never leave ``service/store``: no module under ``service/`` outside it imports the
  ORM models;
- the science packages have no import cycles (``workers/dln`` had one).
"""

from __future__ import annotations

import ast
import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import JSON, Boolean, DateTime, Float, Integer, String, Text
from sqlalchemy.types import TypeDecorator

from api_schemas.result_columns import OUTCOME_COLUMNS, PAGE_COLUMNS, RESULT_COLUMNS
from api_schemas.statuses import TrialStatus
from api_schemas.wire import TRIAL_STATUSES, ResultRead
from api_schemas.workloads import WORKLOAD_SCHEMAS
from service.results_export import SCHEMA
from service.store.models import Trial
from workers.records import TrialOutcome
from workers.workloads import WORKLOADS, Workload

ROOT = Path(__file__).resolve().parents[1]
_SQL_KINDS = {
    "float": (Float,),
    "int": (Integer,),
    "str": (String, Text),
    "bool": (Boolean,),
    "json": (JSON,),
    "datetime": (DateTime,),
}


@pytest.mark.parametrize("column", RESULT_COLUMNS, ids=lambda c: c.name)
def test_orm_result_columns_match_the_definition(column) -> None:
    sql = Trial.__table__.c[column.name]
    stored = sql.type.impl if isinstance(sql.type, TypeDecorator) else sql.type  # UtcDateTime
    assert isinstance(stored, _SQL_KINDS[column.kind]), (column.name, sql.type)
    assert sql.nullable


def test_page_export_and_outcome_derive_from_the_definition() -> None:
    page = [name for name in ResultRead.model_fields if name in {c.name for c in RESULT_COLUMNS}]
    assert page == [c.name for c in PAGE_COLUMNS]
    exported = set(SCHEMA.names)
    assert {c.name for c in RESULT_COLUMNS if c.in_export} <= exported
    assert not {c.name for c in RESULT_COLUMNS if not c.in_export} & exported
    outcome = [f.name for f in dataclasses.fields(TrialOutcome)]
    # ``continue_from``: the saved state of a trial whose leg ended (not a result column).
    assert outcome == ["status", "error", "continue_from", *(c.name for c in OUTCOME_COLUMNS)]
    with pytest.raises(TypeError):
        TrialOutcome.succeeded(not_a_column=1.0)


def test_statuses_are_one_enum() -> None:
    assert TRIAL_STATUSES == tuple(status.value for status in TrialStatus)
    assert ResultRead.model_fields["status"].annotation is TrialStatus


def test_the_two_workload_registries_agree() -> None:
    assert set(WORKLOADS) == set(WORKLOAD_SCHEMAS)
    for name, workload in WORKLOADS.items():
        assert isinstance(workload, Workload), name
        assert workload.name == name
        fields = set(WORKLOAD_SCHEMAS[name].params_model.model_fields)
        for field in (*workload.group_fields, *workload.varying_within_group):
            assert field in fields, (name, field)
        for field in workload.theory_fields:
            assert field in fields, (name, field)


def test_nonlinear_entries_come_from_the_model_classes() -> None:
    from workers.nets.trials import PROBLEMS

    for name, problem in PROBLEMS.items():
        assert WORKLOADS[name].evaluator_version == problem.version


def test_records_are_standard_library_only() -> None:
    code = (
        "import sys; import workers.records; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'pydantic', 'sqlalchemy', 'torch', 'numpy', 'ray', 'fastapi'}); print(bad)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]", out.stdout


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_rows_never_leave_the_store() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / "service").rglob("*.py"))
        if "store" not in path.relative_to(ROOT / "service").parts
        and "service.store.models" in _imports(path)
    ]
    assert offenders == []


@pytest.mark.parametrize("package", ["workers/dln", "workers/theory", "workers/nets"])
def test_science_packages_have_no_import_cycles(package: str) -> None:
    base = ROOT / package
    prefix = package.replace("/", ".")
    graph = {
        f"{prefix}.{path.stem}": {m for m in _imports(path) if m.startswith(prefix + ".")}
        for path in base.glob("*.py")
    }

    def reaches(start: str, target: str, seen: set[str]) -> bool:
        for nxt in graph.get(start, ()):
            if nxt == target or (nxt not in seen and reaches(nxt, target, seen | {nxt})):
                return True
        return False

    cycles = [module for module in graph if reaches(module, module, {module})]
    assert cycles == []
