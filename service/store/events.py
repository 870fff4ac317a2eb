"""The event sequence: one append-only row per (sweep, transaction that changed it).

Contract.  Every status change goes through ``transitions`` (or ``create_sweep``), and
each of those marks what it changed inside its own transaction:

- an UPDATE of trials sets ``updated_seq = stamp(session)``, a negative number unique to
  the transaction that also encodes the trial's *source* state (SQL evaluates the SET
  expression on the old row);
- ``create_sweep`` calls :func:`sweep_created`.

Just before the transaction commits, :func:`write_events` (a ``before_commit`` hook
installed on every session factory, ``service.store.session``) turns the marks into
rows: one event per affected sweep, with the new status counts (the sweep's previous
event's counts plus this transaction's deltas), throughput, ETA and the trial ids per
change; then a ``done`` event when the sweep has nothing left pending or running; and
finally replaces the stamps by the new event id, so ``trials.updated_seq > N`` is "changed
after event N".

Ordering across replicas: on PostgreSQL the writer takes a transaction-level advisory
lock before it reads the links and allocates ids, and holds it to the commit, so event
ids are allocated in commit order and a reader that has seen id N has seen every id
below it.  The lock is the last one a transaction takes (nothing waits for a row lock
while holding it), so it cannot deadlock.  SQLite's single write lock does the same.
"""

from __future__ import annotations

import secrets
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, case, func, insert, literal_column, select, text, update
from sqlalchemy.orm import Session

from api_schemas.statuses import TrialStatus
from service.store.models import Event, Sweep, SweepTrial, Trial

CREATED, TRIALS, RESULTS, DONE = "created", "trials", "results", "done"
STATES: tuple[str, ...] = tuple(status.value for status in TrialStatus)
_CODE = {state: index for index, state in enumerate(STATES)}
_ACTIVE = (TrialStatus.PENDING.value, TrialStatus.RUNNING.value)
_FINISHED = (TrialStatus.SUCCEEDED.value, TrialStatus.FAILED.value)
_TOKEN, _CREATED = "sweeps.event_token", "sweeps.created_sweeps"
_RECOUNT = "sweeps.events.recount"
_LOCK_KEY = 7_220_512_001  # pg_advisory_xact_lock key of the event writer
MAX_IDS = 2000  # trial ids listed per change; beyond that clients read ?since=


@dataclass(frozen=True)
class SweepEvent:
    """One event as served: ``seq`` is the SSE ``id:``; ``payload`` the JSON data."""

    seq: int
    sweep_id: str
    kind: str
    at: datetime
    payload: dict[str, Any]

    def data(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "sweep_id": self.sweep_id,
            "kind": self.kind,
            "at": self.at.isoformat(),
            **self.payload,
        }


# -- marking (inside the transaction that changes state) ------------------------------
def _range(token: int) -> tuple[int, int]:
    return -(token * 8 + 7), -(token * 8)


def stamp(session: Session) -> ColumnElement[int]:
    """The ``updated_seq`` value for an UPDATE of trials in this transaction.

    A row already stamped by this transaction keeps its first stamp (so its source state
    is the one before the transaction, not an intermediate one).
    """
    token = session.info.get(_TOKEN)
    if token is None:
        token = session.info[_TOKEN] = secrets.randbits(40) + 1
    low, high = _range(token)
    column = Trial.__table__.c.updated_seq
    code = case(
        *((Trial.__table__.c.status == state, code) for state, code in _CODE.items()), else_=7
    )
    fresh = literal_column(str(-token * 8)) - code
    return case((column.between(low, high), column), else_=fresh)


def sweep_created(session: Session, sweep_id: str) -> None:
    """Record that ``sweep_id`` was created in this transaction (its event is written at
    commit, with the counts then)."""
    session.info.setdefault(_CREATED, []).append(sweep_id)


def sweep_changed(session: Session, sweep_id: str) -> None:
    """Record that ``sweep_id`` changed shape in this transaction (a refine round added
    trials, or refinement stopped): its event is written at commit with fresh counts."""
    session.info.setdefault(_RECOUNT, []).append(sweep_id)


def forget_marks(session: Session) -> None:
    """Drop the marks of a transaction that rolled back."""
    session.info.pop(_TOKEN, None)
    session.info.pop(_CREATED, None)
    session.info.pop(_RECOUNT, None)


