"""The one place a trial's status changes.

State machine (DESIGN.md): ``pending → running → succeeded | failed | cancelled``, with
``running → pending`` only on lease expiry, retry, release or the end of a leg
(:func:`continue_running`), ``pending → cancelled``, and
``failed | cancelled → pending`` when a new sweep asks for the trial again.  Every
function here names its source states and its target, and :func:`_leaving` checks each
pair against :data:`ALLOWED` before any SQL runs, so a transition outside the table is a
programming error, not a silent write.

Finished trials are immutable: every UPDATE is guarded by its source states and, for a
running trial, by the claim that holds it (lease owner *and* attempt), so a late or
duplicate write from a dispatcher that lost its lease changes nothing — even when the
same dispatcher has re-claimed the trial since.  A sweep's status is derived from its
trials (:func:`derive_sweep_status`), never stored; a refine sweep also counts as
running while its refinement goes on, and its rounds move only through
:func:`advance_refine_round` and :func:`finish_refinement` (round r → r + 1, or round r →
stopped with a reason; a stopped refinement never restarts), each guarded by the round
it expects, so two dispatchers can never both add round r + 1.

Every UPDATE also stamps ``updated_seq`` (``events.stamp``), so the transaction's commit
records what changed as events (``service/store/events.py``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.orm import Session

from api_schemas.result_columns import residual
from api_schemas.statuses import FINAL_TRIAL_STATES, SweepStatus, TrialStatus
from service.store import claims, events
from service.store.claims import ClaimPolicy
from service.store.models import Sweep, Trial, TrialState
from workers.records import ClaimedTrial

# Plain strings of the enum's values: what the status column holds and drivers bind.
PENDING, RUNNING, SUCCEEDED, FAILED, CANCELLED = (
    TrialStatus.PENDING.value,
    TrialStatus.RUNNING.value,
    TrialStatus.SUCCEEDED.value,
    TrialStatus.FAILED.value,
    TrialStatus.CANCELLED.value,
)
FINAL_STATES = frozenset(state.value for state in FINAL_TRIAL_STATES)
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
_CHUNK = 5000
# Stop reasons of a succeeded trial that say "the machine ran out", not "this is the
# result": such a trial is no permanent cache entry.  A new sweep that asks for it
# revives it (``revive_trials``); it is the one way out of ``succeeded``, and only for
# these, so every real result stays immutable.
RESOURCE_STOPS: tuple[str, ...] = ("oom", "time_limit")


class IllegalTransition(RuntimeError):
    """A store function asked for a move the table does not allow (a bug, not input)."""


def sources_of(target: str) -> list[str]:
    """States from which ``target`` may be entered."""
    return sorted(state for state, targets in ALLOWED.items() if target in targets)


def _leaving(sources: Iterable[str], target: str) -> ColumnElement[bool]:
    """``status IN sources`` after checking every ``source → target`` against the table."""
    states = sorted(set(sources))
    illegal = [state for state in states if target not in ALLOWED[state]]
    if illegal:
        raise IllegalTransition(f"{', '.join(illegal)} → {target} is not in the table")
    return Trial.status == states[0] if len(states) == 1 else Trial.status.in_(states)


def utcnow() -> datetime:
    return datetime.now(UTC)


def claim_pending(
    session: Session,
    owner: str,
    limit: int,
    lease_seconds: float,
    *,
    postgres: bool,
    fair_share: ClaimPolicy | None = None,
) -> list[ClaimedTrial]:
    """pending → running for about ``limit`` trials, in whole groups.

    With ``fair_share``, the trials come from each user's queue in fair-share order
    (``service.store.claims``); without it, highest priority first, then oldest.  Every
    pending trial of a group the claim touches comes along (``claims.whole_groups``: the
    trials sharing a dataset or a theory curve): ``limit`` bounds the groups added, it
    never splits one, and a group larger than ``limit`` is claimed whole, alone.  On
    PostgreSQL the candidate rows are locked with ``FOR UPDATE SKIP LOCKED`` so several
    dispatchers (API replicas) claim disjoint sets; on SQLite the write lock serializes
    claims.  Each claimed trial gets a lease and one more attempt; the returned records
    carry that attempt, which guards every later write of this claim.
    """
    now = utcnow()
    usage: dict[str, float] = {}
    caps: dict[str, int | None] = {}
    if fair_share is not None:
        candidates, usage, caps = claims.fair_candidates(
            session, limit, fair_share, now, postgres=postgres
        )
    else:
        candidates = claims.plain_candidates(session, limit, postgres=postgres)
    ids = claims.whole_groups(session, candidates, limit, caps, postgres=postgres)
    if not ids:
        return []
    table = Trial.__table__
    # One statement per chunk: the status change returns what the records need (no ORM
    # rows).  A claim passes ``limit`` only by one group larger than it.
    stamp = events.stamp(session)
    returned = []
    for start in range(0, len(ids), _CHUNK):
        returned += session.execute(
            update(table)
            .where(table.c.id.in_(ids[start : start + _CHUNK]), _leaving([PENDING], RUNNING))
            .values(
                status=RUNNING,
                lease_owner=owner,
                lease_expires_at=now + timedelta(seconds=lease_seconds),
                attempts=table.c.attempts + 1,
                started_at=now,
                updated_seq=stamp,
            )
            .returning(*(table.c[name] for name in claims.CLAIMED_COLUMNS))
        ).all()
    by_id = {row.id: claims.record_of(row) for row in returned}
    _attach_states(session, by_id)
    claimed = [by_id[i] for i in ids if i in by_id]  # in the order they were chosen
    if fair_share is not None:
        claims.charge(session, [t.owner for t in claimed], usage, now)
    session.flush()
    return claimed


def _attach_states(session: Session, by_id: dict[int, ClaimedTrial]) -> None:
    """Give each claimed trial run in legs the state its last leg saved (if any)."""
    in_legs = [i for i, t in by_id.items() if t.execution.get("leg_steps") is not None]
    states = TrialState.__table__
    for start in range(0, len(in_legs), _CHUNK):
        rows = session.execute(
            select(
                states.c.trial_id, states.c.step, states.c.state, states.c.seconds, states.c.legs
            ).where(states.c.trial_id.in_(in_legs[start : start + _CHUNK]))
        ).all()
        for row in rows:
            by_id[row.trial_id] = dataclasses.replace(
                by_id[row.trial_id],
                resume_state=bytes(row.state),
                resume_step=row.step,
                resume_seconds=row.seconds,
                resume_legs=row.legs,
            )


def _handed_back(session: Session, table: Any) -> dict[str, Any]:
    """The values of a running trial handed back unfinished but not failed (a clean
    shutdown's release, the end of a leg): pending, the lease cleared so that any
    dispatcher can claim it at once, and the attempt given back."""
    return {
        "status": PENDING,
        "lease_owner": None,
        "lease_expires_at": None,
        "attempts": table.c.attempts - 1,
        "started_at": None,
        "progress": None,
        "updated_seq": events.stamp(session),
    }


def _held_by_claim(table: Any) -> ColumnElement[bool]:
    """The row is still held by the claim in the bound parameters (owner and attempt)."""
    return and_(
        table.c.id == bindparam("b_id"),
        table.c.status == RUNNING,
        table.c.lease_owner == bindparam("b_owner"),
        table.c.attempts == bindparam("b_attempt"),
    )


def _executemany(session: Session, statement: Any, params: list[dict[str, Any]]) -> int:
    if not params:
        return 0
    result = session.connection().execute(statement, params)
    count = result.rowcount
    return count if count is not None and count >= 0 else len(params)


def finish_running(
    session: Session,
    owner: str,
    finished: Sequence[tuple[ClaimedTrial, Any]],
    asymptotic: Mapping[str, float | None] | None = None,
) -> int:
    """running → succeeded | failed for the given (claim, outcome) pairs, in bulk.

    A succeeded outcome writes every outcome column; its replica value comes from the
    outcome itself or from ``asymptotic`` (``{theory key: value}``, the shared ledger),
    and the residuals are derived here.  A failed outcome writes its error.  Claims no
    longer held (lease lost, re-claimed, cancelled) are left untouched: the write is
    idempotent.  Returns the rows changed.
    """
    _leaving([RUNNING], SUCCEEDED)
    _leaving([RUNNING], FAILED)
    now = utcnow()
    asymptotic = asymptotic or {}
    continuing = [(claim, outcome) for claim, outcome in finished if outcome.continues]
    finished = [(claim, outcome) for claim, outcome in finished if not outcome.continues]
    changed = continue_running(session, owner, continuing)
    succeeded, failed = [], []
    for claim, outcome in finished:
        guard = {"b_id": claim.trial_id, "b_owner": owner, "b_attempt": claim.attempt}
        if not outcome.ok:
            failed.append({**guard, "error": str(outcome.error)[:4000]})
            continue
        values = outcome.columns()
        if values["gen_error_asymptotic"] is None and claim.theory_key:
            values["gen_error_asymptotic"] = asymptotic.get(claim.theory_key)
        sim = values["gen_error_sim"]
        values["residual_theory"] = residual(sim, values["gen_error_theory"])
        values["residual_asymptotic"] = residual(sim, values["gen_error_asymptotic"])
        succeeded.append({**guard, **values, "error": None})
    table = Trial.__table__
    done = {"finished_at": now, "lease_owner": None, "lease_expires_at": None}
    done["updated_seq"] = events.stamp(session)
    if succeeded:
        columns = [name for name in succeeded[0] if not name.startswith("b_")]
        statement = (
            update(table)
            .where(_held_by_claim(table))
            .values(status=SUCCEEDED, **done, **{c: bindparam(c) for c in columns})
        )
        changed += _executemany(session, statement, succeeded)
    if failed:
        statement = (
            update(table)
            .where(_held_by_claim(table))
            .values(status=FAILED, error=bindparam("error"), **done)
        )
        changed += _executemany(session, statement, failed)
    in_legs = [c.trial_id for c, o in finished if o.ok and c.execution.get("leg_steps")]
    if in_legs:
        # A result makes the saved state useless; only that of a trial now succeeded goes
        # (a write this claim no longer held leaves the new holder's state alone).
        states = TrialState.__table__
        trials = Trial.__table__
        is_done = select(trials.c.status).where(trials.c.id == states.c.trial_id).scalar_subquery()
        for start in range(0, len(in_legs), _CHUNK):
            session.execute(
                delete(states).where(
                    states.c.trial_id.in_(in_legs[start : start + _CHUNK]), is_done == SUCCEEDED
                )
            )
    return changed


def continue_running(
    session: Session, owner: str, continuing: Sequence[tuple[ClaimedTrial, Any]]
) -> int:
    """running → pending for trials whose leg ended unfinished (``TrialOutcome.continuing``),
    saving the state their next leg starts from.

    Guarded by the claim (owner and attempt) *and* by the state the leg started from
    (``ClaimedTrial.resume_step`` must still be the stored step): the attempt is given
    back (a leg is no failure, and a trial may need more legs than ``MAX_ATTEMPTS``), so
    the next claim has the same attempt, and only the step tells a replayed write of
    this leg from the next leg's.  The state row is written only where the trial's row
    changed.  Returns the trials moved.
    """
    if not continuing:
        return 0
    _leaving([RUNNING], PENDING)
    table, states = Trial.__table__, TrialState.__table__
    now = utcnow()
    stored_step = func.coalesce(
        select(states.c.step).where(states.c.trial_id == table.c.id).scalar_subquery(), 0
    )
    statement = (
        update(table)
        .where(_held_by_claim(table), stored_step == bindparam("b_step"))
        .values(**_handed_back(session, table))
    )
    moved = 0
    connection = session.connection()
    for claim, outcome in continuing:
        guard = {
            "b_id": claim.trial_id,
            "b_owner": owner,
            "b_attempt": claim.attempt,
            "b_step": claim.resume_step,
        }
        if connection.execute(statement, guard).rowcount != 1:
            continue  # no longer this claim's: a lost lease, a replay, a cancel
        moved += 1
        step = int((outcome.metrics or {}).get("steps", 0))
        seconds = float(outcome.wall_time_s or 0.0)
        values = {"step": step, "state": outcome.continue_from, "updated_at": now}
        updated = connection.execute(
            update(states)
            .where(states.c.trial_id == claim.trial_id)
            .values(**values, seconds=states.c.seconds + seconds, legs=states.c.legs + 1)
        ).rowcount
        if updated != 1:
            connection.execute(
                insert(states).values(trial_id=claim.trial_id, **values, seconds=seconds, legs=1)
            )
    return moved


def requeue_running(
    session: Session, owner: str, claims: Iterable[ClaimedTrial], error: str | None
) -> int:
    """running → pending for a retry (attempts stay counted; a clean shutdown's release
    is :func:`release_running`)."""
    statement = (
        update(Trial.__table__)
        .where(_held_by_claim(Trial.__table__), _leaving([RUNNING], PENDING))
        .values(
            status=PENDING,
            lease_owner=None,
            lease_expires_at=None,
            error=bindparam("error"),
            updated_seq=events.stamp(session),
        )
    )
    message = error[:4000] if error else None
    params = [
        {"b_id": c.trial_id, "b_owner": owner, "b_attempt": c.attempt, "error": message}
        for c in claims
    ]
    return _executemany(session, statement, params)


def release_running(session: Session, owner: str, claims: Iterable[ClaimedTrial]) -> int:
    """running → pending for claims a stopping dispatcher hands back (a clean shutdown).

    Guarded by the claim like every write of a running trial (owner *and* attempt), so a
    claim this dispatcher no longer holds changes nothing.  Unlike a retry
    (:func:`requeue_running`) the attempt is given back (``attempts − 1``): the trial did
    not fail, its run was interrupted, and it must not use up ``MAX_ATTEMPTS`` because
    its server was restarted.  The lease is cleared, so another dispatcher can claim the
    trial at once, without waiting for the lease to expire.  Returns the rows changed.
    """
    table = Trial.__table__
    statement = (
        update(table)
        .where(_held_by_claim(table), _leaving([RUNNING], PENDING))
        .values(**_handed_back(session, table))
    )
    params = [{"b_id": c.trial_id, "b_owner": owner, "b_attempt": c.attempt} for c in claims]
    return _executemany(session, statement, params)


def renew_leases(
    session: Session, owner: str, claims: Sequence[ClaimedTrial], lease_seconds: float
) -> int:
    """Push the lease of claims this owner still holds ``lease_seconds`` into the future
    (no status change: running stays running)."""
    expires = utcnow() + timedelta(seconds=lease_seconds)
    table = Trial.__table__
    statement = update(table).where(_held_by_claim(table)).values(lease_expires_at=expires)
    params = [{"b_id": c.trial_id, "b_owner": owner, "b_attempt": c.attempt} for c in claims]
    return _executemany(session, statement, params)


def expire_leases(session: Session, max_attempts: int) -> tuple[int, int]:
    """running → pending for every expired lease; → failed once attempts are used up.

    Returns (requeued, failed).  Safe to run from any dispatcher at any time.
    """
    now = utcnow()
    expired = and_(Trial.lease_expires_at < now)
    failed = session.execute(
        update(Trial)
        .where(_leaving([RUNNING], FAILED), expired, Trial.attempts >= max_attempts)
        .values(
            status=FAILED,
            lease_owner=None,
            lease_expires_at=None,
            finished_at=now,
            error="lease expired after the last attempt (worker or dispatcher lost)",
            updated_seq=events.stamp(session),
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    requeued = session.execute(
        update(Trial)
        .where(_leaving([RUNNING], PENDING), expired, Trial.attempts < max_attempts)
        .values(
            status=PENDING,
            lease_owner=None,
            lease_expires_at=None,
            updated_seq=events.stamp(session),
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    return requeued, failed


def cancel_trials(session: Session, trial_ids: Iterable[int]) -> int:
    """pending | running → cancelled.  Running batches notice and drop their results."""
    ids = list(trial_ids)
    now = utcnow()
    values = {
        "status": CANCELLED,
        "lease_owner": None,
        "lease_expires_at": None,
        "finished_at": now,
    }
    return _update_chunked(session, ids, _leaving(sources_of(CANCELLED), CANCELLED), values)


def revive_trials(
    session: Session,
    trial_ids: Iterable[int],
    priority: int,
    *,
    owner: str | None = None,
    claim_rank: int | None = None,
) -> int:
    """failed | cancelled → pending, when a new sweep asks for these trials again (they
    then wait in the queue of that sweep's owner, at its rank); also a succeeded trial
    that stopped on a resource limit (``RESOURCE_STOPS``): it holds no result to keep."""
    revivable = or_(
        _leaving([FAILED, CANCELLED], PENDING),
        and_(Trial.status == SUCCEEDED, Trial.stop_reason.in_(RESOURCE_STOPS)),
    )
    queue = {}
    if owner is not None:
        queue["owner"] = owner
    if claim_rank is not None:
        queue["claim_rank"] = claim_rank
    values = {
        "status": PENDING,
        "attempts": 0,
        "error": None,
        "started_at": None,
        "finished_at": None,
        "priority": priority,
        **queue,
    }
    return _update_chunked(session, list(trial_ids), revivable, values)


def _update_chunked(
    session: Session, ids: list[int], condition: ColumnElement[bool], values: dict[str, Any]
) -> int:
    """UPDATE the trials ``ids`` that meet ``condition`` (chunks of ``_CHUNK`` ids), stamped
    for the event log; returns the rows changed."""
    changed = 0
    for start in range(0, len(ids), _CHUNK):
        changed += session.execute(
            update(Trial)
            .where(Trial.id.in_(ids[start : start + _CHUNK]), condition)
            .values(**values, updated_seq=events.stamp(session))
            .execution_options(synchronize_session=False)
        ).rowcount
    return changed


def derive_sweep_status(
    counts: Mapping[str, int],
    cancel_requested: bool,
    *,
    refining: bool = False,
    refine_stop: str | None = None,
) -> SweepStatus:
    """A sweep's status from its trials' counts (and, for a refine sweep, its round).

    running while anything is running (or some pending and some finished), or while a
    refine sweep's refinement goes on (``refining``) with nothing pending; pending when
    all pending; once all are final: cancelled if cancel was requested (and trials were
    cancelled, or refinement stopped on the cancel), succeeded if all succeeded, failed
    if none succeeded, partial otherwise.
    """
    total = sum(counts.values())
    active = counts.get(PENDING, 0) + counts.get(RUNNING, 0)
    if refining and not active and total:
        return SweepStatus.RUNNING
    if cancel_requested and refine_stop == "cancelled" and not active:
        return SweepStatus.CANCELLED
    if total == 0:
        return SweepStatus.SUCCEEDED
    if active:
        if counts.get(RUNNING, 0) or active < total:
            return SweepStatus.RUNNING
        return SweepStatus.PENDING
    if cancel_requested and counts.get(CANCELLED, 0):
        return SweepStatus.CANCELLED
    if counts.get(SUCCEEDED, 0) == total:
        return SweepStatus.SUCCEEDED
    if counts.get(SUCCEEDED, 0) == 0:
        return SweepStatus.FAILED
    return SweepStatus.PARTIAL


def advance_refine_round(session: Session, sweep_id: str, expected_round: int, trials: int) -> bool:
    """Refine round ``expected_round`` → ``expected_round + 1`` of a sweep that is still
    refining, adding ``trials`` to its trial count.
    False (nothing changed) when the sweep is no longer in that round: another
    dispatcher advanced or stopped it first.  Call before linking the round's trials,
    in the same transaction (on PostgreSQL the UPDATE locks the sweep's row)."""
    changed = session.execute(
        update(Sweep)
        .where(
            Sweep.id == sweep_id,
            Sweep.refine_round == expected_round,
            Sweep.refine_stop.is_(None),
        )
        .values(
            refine_round=expected_round + 1,
            trial_count=Sweep.trial_count + trials,
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    if changed == 1:
        events.sweep_changed(session, sweep_id)  # the stream sees the new round's trials
    return changed == 1


def finish_refinement(session: Session, sweep_id: str, expected_round: int, reason: str) -> bool:
    """Refine round ``expected_round`` → stopped with ``reason``; False when the sweep
    is no longer in that round (see :func:`advance_refine_round`)."""
    changed = session.execute(
        update(Sweep)
        .where(
            Sweep.id == sweep_id,
            Sweep.refine_round == expected_round,
            Sweep.refine_stop.is_(None),
        )
        .values(refine_stop=reason)
        .execution_options(synchronize_session=False)
    ).rowcount
    if changed == 1:
        events.sweep_changed(session, sweep_id)  # may be the sweep's ``done``
    return changed == 1
