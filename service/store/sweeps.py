"""Sweep data access: create (with content-addressed trial dedup), read, list, cancel.

Every function takes a session and only flushes; the caller owns the transaction.
Rows are turned into wire schemas here and never returned to routes.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import exists, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, aliased

from api_schemas.spec import SweepSpec
from api_schemas.statuses import SweepStatus
from api_schemas.wire import (
    RunningTrial,
    SweepCounts,
    SweepPage,
    SweepRead,
    TrialPage,
    TrialRead,
)
from service.errors import BadCursor, SweepAlreadyFinished, SweepNotFound
from service.store import events, transitions
from service.store.models import Sweep, SweepTrial, Trial
from service.store.progress import running_progress
from service.store.typed import typed_columns
from workers.records import PlannedTrial

_CHUNK = 2000


@dataclass(frozen=True)
class CreatedSweep:
    sweep_id: str
    new_trial_ids: list[int]
    cached_count: int


def _dialect_insert(session: Session):  # noqa: ANN202 - dialect-specific Insert
    name = session.get_bind().dialect.name
    return postgresql.insert if name == "postgresql" else sqlite.insert


def find_by_idempotency_key(session: Session, key: str) -> Sweep | None:
    return session.scalar(select(Sweep).where(Sweep.idempotency_key == key))


def sweep_spec_hash(session: Session, sweep_id: str) -> str:
    return session.scalar(select(Sweep.spec_hash).where(Sweep.id == sweep_id)) or ""


def existing_trials(session: Session, keys: Sequence[str]) -> dict[str, tuple[int, str]]:
    """``{key: (trial id, status)}`` for the keys already stored."""
    found: dict[str, tuple[int, str]] = {}
    unique = list(dict.fromkeys(keys))
    for start in range(0, len(unique), _CHUNK):
        chunk = unique[start : start + _CHUNK]
        for trial_id, key, status in session.execute(
            select(Trial.id, Trial.key, Trial.status).where(Trial.key.in_(chunk))
        ):
            found[key] = (trial_id, status)
    return found


def create_sweep(
    session: Session,
    spec: SweepSpec,
    spec_hash: str,
    submitter: str,
    idempotency_key: str | None,
    planned: Sequence[PlannedTrial],
) -> CreatedSweep:
    """Insert the sweep, its new trials (status pending) and the links, in one flush.

    A trial key already stored is reused: with a result (succeeded) it counts as
    cached; pending or running it is shared; failed or cancelled it is revived.
    Concurrent submissions of the same new key are resolved by ``ON CONFLICT DO
    NOTHING`` on the unique key, so no duplicate trial can exist.
    """
    now = transitions.utcnow()
    sweep_id = uuid.uuid4().hex
    unique: dict[str, PlannedTrial] = {}
    for trial in planned:
        unique.setdefault(trial.key, trial)
    before = existing_trials(session, list(unique))
    rows = [
        {
            "key": trial.key,
            "workload": spec.workload,
            "params": trial.params,
            "execution": trial.execution,
            "batch_key": trial.batch_key,
            "theory_key": trial.theory_key,
            "status": transitions.PENDING,
            "priority": spec.priority,
            "attempts": 0,
            "created_at": now,
            **typed_columns(trial.params, trial.seed),
            "group_key": trial.group_key,
        }
        for trial in unique.values()
        if trial.key not in before
    ]
    insert = _dialect_insert(session)
    # executemany form: one cached statement, batched by the driver; a multi-VALUES
    # literal with 50k bind parameters costs more to compile than to run.
    if rows:
        session.execute(insert(Trial).on_conflict_do_nothing(index_elements=["key"]), rows)
    after = existing_trials(session, list(unique))
    cached = [after[key][0] for key in unique if after[key][1] == transitions.SUCCEEDED]
    revive = [
        after[key][0]
        for key in unique
        if after[key][1] in (transitions.FAILED, transitions.CANCELLED)
    ]
    transitions.revive_trials(session, revive, spec.priority)
    # A higher-priority sweep lifts the priority of pending trials it shares.
    shared_pending = [after[key][0] for key in before if before[key][1] == transitions.PENDING]
    for start in range(0, len(shared_pending), _CHUNK):
        session.execute(
            update(Trial)
            .where(Trial.id.in_(shared_pending[start : start + _CHUNK]))
            .where(Trial.priority < spec.priority)
            .values(priority=spec.priority)
            .execution_options(synchronize_session=False)
        )
    session.add(
        Sweep(
            id=sweep_id,
            name=spec.name,
            workload=spec.workload,
            submitter=submitter,
            priority=spec.priority,
            tags=list(spec.tags),
            spec=spec.model_dump(mode="json"),
            spec_hash=spec_hash,
            idempotency_key=idempotency_key,
            trial_count=len(unique),
            cached_count=len(cached),
            cancel_requested=False,
            created_at=now,
        )
    )
    session.flush()
    cached_ids = set(cached)
    links = [
        {"sweep_id": sweep_id, "trial_id": after[key][0], "cached": after[key][0] in cached_ids}
        for key in unique
    ]
    if links:
        session.execute(insert(SweepTrial), links)
    session.flush()
    events.sweep_created(session, sweep_id)
    new_ids = [after[key][0] for key in unique if after[key][0] not in cached_ids]
    return CreatedSweep(sweep_id, new_ids, len(cached))


def _get(session: Session, sweep_id: str) -> Sweep:
    sweep = session.get(Sweep, sweep_id)
    if sweep is None:
        raise SweepNotFound(f"no sweep with id {sweep_id!r}")
    return sweep


def _counts(session: Session, sweep_ids: Sequence[str]) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {sweep_id: {} for sweep_id in sweep_ids}
    if not sweep_ids:
        return counts
    rows = session.execute(
        select(SweepTrial.sweep_id, Trial.status, func.count())
        .join(Trial, Trial.id == SweepTrial.trial_id)
        .where(SweepTrial.sweep_id.in_(list(sweep_ids)))
        .group_by(SweepTrial.sweep_id, Trial.status)
    )
    for sweep_id, status, count in rows:
        counts[sweep_id][status] = count
    return counts


def _timing(session: Session, sweep_id: str) -> tuple[datetime | None, datetime | None]:
    return session.execute(
        select(func.min(Trial.started_at), func.max(Trial.finished_at))
        .join(SweepTrial, SweepTrial.trial_id == Trial.id)
        .where(SweepTrial.sweep_id == sweep_id, SweepTrial.cached.is_(False))
    ).one()


def _as_utc(moment: datetime | None) -> datetime | None:
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=transitions.utcnow().tzinfo)
    return moment


def _to_read(
    session: Session, sweep: Sweep, counts: dict[str, int], *, with_spec: bool
) -> SweepRead:
    status = transitions.derive_sweep_status(counts, sweep.cancel_requested)
    total = sum(counts.values())
    done = sum(counts.get(state, 0) for state in transitions.FINAL_STATES)
    throughput = eta = None
    finished_at = None
    if with_spec or status != SweepStatus.PENDING:
        first_start, last_finish = _timing(session, sweep.id)
        first_start, last_finish = _as_utc(first_start), _as_utc(last_finish)
        computed = done - sweep.cached_count
        if first_start is not None and computed > 0:
            end = last_finish if done == total and last_finish else transitions.utcnow()
            elapsed = max((end - first_start).total_seconds(), 1e-6)
            throughput = computed / elapsed
            eta = (total - done) / throughput if throughput > 0 else None
        if done == total:
            finished_at = last_finish
    running = []
    if with_spec and counts.get(transitions.RUNNING):
        running = [
            RunningTrial(trial_id=trial_id, progress=progress)
            for trial_id, progress in running_progress(session, sweep.id)
        ]
    return SweepRead(
        id=sweep.id,
        name=sweep.name,
        workload=sweep.workload,
        submitter=sweep.submitter,
        priority=sweep.priority,
        tags=list(sweep.tags or []),
        status=status,
        created_at=_as_utc(sweep.created_at),
        finished_at=finished_at,
        trial_count=sweep.trial_count,
        cached_count=sweep.cached_count,
        counts=SweepCounts(**counts),
        progress=(done / total) if total else 1.0,
        throughput_per_s=throughput,
        eta_s=eta,
        running=running,
        spec=SweepSpec.model_validate(sweep.spec) if with_spec else None,
    )


def read_sweep(session: Session, sweep_id: str) -> SweepRead:
    sweep = _get(session, sweep_id)
    return _to_read(session, sweep, _counts(session, [sweep_id])[sweep_id], with_spec=True)


def list_sweeps(
    session: Session,
    *,
    limit: int,
    offset: int,
    status: str | None = None,
    name: str | None = None,
    tag: str | None = None,
    submitter: str | None = None,
) -> SweepPage:
    """Newest first.  Status is derived, so that filter is applied after counting."""
    query = select(Sweep).order_by(Sweep.created_at.desc(), Sweep.id)
    if name:
        query = query.where(Sweep.name == name)
    if submitter:
        query = query.where(Sweep.submitter == submitter)
    sweeps = list(session.scalars(query))
    if tag:
        sweeps = [sweep for sweep in sweeps if tag in (sweep.tags or [])]
    counts = _counts(session, [sweep.id for sweep in sweeps])
    reads = [_to_read(session, s, counts[s.id], with_spec=False) for s in sweeps]
    if status:
        reads = [read for read in reads if read.status == status]
    return SweepPage(
        items=reads[offset : offset + limit], total=len(reads), limit=limit, offset=offset
    )


def cancel_sweep(session: Session, sweep_id: str) -> SweepRead:
    """Cancel the sweep's pending and running trials that no live sweep still needs."""
    sweep = _get(session, sweep_id)
    counts = _counts(session, [sweep_id])[sweep_id]
    if not counts.get(transitions.PENDING) and not counts.get(transitions.RUNNING):
        raise SweepAlreadyFinished(f"sweep {sweep_id} has no pending or running trials")
    sweep.cancel_requested = True
    session.flush()
    other_link = aliased(SweepTrial)
    other_sweep = aliased(Sweep)
    needed_elsewhere = exists(
        select(other_link.trial_id)
        .join(other_sweep, other_sweep.id == other_link.sweep_id)
        .where(
            other_link.trial_id == SweepTrial.trial_id,
            other_link.sweep_id != sweep_id,
            other_sweep.cancel_requested.is_(False),
        )
    )
    ids = list(
        session.scalars(
            select(SweepTrial.trial_id)
            .join(Trial, Trial.id == SweepTrial.trial_id)
            .where(
                SweepTrial.sweep_id == sweep_id,
                Trial.status.in_([transitions.PENDING, transitions.RUNNING]),
                ~needed_elsewhere,
            )
        )
    )
    transitions.cancel_trials(session, ids)
    session.flush()
    return read_sweep(session, sweep_id)