# -- writing (just before the commit) -------------------------------------------------
def write_events(session: Session) -> int:
    """Turn this transaction's marks into event rows; returns the events written."""
    token = session.info.pop(_TOKEN, None)
    created = list(dict.fromkeys(session.info.pop(_CREATED, [])))
    recount = [i for i in dict.fromkeys(session.info.pop(_RECOUNT, [])) if i not in set(created)]
    stamped: list[Any] = []
    if token is not None:
        low, high = _range(token)
        stamped = list(
            session.scalars(select(Trial.id).where(Trial.updated_seq.between(low, high)))
        )
    if not stamped and not created and not recount:
        return 0
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
    now = datetime.now(UTC)
    written: list[int] = []
    if stamped:
        low, high = _range(token)
        # A sweep created in this transaction is counted afresh by its ``created`` event.
        changes = _changes_by_sweep(session, low, high, exclude=set(created) | set(recount))
        sweeps = _sweeps(session, list(changes))
        for sweep_id, moves in changes.items():
            written += _append_change(session, sweeps[sweep_id], moves, now)
    for sweep in _sweeps(session, created).values():
        written += _append_created(session, sweep, now)
    for sweep in _sweeps(session, recount).values():
        written += _append_recount(session, sweep, now)
    if stamped:
        # Trials linked to no sweep still get a sequence number: the latest one.
        last = max(written) if written else latest_seq(session)
        session.execute(
            update(Trial)
            .where(Trial.updated_seq.between(low, high))
            .values(updated_seq=last)
            .execution_options(synchronize_session=False)
        )
    return len(written)


def _changes_by_sweep(
    session: Session, low: int, high: int, exclude: set[str]
) -> dict[str, dict[tuple[str, str], list[int]]]:
    """``{sweep: {(source, target): [trial ids]}}`` of the stamped trials."""
    rows = session.execute(
        select(SweepTrial.sweep_id, Trial.id, Trial.updated_seq, Trial.status)
        .join(Trial, Trial.id == SweepTrial.trial_id)
        .where(Trial.updated_seq.between(low, high))
        .order_by(SweepTrial.sweep_id, Trial.id)
    )
    changes: dict[str, dict[tuple[str, str], list[int]]] = {}
    for sweep_id, trial_id, seq, status in rows:
        if sweep_id in exclude:
            continue
        code = high - seq  # stamp = -(token * 8) - code, and high = -(token * 8)
        source = STATES[code] if 0 <= code < len(STATES) else "unknown"
        changes.setdefault(sweep_id, defaultdict(list))[(source, status)].append(trial_id)
    return changes


def _sweeps(session: Session, sweep_ids: Sequence[str]) -> dict[str, Sweep]:
    if not sweep_ids:
        return {}
    rows = session.scalars(select(Sweep).where(Sweep.id.in_(list(sweep_ids))))
    return {row.id: row for row in rows}


def _previous(session: Session, sweep_id: str) -> dict[str, Any] | None:
    return session.scalar(
        select(Event.payload).where(Event.sweep_id == sweep_id).order_by(Event.id.desc()).limit(1)
    )


def count_statuses(session: Session, sweep_id: str) -> dict[str, int]:
    """The sweep's trials per status, counted (creation, and sweeps without events)."""
    counts = {state: 0 for state in STATES}
    rows = session.execute(
        select(Trial.status, func.count())
        .join(SweepTrial, SweepTrial.trial_id == Trial.id)
        .where(SweepTrial.sweep_id == sweep_id)
        .group_by(Trial.status)
    )
    for status, count in rows:
        counts[status] = count
    return counts


def _progress(
    sweep: Sweep, counts: Mapping[str, int], started: str | None, now: datetime
) -> tuple[float, float | None]:
    """(progress, throughput per s) from the counts and the first claim time."""
    total = sum(counts.values())
    done = total - sum(counts.get(state, 0) for state in _ACTIVE)
    computed = done - sweep.cached_count
    throughput = None
    if started and computed > 0:
        elapsed = max((now - datetime.fromisoformat(started)).total_seconds(), 1e-6)
        throughput = computed / elapsed
    return (done / total if total else 1.0), throughput


def _payload(
    session: Session,
    sweep: Sweep,
    counts: Mapping[str, int],
    started: str | None,
    now: datetime,
) -> dict[str, Any]:
    """The payload every event carries: counts, progress, throughput, ETA and status.

    The ETA is the same smoothed one as ``GET /v1/sweeps/{id}``, as of ``now``
    (``store.progress.smoothed_eta``: one query of finish times): 0 when nothing remains,
    None until something was computed."""
    from service.store.progress import smoothed_eta  # progress imports transitions
    from service.store.transitions import derive_sweep_status  # transitions imports us

    progress, throughput = _progress(sweep, counts, started, now)
    remaining = sum(counts.get(state, 0) for state in _ACTIVE)
    eta = None
    if throughput is not None and started:
        eta = 0.0
        if remaining:
            first = datetime.fromisoformat(started)
            eta = smoothed_eta(session, sweep.id, first, remaining, now)
    return {
        "counts": dict(counts),
        "total": sum(counts.values()),
        "cached": sweep.cached_count,
        "progress": progress,
        "throughput_per_s": throughput,
        "eta_s": eta,
        "started_at": started,
        "status": derive_sweep_status(counts, sweep.cancel_requested).value,
    }


