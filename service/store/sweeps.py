"""Sweep data access: create (with content-addressed trial dedup), read, list, cancel.

Every function takes a session and only flushes; the caller owns the transaction.
Rows are turned into wire schemas here and never returned to routes.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import exists, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from api_schemas.refine import RefineProgress
from api_schemas.spec import SweepSpec
from api_schemas.statuses import SweepStatus
from api_schemas.wire import (
    EXECUTING_PHASES,
    RunningTrial,
    SkippedSettingRead,
    SweepCounts,
    SweepPage,
    SweepRead,
    TrialPage,
    TrialRead,
)
from service.errors import BadCursor, SweepAlreadyFinished, SweepNotFound
from service.scheduling.fair_share import claim_rank
from service.store import claims, events, rounds, transitions
from service.store import sweep_listing as listing
from service.store.claims import ClaimPolicy
from service.store.clock import as_utc as _as_utc
from service.store.models import Sweep, SweepTrial, Trial
from service.store.progress import running_phases, running_progress, smoothed_eta
from workers.records import PlannedTrial, SkippedSetting

MAX_OFFSET = listing.MAX_OFFSET
TRIAL_CURSOR_PATTERN = "^[0-9]{1,19}$"
_INT64_MAX = 2**63 - 1


@dataclass(frozen=True)
class CreatedSweep:
    sweep_id: str
    new_trial_ids: list[int]
    cached_count: int


def find_by_idempotency_key(session: Session, submitter: str, key: str) -> tuple[str, str] | None:
    """(sweep id, spec hash) of the submitter's sweep made with ``key`` (keys are per
    submitter), or None."""
    row = session.execute(
        select(Sweep.id, Sweep.spec_hash).where(
            Sweep.submitter == submitter, Sweep.idempotency_key == key
        )
    ).first()
    return (row.id, row.spec_hash) if row is not None else None


def is_idempotency_race(exc: IntegrityError) -> bool:
    """Whether an IntegrityError is the per-submitter Idempotency-Key constraint (another
    request with the same key committed first), not some other integrity problem."""
    text = str(exc.orig)
    return "uq_sweeps_submitter_idempotency_key" in text or (
        "sweeps.submitter" in text and "sweeps.idempotency_key" in text
    )


def sweep_owner(session: Session, sweep_id: str) -> str:
    """The submitter who owns the sweep, or ``SweepNotFound``."""
    owner = session.scalar(select(Sweep.submitter).where(Sweep.id == sweep_id))
    if owner is None:
        raise SweepNotFound(f"no sweep with id {sweep_id!r}")
    return owner


def sweep_spec_hash(session: Session, sweep_id: str) -> str:
    return session.scalar(select(Sweep.spec_hash).where(Sweep.id == sweep_id)) or ""


def existing_trials(session: Session, keys: Sequence[str]) -> dict[str, tuple[int, str]]:
    """``{key: (trial id, status)}`` for the keys already stored."""
    return rounds.existing_trials(session, keys)


def create_sweep(
    session: Session,
    spec: SweepSpec,
    spec_hash: str,
    submitter: str,
    idempotency_key: str | None,
    planned: Sequence[PlannedTrial],
    *,
    priority_class: str = "interactive",
    requested_gpu_seconds: float = 0.0,
    skipped: Sequence[SkippedSetting] = (),
) -> CreatedSweep:
    """Insert the sweep, its new trials (status pending) and the links, in one flush;
    ``skipped`` (settings ``on_invalid: skip`` left out) is written with the sweep.

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
    stored = rounds.ensure_trials(
        session,
        spec.workload,
        spec.priority,
        unique,
        owner=submitter,
        rank=claim_rank(priority_class, spec.priority),
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
            cached_count=len(stored.cached_ids),
            cancel_requested=False,
            created_at=now,
            refine_round=0 if spec.refine is not None else None,
            priority_class=priority_class,
            requested_gpu_seconds=requested_gpu_seconds,
            skipped_settings=[_skipped_row(item) for item in skipped] or None,
        )
    )
    session.flush()
    rounds.link_trials(session, sweep_id, stored)
    events.sweep_created(session, sweep_id)
    return CreatedSweep(sweep_id, stored.new_ids, len(stored.cached_ids))


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


def _skipped_row(item: SkippedSetting) -> dict[str, Any]:
    return {
        "params": item.params,
        "reason": item.reason,
        "loc": list(item.loc),
        "type": item.kind,
        "trials": item.trials,
    }


