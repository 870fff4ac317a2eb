"""Progress of running trials: written by the dispatcher, read with a sweep.

Workers never touch the database: they report to the runner (a Ray actor, or an
in-process board), the dispatcher polls it about once a second and stores the latest
report per trial here.  Writes are guarded like every running-trial write (status
running, this lease owner), so a finished trial's row is never changed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, or_, select, update
from sqlalchemy.orm import Session

from service.scheduling.eta import estimate as eta_estimate
from service.store import transitions
from service.store.clock import as_utc
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


COMPLETIONS_READ = 5000


def completion_times(
    session: Session, sweep_id: str, limit: int = COMPLETIONS_READ
) -> list[datetime]:
    """When the sweep's computed trials (succeeded or failed, not cache hits) finished,
    the newest ``limit`` of them (for the smoothed rate, ``service.scheduling.eta``)."""
    rows = session.scalars(
        select(Trial.finished_at)
        .join(SweepTrial, SweepTrial.trial_id == Trial.id)
        .where(
            SweepTrial.sweep_id == sweep_id,
            SweepTrial.cached.is_(False),
            Trial.status.in_((transitions.SUCCEEDED, transitions.FAILED)),
            Trial.finished_at.is_not(None),
        )
        .order_by(Trial.finished_at.desc())
        .limit(limit)
    )
    return [as_utc(moment) for moment in rows]


def smoothed_eta(
    session: Session, sweep_id: str, first_start: datetime, remaining: int, now: datetime
) -> float | None:
    """The ETA from the exponentially weighted completion rate (``scheduling.eta``), for
    ``GET /v1/sweeps/{id}`` and the event stream alike.

    Only the newest ``COMPLETIONS_READ`` completions are read; when there are more, the
    window starts at the oldest of them (older ones weigh ``exp(-age/tau)``, nothing)."""
    times = [moment.timestamp() for moment in completion_times(session, sweep_id)]
    start = first_start.timestamp()
    if len(times) >= COMPLETIONS_READ:
        start = min(times)
        times = [moment for moment in times if moment > start]
    return eta_estimate(times, start, remaining, now.timestamp()).eta_s


def running_phases(
    session: Session, sweep_id: str, executing_phases: frozenset[str], running: int
) -> tuple[int, int]:
    """(executing, waiting) among the sweep's ``running`` running trials.

    Executing: the latest report of the current claim (sent after the claim's
    ``started_at``; an older one is from an earlier attempt) names a phase in
    ``executing_phases``.  Waiting: the rest of the running trials: claimed and in
    flight but not computed now (in Ray's queue, waiting for their block inside a batch,
    or finished inside a batch that still runs).

    Counted in SQL (the phase by ``JSON_EXTRACT`` / ``->>``, the claim's start as Unix
    time): reading and parsing every running trial's report made a GET of a sweep with
    thousands of running trials spend most of its time here.
    """
    phase = Trial.progress["phase"].as_string()
    updated_at = Trial.progress["updated_at"].as_float()
    executing = session.scalar(
        select(func.count())
        .select_from(Trial)
        .join(SweepTrial, SweepTrial.trial_id == Trial.id)
        .where(
            SweepTrial.sweep_id == sweep_id,
            Trial.status == transitions.RUNNING,
            phase.in_(sorted(executing_phases)),
            or_(
                Trial.started_at.is_(None),
                updated_at >= _unix_time(session, Trial.started_at) - CLOCK_SKEW_S,
            ),
        )
    )
    executing = int(executing or 0)
    return executing, max(running - executing, 0)


def _unix_time(session: Session, column: Any) -> Any:
    """SQL for a stored UTC timestamp as Unix seconds (PostgreSQL, SQLite)."""
    if session.get_bind().dialect.name == "postgresql":
        return func.extract("epoch", column)
    return (func.julianday(column) - 2440587.5) * 86400.0


# Workers and the dispatcher may run on different hosts.
CLOCK_SKEW_S = 1.0
