"""The one place a trial's status changes.

State machine (DESIGN.md): ``pending → running → succeeded | failed | cancelled``, with
``running → pending`` only on lease expiry or retry, and ``pending → cancelled``.
Finished trials are immutable: every UPDATE here is guarded by the allowed source
states (and, for a running trial, by the lease owner), so a late or duplicate write
from a dispatcher that lost its lease changes nothing.  A sweep's status is derived
from its trials (``derive_sweep_status``), never stored.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, or_, select, update
from sqlalchemy.orm import Session

from service.store.models import Trial

PENDING, RUNNING, SUCCEEDED, FAILED, CANCELLED = (
    "pending",
    "running",
    "succeeded",
    "failed",
    "cancelled",
)
FINAL_STATES = frozenset({SUCCEEDED, FAILED, CANCELLED})
# Stop reasons of a succeeded trial that say "the machine ran out", not "this is the
# result": such a trial is no permanent cache entry; a new sweep that asks for it
# revives it like a failed one (``revive_trials``).
RESOURCE_STOPS: tuple[str, ...] = ("oom", "time_limit")
ALLOWED: dict[str, frozenset[str]] = {
    PENDING: frozenset({RUNNING, CANCELLED}),
    RUNNING: frozenset({SUCCEEDED, FAILED, CANCELLED, PENDING}),
    SUCCEEDED: frozenset(),
    # A failed or cancelled trial has no result; a *new* sweep that asks for it again
    # revives it (``revive_trials``).  Its error and timings are reset, nothing else of a
    # finished trial ever changes.
    FAILED: frozenset({PENDING}),
    CANCELLED: frozenset({PENDING}),
}
# …and a succeeded trial whose stop_reason is in RESOURCE_STOPS may be revived too.


def sources_of(target: str) -> list[str]:
    """States from which ``target`` may be entered."""
    return sorted(state for state, targets in ALLOWED.items() if target in targets)


def utcnow() -> datetime:
    return datetime.now(UTC)


def claim_pending(
    session: Session, owner: str, limit: int, lease_seconds: float, *, postgres: bool
) -> list[Trial]:
    """pending → running for up to ``limit`` trials: highest priority first, then oldest.

    On PostgreSQL the candidate rows are locked with ``FOR UPDATE SKIP LOCKED`` so
    several dispatchers (API replicas) claim disjoint sets; on SQLite the write lock
    serializes claims.  Each claimed trial gets a lease and one more attempt.
    """
    now = utcnow()
    candidates = (
        select(Trial.id)
        .where(Trial.status == PENDING)
        .order_by(Trial.priority.desc(), Trial.id)
        .limit(limit)
    )
    if postgres:
        candidates = candidates.with_for_update(skip_locked=True)
    ids = list(session.scalars(candidates))
    if not ids:
        return []
    session.execute(
        update(Trial)
        .where(Trial.id.in_(ids), Trial.status.in_(sources_of(RUNNING)))
        .values(
            status=RUNNING,
            lease_owner=owner,
            lease_expires_at=now + timedelta(seconds=lease_seconds),
            attempts=Trial.attempts + 1,
            started_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    claimed = list(
        session.scalars(
            select(Trial)
            .where(Trial.id.in_(ids), Trial.status == RUNNING, Trial.lease_owner == owner)
            .order_by(Trial.priority.desc(), Trial.id)
        )
    )
    session.flush()
    return claimed


def finish_running(
    session: Session, owner: str, outcomes: Sequence[tuple[int, dict[str, Any]]]
) -> int:
    """running → succeeded | failed for trials this owner still holds, in bulk.

    Each outcome is ``(trial_id, values)`` where ``values["status"]`` is the target and
    the other keys are result columns.  Trials no longer held (lease lost, cancelled)
    are left untouched: the write is idempotent.  Returns the rows changed.
    """
    if not outcomes:
        return 0
    now = utcnow()
    rows = []
    columns: set[str] = set()
    for trial_id, values in outcomes:
        target = values["status"]
        if target not in (SUCCEEDED, FAILED):
            raise ValueError(f"finish_running cannot enter {target!r}")
        row = {k: v for k, v in values.items() if k != "status"}
        columns.update(row)
        rows.append((trial_id, target, row))
    params = []
    for trial_id, target, row in rows:
        params.append(
            {
                "b_id": trial_id,
                "b_owner": owner,
                "status": target,
                "finished_at": now,
                "lease_owner": None,
                "lease_expires_at": None,
                **{column: row.get(column) for column in columns},
            }
        )
    statement = (
        update(Trial.__table__)
        .where(
            and_(
                Trial.__table__.c.id == bindparam("b_id"),
                Trial.__table__.c.status == RUNNING,
                Trial.__table__.c.lease_owner == bindparam("b_owner"),
            )
        )
        .execution_options(synchronize_session=False)
    )
    result = session.connection().execute(statement, params)
    return result.rowcount if result.rowcount is not None and result.rowcount >= 0 else len(rows)


def requeue_running(session: Session, owner: str, trial_ids: Iterable[int], error: str) -> int:
    """running → pending for a retry (the batch failed; attempts stay counted)."""
    ids = list(trial_ids)
    if not ids:
        return 0
    result = session.execute(
        update(Trial)
        .where(Trial.id.in_(ids), Trial.status == RUNNING, Trial.lease_owner == owner)
        .values(status=PENDING, lease_owner=None, lease_expires_at=None, error=error[:4000])
        .execution_options(synchronize_session=False)
    )
    return result.rowcount


def expire_leases(session: Session, max_attempts: int) -> tuple[int, int]:
    """running → pending for every expired lease; → failed once attempts are used up.

    Returns (requeued, failed).  Safe to run from any dispatcher at any time.
    """
    now = utcnow()
    expired = and_(Trial.status == RUNNING, Trial.lease_expires_at < now)
    failed = session.execute(
        update(Trial)
        .where(expired, Trial.attempts >= max_attempts)
        .values(
            status=FAILED,
            lease_owner=None,
            lease_expires_at=None,
            finished_at=now,
            error="lease expired after the last attempt (worker or dispatcher lost)",
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    requeued = session.execute(
        update(Trial)
        .where(expired, Trial.attempts < max_attempts)
        .values(status=PENDING, lease_owner=None, lease_expires_at=None)
        .execution_options(synchronize_session=False)
    ).rowcount
    return requeued, failed


def cancel_trials(session: Session, trial_ids: Iterable[int]) -> int:
    """pending | running → cancelled.  Running batches notice and drop their results."""
    ids = list(trial_ids)
    if not ids:
        return 0
    now = utcnow()
    changed = 0
    for chunk in _chunks(ids, 5000):
        changed += session.execute(
            update(Trial)
            .where(Trial.id.in_(chunk), Trial.status.in_(sources_of(CANCELLED)))
            .values(status=CANCELLED, lease_owner=None, lease_expires_at=None, finished_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
    return changed


def revive_trials(session: Session, trial_ids: Iterable[int], priority: int) -> int:
    """failed | cancelled | succeeded-on-a-resource-limit → pending, when a new sweep
    asks for these trials again."""
    revivable = or_(
        Trial.status.in_([FAILED, CANCELLED]),
        and_(Trial.status == SUCCEEDED, Trial.stop_reason.in_(RESOURCE_STOPS)),
    )
    changed = 0
    for chunk in _chunks(list(trial_ids), 5000):
        changed += session.execute(
            update(Trial)
            .where(Trial.id.in_(chunk), revivable)
            .values(
                status=PENDING,
                attempts=0,
                error=None,
                started_at=None,
                finished_at=None,
                priority=priority,
            )
            .execution_options(synchronize_session=False)
        ).rowcount
    return changed


def derive_sweep_status(counts: dict[str, int], cancel_requested: bool) -> str:
    """A sweep's status from its trials' counts.

    running while anything is running (or some pending and some finished); pending when
    all pending; once all are final: cancelled if cancel was requested, succeeded if all
    succeeded, failed if none succeeded, partial otherwise.
    """
    total = sum(counts.values())
    active = counts.get(PENDING, 0) + counts.get(RUNNING, 0)
    if total == 0:
        return SUCCEEDED
    if active:
        if counts.get(RUNNING, 0) or active < total:
            return RUNNING
        return PENDING
    if cancel_requested and counts.get(CANCELLED, 0):
        return CANCELLED
    if counts.get(SUCCEEDED, 0) == total:
        return SUCCEEDED
    if counts.get(SUCCEEDED, 0) == 0:
        return FAILED
    return "partial"


def _chunks(items: list[int], size: int) -> Iterable[list[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