def _to_read(
    session: Session, sweep: Sweep, counts: dict[str, int], *, with_spec: bool
) -> SweepRead:
    refine = _refine_progress(sweep)
    status = transitions.derive_sweep_status(
        counts,
        sweep.cancel_requested,
        refining=bool(refine and refine.refining),
        refine_stop=refine.stop_reason if refine else None,
    )
    total = sum(counts.values())
    done = sum(counts.get(state, 0) for state in transitions.FINAL_STATES)
    throughput = eta = None
    finished_at = None
    if with_spec or status != SweepStatus.PENDING:
        first_start, last_finish = _timing(session, sweep.id)
        first_start, last_finish = _as_utc(first_start), _as_utc(last_finish)
        computed = done - sweep.cached_count
        if first_start is not None and computed > 0:
            now = transitions.utcnow()
            end = last_finish if done == total and last_finish else now
            elapsed = max((end - first_start).total_seconds(), 1e-6)
            throughput = computed / elapsed
            eta = smoothed_eta(session, sweep.id, first_start, total - done, now)
        if done == total and not (refine and refine.refining):
            finished_at = last_finish
    running = []
    executing = queued = None
    if with_spec:
        executing, queued = 0, 0
        if counts.get(transitions.RUNNING):
            running = [
                RunningTrial(trial_id=trial_id, progress=progress)
                for trial_id, progress in running_progress(session, sweep.id)
            ]
            executing, queued = running_phases(
                session, sweep.id, EXECUTING_PHASES, counts[transitions.RUNNING]
            )
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
        executing=executing,
        queued_in_batch=queued,
        running=running,
        spec=SweepSpec.model_validate(sweep.spec) if with_spec else None,
        refine=refine,
        priority_class=sweep.priority_class,
        skipped=[SkippedSettingRead(**item) for item in sweep.skipped_settings or []]
        if with_spec
        else [],
    )


def _refine_progress(sweep: Sweep) -> RefineProgress | None:
    """A refine sweep's round and stop reason (None for other sweeps)."""
    if sweep.refine_round is None:
        return None
    return RefineProgress(
        round=sweep.refine_round,
        refining=sweep.refine_stop is None,
        stop_reason=sweep.refine_stop,
        budget=int((sweep.spec.get("refine") or {}).get("budget", sweep.trial_count)),
    )


def read_sweep(
    session: Session, sweep_id: str, *, wait_policy: ClaimPolicy | None = None
) -> SweepRead:
    """One sweep with its spec; with ``wait_policy``, why its pending trials wait."""
    sweep = _get(session, sweep_id)
    read = _to_read(session, sweep, _counts(session, [sweep_id])[sweep_id], with_spec=True)
    if wait_policy is not None and read.counts.pending:
        waiting = claims.wait_info(session, sweep_id, wait_policy, transitions.utcnow())
        read = read.model_copy(update={"waiting": waiting})
    return read


def list_sweeps(
    session: Session,
    *,
    limit: int,
    cursor: str | None = None,
    offset: int = 0,
    status: str | None = None,
    name: str | None = None,
    tag: str | None = None,
    submitter: str | None = None,
) -> SweepPage:
    """Newest first (``created_at`` desc, then ``id``), keyset-paged, counted in SQL.

    The derived status is computed in SQL (``listing.derived_status``) so a status
    filter, the total and the page are all one query each; only the page's sweeps are
    turned into ``SweepRead``.  ``cursor`` is the previous page's ``next_cursor``;
    ``offset`` (bounded by ``MAX_OFFSET``) skips rows after it.
    """
    conditions = listing.conditions(session, status=status, name=name, tag=tag, submitter=submitter)
    total = session.scalar(listing.count_statement(conditions)) or 0
    statement = listing.page_statement(conditions)
    if cursor:
        statement = statement.where(listing.after(listing.decode_cursor(cursor)))
    rows = list(session.scalars(statement.offset(offset).limit(limit + 1)))
    page = rows[:limit]
    counts = _counts(session, [sweep.id for sweep in page])
    reads = [_to_read(session, s, counts[s.id], with_spec=False) for s in page]
    next_cursor = listing.encode_cursor(page[-1]) if len(rows) > limit else None
    return SweepPage(items=reads, total=total, limit=limit, offset=offset, next_cursor=next_cursor)


def cancel_sweep(session: Session, sweep_id: str) -> SweepRead:
    """Cancel the sweep's pending and running trials that no live sweep still needs."""
    sweep = _get(session, sweep_id)
    counts = _counts(session, [sweep_id])[sweep_id]
    refining = sweep.refine_round is not None and sweep.refine_stop is None
    if not counts.get(transitions.PENDING) and not counts.get(transitions.RUNNING) and not refining:
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
        # The route's pattern admits only digits; the id column is a 64-bit integer.
        if not cursor.isascii() or not cursor.isdigit() or int(cursor) > _INT64_MAX:
            raise BadCursor(f"cursor {cursor!r} is not a cursor returned by this endpoint")
        after = int(cursor)
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
