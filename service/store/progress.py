"""Progress of running trials: written by the dispatcher, read with a sweep.

Workers never touch the database: they report to the runner (a Ray actor, or an
in-process board), the dispatcher polls it about once a second and stores the latest
report per trial here.  Writes are guarded like every running-trial write (status
running, this lease owner), so a finished trial's row is never changed.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from service.store import transitions
from service.store.models import SweepTrial, Trial

RUNNING_SHOWN = 100


def save_progress(session: Session, owner: str, reports: dict[int, dict[str, Any]]) -> int:
    """Store the latest report of each running trial this owner holds; rows changed."""
    if not reports:
        return 0
    table = Trial.__table__
    statement = (
        update(table)
        .where(
            table.c.id == bindparam("b_id"),
            table.c.status == transitions.RUNNING,
            table.c.lease_owner == bindparam("b_owner"),
        )
        .values(progress=bindparam("b_progress"))
        .execution_options(synchronize_session=False)
    )
    params = [
        {"b_id": trial_id, "b_owner": owner, "b_progress": report}
        for trial_id, report in reports.items()
    ]
    result = session.connection().execute(statement, params)
    return result.rowcount if result.rowcount is not None and result.rowcount >= 0 else len(params)


def running_progress(
    session: Session, sweep_id: str, limit: int = RUNNING_SHOWN
) -> list[tuple[int, dict[str, Any] | None]]:
    """(trial id, latest progress) of the sweep's running trials, oldest id first."""
    rows = session.execute(
        select(Trial.id, Trial.progress)
        .join(SweepTrial, SweepTrial.trial_id == Trial.id)
        .where(SweepTrial.sweep_id == sweep_id, Trial.status == transitions.RUNNING)
        .order_by(Trial.id)
        .limit(limit)
    )
    return [(trial_id, progress) for trial_id, progress in rows]


def next_pending_trial(session: Session) -> tuple[str, dict[str, Any], dict[str, Any]] | None:
    """(workload, params, execution) of the trial the next claim takes first (index-backed,
    one row; the dispatcher sizes its claim by it)."""
    row = session.execute(
        select(Trial.workload, Trial.params, Trial.execution)
        .where(Trial.status == transitions.PENDING)
        .order_by(Trial.priority.desc(), Trial.id)
        .limit(1)
    ).first()
    return None if row is None else (row.workload, dict(row.params), dict(row.execution))
