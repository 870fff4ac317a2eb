"""Data for figures and agreement reports: a sweep's succeeded results as plain records.

Reuses the ``/v1/results`` machinery (``results.filter_conditions`` over a
``ResultFilter``, ``results.column``) so a figure shows exactly what
``GET /v1/results?sweep_id=…`` returns.  Rows never leave this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from api_schemas.result_columns import SCALAR_COLUMNS
from service.errors import NoResultsYet, SweepNotFound
from service.store import results as results_store
from service.store import sweeps as sweep_store
from service.store.models import Sweep, Trial
from service.store.result_filters import ResultFilter

# Result columns a figure or report reads, beside the parameters: every scalar one.
RECORD_COLUMNS = ("workload", "seed", *SCALAR_COLUMNS)
MAX_RECORDS = 200_000


@dataclass(frozen=True)
class SweepInfo:
    id: str
    name: str
    workload: str
    tags: list[str]


def sweep_info(session: Session, sweep_id: str) -> SweepInfo:
    """The sweep's identity, or ``SweepNotFound`` (404)."""
    sweep = session.get(Sweep, sweep_id)
    if sweep is None:
        raise SweepNotFound(f"no sweep with id {sweep_id!r}")
    return SweepInfo(sweep.id, sweep.name, sweep.workload, list(sweep.tags or []))


def sweep_records(session: Session, sweep_id: str) -> list[dict[str, Any]]:
    """Every succeeded trial of the sweep as ``{"params": {...}, <RECORD_COLUMNS>}``.

    Raises ``NoResultsYet`` (409) when the sweep has no succeeded trial, naming its
    status so the caller knows whether to wait.
    """
    conditions = results_store.filter_conditions(ResultFilter(sweep_id=sweep_id))
    columns = [Trial.params, *(getattr(Trial, name) for name in RECORD_COLUMNS)]
    statement = select(*columns).where(*conditions).order_by(Trial.id).limit(MAX_RECORDS + 1)
    rows = session.execute(statement).all()
    if len(rows) > MAX_RECORDS:
        raise NoResultsYet(
            f"sweep {sweep_id} has more than {MAX_RECORDS} results; figures and reports "
            "are drawn from at most that many"
        )
    if not rows:
        sweep = sweep_store.read_sweep(session, sweep_id)
        done = sweep.counts.succeeded
        raise NoResultsYet(
            f"sweep {sweep_id} ({sweep.name}) has no results yet: status {sweep.status}, "
            f"{done}/{sweep.trial_count} trials succeeded, {sweep.counts.failed} failed; "
            f"wait for it (sweeps status {sweep_id}) and retry"
        )
    records = []
    for row in rows:
        record = dict(zip(("params", *RECORD_COLUMNS), row, strict=True))
        record["params"] = dict(record["params"] or {})
        records.append(record)
    return records


def require_simulation(sweep: SweepInfo, records: list[dict[str, Any]]) -> None:
    """``NoResultsYet`` (409) unless some record carries a simulated error."""
    if not any(record.get("gen_error_sim") is not None for record in records):
        raise NoResultsYet(
            f"sweep {sweep.id} ({sweep.name}, workload {sweep.workload}) has no simulation "
            "results: this needs a dln_finetune sweep (a dln_theory sweep only has theory; "
            "pass it as theory_sweep to a figure of the simulation sweep)"
        )
