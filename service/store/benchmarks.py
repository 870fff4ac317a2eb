"""Benchmark runs, their metric values and thresholds: every SQL statement of the
benchmark feature.  Rows never leave this module; callers get frozen records.

Functions only ``flush()``; the request (or the caller's ``session_scope``) commits.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service.errors import Conflict, NotFound
from service.store.models import (
    BenchmarkRun,
    BenchmarkValue,
    SweepTrial,
    Trial,
)

JUDGED = ("pass", "fail", "inconclusive")  # runs whose values may serve as a baseline
RUN_FIELDS = tuple(c.name for c in BenchmarkRun.__table__.columns)


@dataclass(frozen=True)
class RunRecord:
    id: str
    suite: str
    suite_version: int
    mode: str
    status: str
    submitter: str
    idempotency_key: str | None
    request_hash: str
    repository: str | None
    commit: str | None
    branch: str | None
    base_commit: str | None
    pr_number: int | None
    machine: str
    machine_info: dict[str, Any] | None
    source: str | None
    sweep_ids: list[str]
    measurements: dict[str, Any] | None
    options: dict[str, Any] | None
    verdict: dict[str, Any] | None
    created_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True)
class ValueRecord:
    run_id: str
    metric: str
    value: float | None
    samples: tuple[float, ...]
    theory: float | None
    source: str
    outcome: str | None
    detail: dict[str, Any]
    acknowledged: dict[str, Any] | None


def _run(row: BenchmarkRun) -> RunRecord:
    return RunRecord(**{name: getattr(row, name) for name in RUN_FIELDS})


def _value(row: BenchmarkValue) -> ValueRecord:
    ack = None
    if row.acknowledged_at is not None:
        ack = {
            "by": row.acknowledged_by,
            "at": row.acknowledged_at.isoformat(),
            "reason": row.ack_reason,
        }
    return ValueRecord(
        row.run_id,
        row.metric,
        row.value,
        tuple(row.samples or ()),
        row.theory,
        row.source,
        row.outcome,
        dict(row.detail or {}),
        ack,
    )


def find_run_by_key(session: Session, submitter: str, key: str) -> tuple[str, str] | None:
    """(run id, request hash) of the submitter's run made with ``key``, or None."""
    row = session.execute(
        select(BenchmarkRun.id, BenchmarkRun.request_hash).where(
            BenchmarkRun.submitter == submitter, BenchmarkRun.idempotency_key == key
        )
    ).first()
    return (row.id, row.request_hash) if row is not None else None


def is_idempotency_race(exc: IntegrityError) -> bool:
    text = str(exc.orig)
    return "uq_benchmark_runs_idempotency" in text or "benchmark_runs.idempotency_key" in text


def insert_run(session: Session, **values: Any) -> str:
    """A new run in status ``running``; returns its id."""
    run_id = uuid.uuid4().hex
    session.add(BenchmarkRun(id=run_id, status="running", created_at=datetime.now(UTC), **values))
    session.flush()
    return run_id


def set_sweeps(session: Session, run_id: str, sweep_ids: list[str]) -> None:
    session.execute(
        update(BenchmarkRun).where(BenchmarkRun.id == run_id).values(sweep_ids=sweep_ids)
    )


def get_run(session: Session, run_id: str) -> RunRecord:
    """The run, or ``NotFound`` (404)."""
    row = session.get(BenchmarkRun, run_id)
    if row is None:
        raise NotFound(f"no benchmark run with id {run_id!r}")
    return _run(row)


def run_values(session: Session, run_id: str) -> list[ValueRecord]:
    rows = session.scalars(
        select(BenchmarkValue).where(BenchmarkValue.run_id == run_id).order_by(BenchmarkValue.id)
    )
    return [_value(row) for row in rows]