def _insert(session: Session, sweep_id: str, kind: str, payload: dict[str, Any], now) -> int:
    values = {"sweep_id": sweep_id, "kind": kind, "payload": payload, "created_at": now}
    return session.execute(insert(Event).values(**values).returning(Event.id)).scalar_one()


def _append_change(
    session: Session, sweep: Sweep, moves: Mapping[tuple[str, str], list[int]], now: datetime
) -> list[int]:
    previous = _previous(session, sweep.id)
    if previous is None:  # a sweep from before events existed: count it once
        counts, started = count_statuses(session, sweep.id), None
        was_active = True
    else:
        counts = {state: int(previous["counts"].get(state, 0)) for state in STATES}
        started = previous.get("started_at")
        was_active = any(counts[state] for state in _ACTIVE)
        for (source, target), ids in moves.items():
            if source in counts:
                counts[source] -= len(ids)
            counts[target] = counts.get(target, 0) + len(ids)
    if started is None and any(target == "running" for _, target in moves):
        started = now.isoformat()
    changes = [
        {
            "from": source,
            "to": target,
            "count": len(ids),
            "trial_ids": ids if len(ids) <= MAX_IDS else None,
        }
        for (source, target), ids in sorted(moves.items())
    ]
    landed = any(t in _FINISHED or s == t for s, t in moves)
    payload = _payload(session, sweep, counts, started, now) | {"changes": changes}
    ids = [_insert(session, sweep.id, RESULTS if landed else TRIALS, payload, now)]
    if was_active and not any(counts[state] for state in _ACTIVE) and not _refining(sweep):
        ids.append(
            _insert(session, sweep.id, DONE, _payload(session, sweep, counts, started, now), now)
        )
    return ids


def _append_created(session: Session, sweep: Sweep, now: datetime) -> list[int]:
    counts = count_statuses(session, sweep.id)
    payload = _payload(session, sweep, counts, None, now) | {
        "name": sweep.name,
        "workload": sweep.workload,
    }
    ids = [_insert(session, sweep.id, CREATED, payload, now)]
    if not any(counts[state] for state in _ACTIVE) and not _refining(sweep):
        ids.append(
            _insert(session, sweep.id, DONE, _payload(session, sweep, counts, None, now), now)
        )
    return ids


def _refining(sweep: Sweep) -> bool:
    """A refine sweep between rounds is not done: another round may follow."""
    return sweep.refine_round is not None and sweep.refine_stop is None


def _append_recount(session: Session, sweep: Sweep, now: datetime) -> list[int]:
    counts = count_statuses(session, sweep.id)
    ids = [_insert(session, sweep.id, TRIALS, _payload(session, sweep, counts, None, now), now)]
    if not any(counts[state] for state in _ACTIVE) and not _refining(sweep):
        ids.append(
            _insert(session, sweep.id, DONE, _payload(session, sweep, counts, None, now), now)
        )
    return ids


# -- reading --------------------------------------------------------------------------
def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def events_after(session: Session, sweep_id: str, after: int, limit: int) -> list[SweepEvent]:
    """The sweep's events with ``seq > after``, oldest first (index ``(sweep_id, id)``)."""
    rows = session.execute(
        select(Event.id, Event.kind, Event.payload, Event.created_at)
        .where(Event.sweep_id == sweep_id, Event.id > after)
        .order_by(Event.id)
        .limit(limit)
    )
    return [SweepEvent(seq, sweep_id, kind, _utc(at), payload) for seq, kind, payload, at in rows]


def latest_event(session: Session, sweep_id: str) -> tuple[int, str] | None:
    """(seq, kind) of the sweep's latest event, or None."""
    row = session.execute(
        select(Event.id, Event.kind)
        .where(Event.sweep_id == sweep_id)
        .order_by(Event.id.desc())
        .limit(1)
    ).first()
    return (row[0], row[1]) if row else None


def latest_seq(session: Session) -> int:
    """The highest event id written so far (0 before any)."""
    return session.scalar(select(func.max(Event.id))) or 0
