"""Trial data access for the dispatcher: replica predictions, statuses, counts.

Status changes and lease writes live in ``service.store.transitions``; this module reads
trials and writes only the shared theory (``theory_predictions`` and the replica
backfill of finished trials).  Rows never leave: callers get plain values or
:class:`~workers.records.ClaimedTrial` records.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import bindparam, exists, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from api_schemas.result_columns import residual
from service.store import claims, events, transitions
from service.store.models import TheoryPrediction, Trial
from workers.records import ClaimedTrial, TheoryValue

_CHUNK = 2000


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def stored_theory(session: Session, keys: Iterable[str | None]) -> dict[str, float | None]:
    """``{theory key: gen_error}`` for the replica predictions already stored."""
    unique = list({key for key in keys if key})
    found: dict[str, float | None] = {}
    for chunk in _chunks(unique):
        for key, value in session.execute(
            select(TheoryPrediction.theory_key, TheoryPrediction.gen_error).where(
                TheoryPrediction.theory_key.in_(chunk)
            )
        ):
            found[key] = value
    return found


def save_theory(session: Session, predictions: Mapping[str, TheoryValue]) -> None:
    """Insert replica predictions; a key already stored keeps its first value."""
    if not predictions:
        return
    now = transitions.utcnow()
    rows = [
        {
            "theory_key": key,
            "gen_error": value.gen_error,
            "reliable": value.reliable,
            "details": value.details,
            "created_at": now,
        }
        for key, value in predictions.items()
    ]
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    session.execute(
        insert(TheoryPrediction).on_conflict_do_nothing(index_elements=["theory_key"]), rows
    )


def backfill_theory(session: Session, values: Mapping[str, float | None]) -> int:
    """Copy replica values (``{theory key: gen_error}``) onto succeeded trials that lack
    them, with their residual; returns the rows changed.

    A trial finished before its key's value landed (another batch was computing it) was
    stored without it.  Only the shared theory columns are filled, never the trial's own
    result or status, and only where they are still empty.
    """
    known = {key: value for key, value in values.items() if key and value is not None}
    if not known:
        return 0
    targets = []
    for chunk in _chunks(list(known)):
        targets += session.execute(
            select(Trial.id, Trial.theory_key, Trial.gen_error_sim).where(
                Trial.theory_key.in_(chunk),
                Trial.status == transitions.SUCCEEDED,
                Trial.gen_error_asymptotic.is_(None),
            )
        ).all()
    if not targets:
        return 0
    table = Trial.__table__
    statement = (
        update(table)
        .where(table.c.id == bindparam("b_id"), table.c.gen_error_asymptotic.is_(None))
        .values(
            gen_error_asymptotic=bindparam("b_value"),
            residual_asymptotic=bindparam("b_residual"),
            updated_seq=events.stamp(session),  # a result changed: a "results" event
        )
    )
    params = [
        {
            "b_id": trial_id,
            "b_value": known[key],
            "b_residual": residual(sim, known[key]),
        }
        for trial_id, key, sim in targets
    ]
    session.connection().execute(statement, params)
    return len(params)


def missing_theory(
    session: Session, exclude: Iterable[str], limit: int
) -> tuple[dict[str, float | None], list[ClaimedTrial]]:
    """Succeeded trials still waiting for a replica value (index ``ix_trials_missing_theory``).

    Returns ``(stored, orphans)``: ``stored`` maps keys whose prediction row exists
    (written by another dispatcher, or a value the backfill has not copied yet) to that
    value; ``orphans`` holds one representative trial per key that has no prediction at
    all and is not in ``exclude`` (keys some in-flight batch is computing).
    """
    excluded = set(exclude)
    # A key whose stored prediction is itself empty (the solver gave no value) can never
    # be filled: leave it out, so it cannot crowd the others out of the limit.
    unfillable = exists().where(
        TheoryPrediction.theory_key == Trial.theory_key, TheoryPrediction.gen_error.is_(None)
    )
    keys = list(
        session.scalars(
            select(Trial.theory_key)
            .where(
                Trial.status == transitions.SUCCEEDED,
                Trial.gen_error_asymptotic.is_(None),
                Trial.theory_key.is_not(None),
                ~unfillable,
            )
            .group_by(Trial.theory_key)
            .limit(limit + len(excluded))
        )
    )
    keys = [key for key in keys if key not in excluded][:limit]
    stored = stored_theory(session, keys)
    orphan_keys = [key for key in keys if key not in stored]
    orphans: list[ClaimedTrial] = []
    if orphan_keys:
        first = (
            select(func.min(Trial.id))
            .where(Trial.theory_key.in_(orphan_keys), Trial.status == transitions.SUCCEEDED)
            .group_by(Trial.theory_key)
        )
        for row in session.scalars(select(Trial).where(Trial.id.in_(first))):
            orphans.append(claims.as_claimed(row))
    return stored, orphans


def statuses(session: Session, trial_ids: Sequence[int]) -> dict[int, str]:
    found: dict[int, str] = {}
    for chunk in _chunks(list(trial_ids)):
        for trial_id, status in session.execute(
            select(Trial.id, Trial.status).where(Trial.id.in_(chunk))
        ):
            found[trial_id] = status
    return found


def active_count(session: Session) -> int:
    """Trials still pending or running (any owner)."""
    return (
        session.scalar(
            select(func.count())
            .select_from(Trial)
            .where(Trial.status.in_([transitions.PENDING, transitions.RUNNING]))
        )
        or 0
    )