def list_trials(
    session: Session,
    sweep_id: str,
    *,
    limit: int,
    cursor: str | None,
    status: str | None,
    since: int | None = None,
) -> TrialPage:
    """Trials of one sweep by id, keyset-paginated (cursor = last trial id seen);
    ``since``: only those changed after that event sequence number."""
    _get(session, sweep_id)
    after = 0
    if cursor:
        try:
            after = int(cursor)
        except ValueError:
            raise BadCursor(
                f"cursor {cursor!r} is not a cursor returned by this endpoint"
            ) from None
    query = (
        select(Trial)
        .join(SweepTrial, SweepTrial.trial_id == Trial.id)
        .where(SweepTrial.sweep_id == sweep_id, Trial.id > after)
        .order_by(Trial.id)
        .limit(limit + 1)
    )
    if status:
        query = query.where(Trial.status == status)
    if since is not None:
        query = query.where(Trial.updated_seq > since)
    rows = list(session.scalars(query))
    items = [
        TrialRead(
            id=row.id,
            key=row.key,
            workload=row.workload,
            status=row.status,
            params=row.params,
            seed=row.seed,
            attempts=row.attempts,
            error=row.error,
            created_at=_as_utc(row.created_at),
            started_at=_as_utc(row.started_at),
            finished_at=_as_utc(row.finished_at),
        )
        for row in rows[:limit]
    ]
    next_cursor = str(rows[limit - 1].id) if len(rows) > limit else None
    return TrialPage(items=items, next_cursor=next_cursor)
