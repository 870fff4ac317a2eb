"""Trials into a sweep: content-addressed insert and links, for a new sweep and for each
round of a refine sweep (which grows while it runs).

Every function takes a session and only flushes; the caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from service.scheduling.fair_share import claim_rank
from service.store import transitions
from service.store.models import Sweep, SweepTrial, Trial, TrialState
from service.store.typed import typed_columns
from workers.records import PlannedTrial

_CHUNK = 2000


@dataclass(frozen=True)
class StoredTrials:
    """Where each planned key stands after :func:`ensure_trials`."""

    ids: dict[str, int]
    cached_ids: frozenset[int]

    @property
    def new_ids(self) -> list[int]:
        return [i for i in self.ids.values() if i not in self.cached_ids]


def dialect_insert(session: Session):  # noqa: ANN201 - dialect-specific Insert
    name = session.get_bind().dialect.name
    return postgresql.insert if name == "postgresql" else sqlite.insert


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


def retryable_ids(session: Session, trial_ids: Sequence[int]) -> set[int]:
    """Succeeded trials that stopped on a resource limit (``transitions.RESOURCE_STOPS``:
    out of memory, time limit): not cache hits; a new submission runs them again."""
    found: set[int] = set()
    unique = list(dict.fromkeys(trial_ids))
    for start in range(0, len(unique), _CHUNK):
        found.update(
            session.scalars(
                select(Trial.id).where(
                    Trial.id.in_(unique[start : start + _CHUNK]),
                    Trial.status == transitions.SUCCEEDED,
                    Trial.stop_reason.in_(transitions.RESOURCE_STOPS),
                )
            )
        )
    return found


def take_new_scheduling(
    session: Session, planned_by_id: Mapping[int, PlannedTrial], revived: Sequence[int]
) -> int:
    """Give each revived trial the execution and batch key of the submission that revived
    it; returns how many changed.

    A trial's key holds every execution option that changes its numbers, so one stored
    under the same key can differ from the new plan only in the options outside the key
    (``leg_steps``, ``num_gpus``, the device of a device-independent workload): how the
    work is cut and placed, which the new submission chose and is owed.  One exception
    keeps work: a trial stopped between legs (a saved ``TrialState``) asked for again
    without legs keeps its own execution and goes on in legs from its saved step, rather
    than start again.  With another leg length it takes the new one: resuming so computes
    the same numbers (tests/workers/dln/test_legs.py)."""
    changes = []
    for start in range(0, len(revived), _CHUNK):
        chunk = list(revived[start : start + _CHUNK])
        stored = session.execute(
            select(Trial.id, Trial.execution, Trial.batch_key).where(
                Trial.id.in_(chunk), Trial.status == transitions.PENDING
            )
        ).all()
        in_legs = set(
            session.scalars(select(TrialState.trial_id).where(TrialState.trial_id.in_(chunk)))
        )
        for trial_id, execution, batch_key in stored:
            planned = planned_by_id[trial_id]
            if (execution, batch_key) == (planned.execution, planned.batch_key):
                continue
            if trial_id in in_legs and not planned.execution.get("leg_steps"):
                continue
            changes.append(
                {"b_id": trial_id, "execution": planned.execution, "batch_key": planned.batch_key}
            )
    if changes:
        table = Trial.__table__
        session.connection().execute(  # executemany: one statement, a row per trial
            update(table)
            .where(table.c.id == bindparam("b_id"))
            .values(execution=bindparam("execution"), batch_key=bindparam("batch_key")),
            changes,
        )
    return len(changes)


def ensure_trials(
    session: Session,
    workload: str,
    priority: int,
    unique: Mapping[str, PlannedTrial],
    *,
    owner: str,
    rank: int,
) -> StoredTrials:
    """Insert the planned trials not stored yet (status pending, in ``owner``'s queue at
    ``rank``) and return every key's id.

    A key already stored is reused: with a result (succeeded) it is cached; pending or
    running it is shared (its priority lifted to ``priority``); failed or cancelled it is
    revived into ``owner``'s queue.  Concurrent inserts of one new key are resolved by
    ``ON CONFLICT DO NOTHING`` on the unique key, so no duplicate trial can exist.
    """
    now = transitions.utcnow()
    before = existing_trials(session, list(unique))
    rows = [
        {
            "key": trial.key,
            "workload": workload,
            "params": trial.params,
            "execution": trial.execution,
            "batch_key": trial.batch_key,
            "theory_key": trial.theory_key,
            "status": transitions.PENDING,
            "priority": priority,
            "owner": owner,
            "claim_rank": rank,
            "attempts": 0,
            "created_at": now,
            **typed_columns(trial.params, trial.seed),
            "group_key": trial.group_key,
        }
        for trial in unique.values()
        if trial.key not in before
    ]
    # executemany form: one cached statement, batched by the driver; a multi-VALUES
    # literal with 50k bind parameters costs more to compile than to run.
    if rows:
        insert = dialect_insert(session)
        session.execute(insert(Trial).on_conflict_do_nothing(index_elements=["key"]), rows)
    after = existing_trials(session, list(unique))
    succeeded = [after[key][0] for key in unique if after[key][1] == transitions.SUCCEEDED]
    retry = retryable_ids(session, succeeded)
    cached = [trial_id for trial_id in succeeded if trial_id not in retry]
    revive = [
        after[key][0]
        for key in unique
        if after[key][1] in (transitions.FAILED, transitions.CANCELLED)
    ] + sorted(retry)
    transitions.revive_trials(session, revive, priority, owner=owner, claim_rank=rank)
    take_new_scheduling(session, {after[key][0]: unique[key] for key in unique}, revive)
    # A higher-priority sweep lifts the priority of pending trials it shares.
    shared_pending = [after[key][0] for key in before if before[key][1] == transitions.PENDING]
    for start in range(0, len(shared_pending), _CHUNK):
        session.execute(
            update(Trial)
            .where(Trial.id.in_(shared_pending[start : start + _CHUNK]))
            .where(Trial.priority < priority)
            # Same class, new priority: the rank's class part is kept (fair_share.claim_rank).
            .values(
                priority=priority,
                claim_rank=(Trial.claim_rank / 1000) * 1000 + (100 - priority),
            )
            .execution_options(synchronize_session=False)
        )
    return StoredTrials({key: after[key][0] for key in unique}, frozenset(cached))


def link_trials(session: Session, sweep_id: str, stored: StoredTrials) -> None:
    """Link the sweep to every stored trial (``cached`` marks those with a result)."""
    links = [
        {"sweep_id": sweep_id, "trial_id": trial_id, "cached": trial_id in stored.cached_ids}
        for trial_id in stored.ids.values()
    ]
    if links:
        session.execute(dialect_insert(session)(SweepTrial), links)
    session.flush()


def add_round(
    session: Session, sweep_id: str, expected_round: int, planned: Sequence[PlannedTrial]
) -> StoredTrials | None:
    """Add one refinement round's trials to a refine sweep that is in ``expected_round``.

    The round is advanced first (``transitions.advance_refine_round``, guarded by the
    round), then the trials are inserted and linked and the sweep's counts updated, all
    in the caller's transaction.  None when another dispatcher advanced the sweep first.
    """
    sweep = session.get(Sweep, sweep_id)
    if sweep is None:
        return None
    unique: dict[str, PlannedTrial] = {}
    for trial in planned:
        unique.setdefault(trial.key, trial)
    if not transitions.advance_refine_round(session, sweep_id, expected_round, len(unique)):
        return None
    stored = ensure_trials(
        session,
        sweep.workload,
        sweep.priority,
        unique,
        owner=sweep.submitter,
        rank=claim_rank(sweep.priority_class, sweep.priority),
    )
    if stored.cached_ids:
        session.execute(
            update(Sweep)
            .where(Sweep.id == sweep_id)
            .values(cached_count=Sweep.cached_count + len(stored.cached_ids))
            .execution_options(synchronize_session=False)
        )
    link_trials(session, sweep_id, stored)
    return stored