def baseline_runs(
    session: Session,
    run: RunRecord,
    *,
    branch: str | None = None,
    upto: datetime | None = None,
    run_ids: Sequence[str] | None = None,
    commit: str | None = None,
    limit: int = 100,
) -> list[RunRecord]:
    """Judged runs of the run's suite version on its machine, created before it (and not
    after ``upto``), filtered by branch, commit or ids; oldest first, the latest ``limit``."""
    query = select(BenchmarkRun).where(
        BenchmarkRun.suite == run.suite,
        BenchmarkRun.suite_version == run.suite_version,
        BenchmarkRun.status.in_(JUDGED),
        BenchmarkRun.id != run.id,
    )
    if run_ids is not None:
        query = query.where(BenchmarkRun.id.in_(list(run_ids)))
    else:
        query = query.where(
            BenchmarkRun.machine == run.machine, BenchmarkRun.created_at < run.created_at
        )
    if branch is not None:
        query = query.where(BenchmarkRun.branch == branch)
    if commit is not None:
        query = query.where(BenchmarkRun.commit == commit)
    elif run.commit is not None and run_ids is None:
        # a commit is never its own baseline (its reruns confirm, they do not judge)
        query = query.where(BenchmarkRun.commit.is_distinct_from(run.commit))
    if upto is not None:
        query = query.where(BenchmarkRun.created_at <= upto)
    rows = session.scalars(query.order_by(BenchmarkRun.created_at.desc()).limit(limit)).all()
    return [_run(row) for row in reversed(rows)]


def values_of(session: Session, run_ids: Sequence[str]) -> dict[tuple[str, str], ValueRecord]:
    """``{(run id, metric): value}`` of the given runs."""
    if not run_ids:
        return {}
    rows = session.scalars(select(BenchmarkValue).where(BenchmarkValue.run_id.in_(list(run_ids))))
    return {(row.run_id, row.metric): _value(row) for row in rows}


def finish_run(
    session: Session, run_id: str, status: str, verdict: dict[str, Any], values: list[dict]
) -> bool:
    """Record the judged run and its values once: False when another request already did
    (the update only matches a run still ``running``)."""
    result = session.execute(
        update(BenchmarkRun)
        .where(BenchmarkRun.id == run_id, BenchmarkRun.status == "running")
        .values(status=status, verdict=verdict, finished_at=datetime.now(UTC))
    )
    if result.rowcount != 1:
        return False
    session.add_all(BenchmarkValue(run_id=run_id, **value) for value in values)
    session.flush()
    return True


def sweep_span(session: Session, sweep_id: str) -> float | None:
    """Seconds from the sweep's first trial start to its last trial finish (None if none)."""
    first, last = session.execute(
        select(func.min(Trial.started_at), func.max(Trial.finished_at))
        .join(SweepTrial, SweepTrial.trial_id == Trial.id)
        .where(SweepTrial.sweep_id == sweep_id, Trial.status == "succeeded")
    ).one()
    if first is None or last is None:
        return None
    return (last - first).total_seconds()


def set_measurements(session: Session, run_id: str, measurements: dict[str, Any]) -> None:
    session.execute(
        update(BenchmarkRun).where(BenchmarkRun.id == run_id).values(measurements=measurements)
    )


def restatus(session: Session, run_id: str, status: str, verdict: dict[str, Any]) -> None:
    session.execute(
        update(BenchmarkRun).where(BenchmarkRun.id == run_id).values(status=status, verdict=verdict)
    )


def acknowledge(session: Session, run_id: str, metric: str, by: str, reason: str) -> None:
    """Mark one metric of a run acknowledged (404 when the run has no such metric)."""
    row = session.scalar(
        select(BenchmarkValue).where(
            BenchmarkValue.run_id == run_id, BenchmarkValue.metric == metric
        )
    )
    if row is None:
        raise NotFound(f"benchmark run {run_id!r} has no judged metric {metric!r}")
    if row.outcome != "regression":
        raise Conflict(f"metric {metric!r} of run {run_id} is {row.outcome}, not a regression")
    row.acknowledged_by, row.acknowledged_at, row.ack_reason = by, datetime.now(UTC), reason
    session.flush()


def history(
    session: Session,
    suite: str,
    metric: str,
    *,
    machine: str | None,
    branch: str | None,
    limit: int,
    submitter: str | None = None,
) -> list[tuple[RunRecord, ValueRecord]]:
    """The metric's judged values, oldest first (the latest ``limit``); only
    ``submitter``'s runs when given (restricted reads)."""
    query = (
        select(BenchmarkRun, BenchmarkValue)
        .join(BenchmarkValue, BenchmarkValue.run_id == BenchmarkRun.id)
        .where(BenchmarkRun.suite == suite, BenchmarkValue.metric == metric)
    )
    if machine is not None:
        query = query.where(BenchmarkRun.machine == machine)
    if branch is not None:
        query = query.where(BenchmarkRun.branch == branch)
    if submitter is not None:
        query = query.where(BenchmarkRun.submitter == submitter)
    rows = session.execute(query.order_by(BenchmarkRun.created_at.desc()).limit(limit)).all()
    return [(_run(run), _value(value)) for run, value in reversed(rows)]
