"""Which pending trials the next claim takes, in fair-share order.

``service.store.transitions.claim_pending`` calls :func:`fair_candidates` for the ids and
applies the status change itself; this module reads the users' queues, asks the pure
allocation (``service.scheduling.fair_share.allocate``) how many each user gets, picks
each user's oldest trials in queue order (index ``ix_trials_fair_claim``), and records
the usage it charged.  On PostgreSQL the user rows are locked ``FOR UPDATE`` for the
claim, so concurrent dispatchers allocate one after the other (claims are short), while
the trial rows keep ``FOR UPDATE SKIP LOCKED``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, exists, func, select, text, tuple_, update
from sqlalchemy.orm import Session

from api_schemas.auth import WaitInfo
from api_schemas.statuses import TrialStatus
from service.scheduling.fair_share import Queue, allocate, decayed, factor
from service.store.clock import as_utc
from service.store.models import SweepTrial, Trial, User
from workers.records import ClaimedTrial

PENDING, RUNNING = TrialStatus.PENDING.value, TrialStatus.RUNNING.value


def as_claimed(trial: Trial) -> ClaimedTrial:
    """The record of a trial row as it crosses into a worker (rows stay in the store)."""
    return record_of(trial)


# The trial columns a ClaimedTrial is made of (read back by the claim's RETURNING).
CLAIMED_COLUMNS = (
    "id",
    "attempts",
    "workload",
    "params",
    "seed",
    "execution",
    "batch_key",
    "group_key",
    "theory_key",
    "priority",
    "owner",
)


def record_of(row: Any) -> ClaimedTrial:
    """The record of a row of ``CLAIMED_COLUMNS`` (a Core row or an ORM trial)."""
    return ClaimedTrial(
        trial_id=row.id,
        attempt=row.attempts,
        workload=row.workload,
        params=dict(row.params),
        seed=row.seed,
        execution=dict(row.execution),
        batch_key=row.batch_key,
        group_key=row.group_key,
        theory_key=row.theory_key,
        priority=row.priority,
        owner=row.owner,
    )


@dataclass(frozen=True)
class ClaimPolicy:
    """What the fair-share claim needs of the settings."""

    half_life_s: float
    default_max_running: int | None = None


def _elapsed(now: datetime, then: datetime | None) -> float:
    if then is None:
        return 0.0
    return (now - as_utc(then)).total_seconds()


def queues(session: Session, policy: ClaimPolicy, now: datetime, *, postgres: bool) -> list[Queue]:
    """The users with pending trials, with decayed usage and free running slots."""
    has_pending = exists().where(Trial.status == PENDING, Trial.owner == User.name)
    statement = select(User).where(has_pending, User.disabled.is_(False))
    if postgres:
        statement = statement.with_for_update(of=User)
    users = list(session.scalars(statement))
    if not users:
        return []
    running = dict(
        session.execute(
            select(Trial.owner, func.count())
            .where(Trial.status == RUNNING, Trial.owner.in_([u.name for u in users]))
            .group_by(Trial.owner)
        ).all()
    )
    found = []
    for user in users:
        cap = user.max_running_trials or policy.default_max_running
        free = None if cap is None else max(0, cap - running.get(user.name, 0))
        usage = decayed(user.usage, _elapsed(now, user.usage_at), policy.half_life_s)
        found.append(Queue(user.name, user.share, usage, free))
    return found


def _oldest(session: Session, owner: str, limit: int, *, postgres: bool) -> list[int]:
    statement = (
        select(Trial.id)
        .where(Trial.status == PENDING, Trial.owner == owner)
        .order_by(Trial.claim_rank, Trial.id)
        .limit(limit)
    )
    if postgres:
        statement = statement.with_for_update(skip_locked=True)
    return list(session.scalars(statement))


# Every user's share in one round trip on PostgreSQL: a LATERAL index scan per user.
_OLDEST_PER_OWNER = text(
    """
    SELECT picked.id FROM unnest(CAST(:owners AS text[]), CAST(:amounts AS int[]))
        AS wanted(owner, amount)
    CROSS JOIN LATERAL (
        SELECT trials.id FROM trials
        WHERE trials.status = 'pending' AND trials.owner = wanted.owner
        ORDER BY trials.claim_rank, trials.id
        LIMIT wanted.amount
        FOR UPDATE SKIP LOCKED
    ) AS picked
    """
)


def fair_candidates(
    session: Session, limit: int, policy: ClaimPolicy, now: datetime, *, postgres: bool
) -> tuple[list[int], dict[str, float]]:
    """Up to ``limit`` pending trial ids: each user's share (``allocate``), then — when
    some user had fewer pending trials than its share — the rest in plain priority
    order among users not capped by their running quota.  Also returns each user's
    usage decayed to ``now`` (for :func:`charge`)."""
    found = queues(session, policy, now, postgres=postgres)
    shares = allocate(found, limit)
    ids: list[int] = []
    if postgres and shares:
        owners, amounts = zip(*shares, strict=True)
        ids = list(
            session.scalars(_OLDEST_PER_OWNER, {"owners": list(owners), "amounts": list(amounts)})
        )
    else:
        for owner, amount in shares:
            ids += _oldest(session, owner, amount, postgres=postgres)
    if len(ids) < limit:
        open_owners = [q.owner for q in found if q.free_slots is None]
        if open_owners:
            statement = (
                select(Trial.id)
                .where(Trial.status == PENDING, Trial.owner.in_(open_owners))
                .order_by(Trial.priority.desc(), Trial.id)
                .limit(limit - len(ids))
            )
            if ids:
                statement = statement.where(Trial.id.not_in(ids))
            if postgres:
                statement = statement.with_for_update(skip_locked=True)
            ids += list(session.scalars(statement))
    return ids, {q.owner: q.usage for q in found}


def charge(session: Session, owners: Sequence[str], usage: dict[str, float], now: datetime) -> None:
    """Add one unit of usage per claimed trial to each owner (``usage``: decayed to now)."""
    counts = Counter(owners)
    if not counts:
        return
    table = User.__table__
    statement = (
        update(table)
        .where(table.c.name == bindparam("b_name"))
        .values(usage=bindparam("b_usage"), usage_at=bindparam("b_at"))
    )
    session.connection().execute(
        statement,
        [
            {"b_name": owner, "b_usage": usage.get(owner, 0.0) + count, "b_at": now}
            for owner, count in counts.items()
        ],
    )


def wait_info(
    session: Session, sweep_id: str, policy: ClaimPolicy, now: datetime
) -> WaitInfo | None:
    """Why the sweep's pending trials wait: its owner's fair-share standing, how many of
    the owner's own trials are ahead, and a quota that blocks it (None: nothing pending)."""
    first = session.execute(
        select(Trial.owner, Trial.claim_rank, Trial.id)
        .join(SweepTrial, SweepTrial.trial_id == Trial.id)
        .where(SweepTrial.sweep_id == sweep_id, Trial.status == PENDING)
        .order_by(Trial.claim_rank, Trial.id)
        .limit(1)
    ).first()
    if first is None:
        return None
    found = queues(session, policy, now, postgres=False)
    mine = next((q for q in found if q.owner == first.owner), None)
    ahead = (
        session.scalar(
            select(func.count())
            .select_from(Trial)
            .where(
                Trial.status == PENDING,
                Trial.owner == first.owner,
                tuple_(Trial.claim_rank, Trial.id) < tuple_(first.claim_rank, first.id),
            )
        )
        or 0
    )
    running = (
        session.scalar(
            select(func.count())
            .select_from(Trial)
            .where(Trial.status == RUNNING, Trial.owner == first.owner)
        )
        or 0
    )
    if mine is None:  # the owner is disabled (or has no user row): nothing claims it
        return WaitInfo(
            owner=first.owner,
            share=0.0,
            share_fraction=0.0,
            usage_fraction=0.0,
            fair_share_factor=0.0,
            rank=0,
            queued_ahead=ahead,
            running=running,
            quota_blocked="the owner's account is disabled",
        )
    total_share = sum(q.share for q in found) or 1.0
    total_usage = sum(q.usage for q in found)
    factors = {q.owner: factor(q, total_usage, total_share) for q in found}
    order = sorted(found, key=lambda q: (-factors[q.owner], q.owner))
    blocked = None
    if mine.free_slots == 0:
        blocked = f"running-trials quota reached ({running} running)"
    return WaitInfo(
        owner=mine.owner,
        share=mine.share,
        share_fraction=mine.share / total_share,
        usage_fraction=mine.usage / total_usage if total_usage else 0.0,
        fair_share_factor=factors[mine.owner],
        rank=1 + [q.owner for q in order].index(mine.owner),
        queued_ahead=ahead,
        running=running,
        quota_blocked=blocked,
    )
