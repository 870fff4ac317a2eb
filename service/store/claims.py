"""Which pending trials the next claim takes, in fair-share order.

``service.store.transitions.claim_pending`` calls :func:`fair_candidates` for the ids and
applies the status change itself; this module reads the users' queues, asks the pure
allocation (``service.scheduling.fair_share.allocate``) how many each user gets, picks
each user's oldest trials in queue order (index ``ix_trials_fair_claim``), and records
the usage it charged.  On PostgreSQL the user rows are locked ``FOR UPDATE`` for the
claim, so concurrent dispatchers allocate one after the other (claims are short), while
the trial rows keep ``FOR UPDATE SKIP LOCKED``.

Whole groups (:func:`whole_groups`): trials of one group key share a dataset or a theory
curve (``service/expand.py``), so a claim takes every pending trial of each group it
touches: the limit bounds the groups a claim adds, it never splits one, and a group
larger than the limit is claimed whole, alone.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
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


# What a candidate row of a claim carries (the trial, its queue and its group).
CANDIDATE_COLUMNS = (Trial.id, Trial.owner, Trial.group_key, Trial.priority, Trial.claim_rank)


def _oldest(session: Session, owner: str, limit: int, *, postgres: bool) -> list[Any]:
    statement = (
        select(*CANDIDATE_COLUMNS)
        .where(Trial.status == PENDING, Trial.owner == owner)
        .order_by(Trial.claim_rank, Trial.id)
        .limit(limit)
    )
    if postgres:
        statement = statement.with_for_update(skip_locked=True)
    return list(session.execute(statement))


# Every user's share in one round trip on PostgreSQL: a LATERAL index scan per user.
_OLDEST_PER_OWNER = text(
    """
    SELECT picked.id, picked.owner, picked.group_key, picked.priority, picked.claim_rank
    FROM unnest(CAST(:owners AS text[]), CAST(:amounts AS int[])) AS wanted(owner, amount)
    CROSS JOIN LATERAL (
        SELECT trials.id, trials.owner, trials.group_key, trials.priority, trials.claim_rank
        FROM trials
        WHERE trials.status = 'pending' AND trials.owner = wanted.owner
        ORDER BY trials.claim_rank, trials.id
        LIMIT wanted.amount
        FOR UPDATE SKIP LOCKED
    ) AS picked
    """
)


def fair_candidates(
    session: Session, limit: int, policy: ClaimPolicy, now: datetime, *, postgres: bool
) -> tuple[list[Any], dict[str, float], dict[str, int | None]]:
    """Up to ``limit`` pending candidate rows (``CANDIDATE_COLUMNS``): each user's share
    (``allocate``), then — when some user had fewer pending trials than its share — the
    rest in plain priority order among users not capped by their running quota.  Also
    returns each user's usage decayed to ``now`` (for :func:`charge`) and free running
    slots (None: no cap; for :func:`whole_groups`)."""
    found = queues(session, policy, now, postgres=postgres)
    shares = allocate(found, limit)
    rows: list[Any] = []
    if postgres and shares:
        owners, amounts = zip(*shares, strict=True)
        rows = list(
            session.execute(_OLDEST_PER_OWNER, {"owners": list(owners), "amounts": list(amounts)})
        )
    else:
        for owner, amount in shares:
            rows += _oldest(session, owner, amount, postgres=postgres)
    if len(rows) < limit:
        open_owners = [q.owner for q in found if q.free_slots is None]
        if open_owners:
            statement = (
                select(*CANDIDATE_COLUMNS)
                .where(Trial.status == PENDING, Trial.owner.in_(open_owners))
                .order_by(Trial.priority.desc(), Trial.id)
                .limit(limit - len(rows))
            )
            if rows:
                statement = statement.where(Trial.id.not_in([row.id for row in rows]))
            if postgres:
                statement = statement.with_for_update(skip_locked=True)
            rows += list(session.execute(statement))
    caps = {q.owner: q.free_slots for q in found}
    return rows, {q.owner: q.usage for q in found}, caps


def plain_candidates(session: Session, limit: int, *, postgres: bool) -> list[Any]:
    """Up to ``limit`` pending candidate rows, highest priority first, then oldest."""
    statement = (
        select(*CANDIDATE_COLUMNS)
        .where(Trial.status == PENDING)
        .order_by(Trial.priority.desc(), Trial.id)
        .limit(limit)
    )
    if postgres:
        statement = statement.with_for_update(skip_locked=True)
    return list(session.execute(statement))


_GROUP_CHUNK = 1000


def _group_of(row: Any) -> tuple[str, str, int, int]:
    return (row.owner, row.group_key, row.priority, row.claim_rank)


def whole_groups(
    session: Session,
    candidates: Sequence[Any],
    limit: int,
    caps: Mapping[str, int | None],
    *,
    postgres: bool,
) -> list[int]:
    """The ids to claim: every pending trial of the groups the ``candidates`` touch.

    A group is the trials of one group key (they share a dataset or a theory curve) in
    one queue place: one owner, priority and claim rank, so that fair share, running
    quotas and priorities stay exact (a higher-priority sweep does not pull the
    lower-priority trials of its datasets along).  Groups are taken in the order of
    their first candidate while their pending trials fit in ``limit``; the first group
    is taken even when it alone exceeds ``limit`` (it is claimed whole, alone).  Once
    one of an owner's groups does not fit, that owner's later groups wait too, so its
    queue order holds.  ``caps`` (an owner's free running slots; None: no cap) is the
    one bound that cuts a group: the running quota is a hard limit.  On PostgreSQL the
    chosen groups' rows are then locked ``FOR UPDATE SKIP LOCKED``: under the fair-share claim the
    user-row locks serialize concurrent claims, so groups stay whole; under the plain
    claim a racing dispatcher may hold part of a group, and each then claims its part
    (never the same trial: the status UPDATE is guarded by ``pending``).
    """
    order = list(dict.fromkeys(_group_of(row) for row in candidates))
    if not order:
        return []
    keys = sorted({group[1] for group in order})
    members: dict[tuple[Any, ...], list[int]] = {group: [] for group in order}
    for start in range(0, len(keys), _GROUP_CHUNK):
        statement = (
            select(*CANDIDATE_COLUMNS)
            .where(Trial.status == PENDING, Trial.group_key.in_(keys[start : start + _GROUP_CHUNK]))
            .order_by(Trial.claim_rank, Trial.id)
        )
        for row in session.execute(statement):
            group = _group_of(row)
            if group in members:
                members[group].append(row.id)
    chosen: list[int] = []
    taken: Counter[str] = Counter()
    waiting: set[str] = set()
    for group in order:
        owner = group[0]
        ids = members[group]
        if owner in waiting or not ids:
            continue
        if chosen and len(chosen) + len(ids) > limit:
            waiting.add(owner)
            continue
        cap = caps.get(owner)
        if cap is not None:
            ids = ids[: max(0, cap - taken[owner])]
        chosen += ids
        taken[owner] += len(ids)
    if postgres and chosen:  # lock just the chosen groups, not the ones that wait
        locked: set[int] = set()
        for start in range(0, len(chosen), _GROUP_CHUNK):
            statement = (
                select(Trial.id)
                .where(Trial.id.in_(chosen[start : start + _GROUP_CHUNK]), Trial.status == PENDING)
                .with_for_update(skip_locked=True)
            )
            locked.update(session.scalars(statement))
        chosen = [i for i in chosen if i in locked]
    return chosen


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
