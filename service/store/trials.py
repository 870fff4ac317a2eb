"""Trial data access for the dispatcher: theory predictions, leases, result rows."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from service import transitions
from service.store.models import TheoryPrediction, Trial

_CHUNK = 2000


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def stored_theory(session: Session, keys: Iterable[str]) -> dict[str, float | None]:
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


def save_theory(session: Session, predictions: dict[str, dict[str, Any]]) -> None:
    """Insert replica predictions; a key already stored keeps its first value."""
    if not predictions:
        return
    now = transitions.utcnow()
    rows = [
        {
            "theory_key": key,
            "gen_error": value.get("gen_error"),
            "reliable": value.get("reliable"),
            "details": value.get("details"),
            "created_at": now,
        }
        for key, value in predictions.items()
    ]
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    session.execute(
        insert(TheoryPrediction).on_conflict_do_nothing(index_elements=["theory_key"]), rows
    )


def backfill_theory(session: Session, predictions: dict[str, dict[str, Any]]) -> None:
    """Copy newly computed replica values onto finished simulations that lack them.

    The dispatcher asks one batch per theory key; trials of that key that finished
    earlier in other batches were stored without it.  Only the shared theory columns
    (the value and its residual) are filled, never the trial's own result or status.
    """
    table = Trial.__table__
    params = [
        {"b_key": key, "b_value": value.get("gen_error")}
        for key, value in predictions.items()
        if value.get("gen_error") is not None
    ]
    if not params:
        return
    session.connection().execute(
        update(table)
        .where(
            table.c.theory_key == bindparam("b_key"),
            table.c.status == transitions.SUCCEEDED,
            table.c.gen_error_asymptotic.is_(None),
        )
        .values(
            gen_error_asymptotic=bindparam("b_value"),
            residual_asymptotic=table.c.gen_error_sim - bindparam("b_value"),
        ),
        params,
    )


def statuses(session: Session, trial_ids: Sequence[int]) -> dict[int, str]:
    found: dict[int, str] = {}
    for chunk in _chunks(list(trial_ids)):
        for trial_id, status in session.execute(
            select(Trial.id, Trial.status).where(Trial.id.in_(chunk))
        ):
            found[trial_id] = status
    return found


def renew_leases(
    session: Session, owner: str, trial_ids: Sequence[int], lease_seconds: float
) -> None:
    """Push the lease of trials this owner still runs ``lease_seconds`` into the future."""
    expires = transitions.utcnow() + timedelta(seconds=lease_seconds)
    for chunk in _chunks(list(trial_ids)):
        session.execute(
            update(Trial)
            .where(
                Trial.id.in_(chunk),
                Trial.status == transitions.RUNNING,
                Trial.lease_owner == owner,
            )
            .values(lease_expires_at=expires)
            .execution_options(synchronize_session=False)
        )


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
