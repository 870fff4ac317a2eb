"""SQL for ``GET /v1/sweeps``: filters, the derived status as a SQL expression, keyset
cursors.  Pure query building — ``service.store.sweeps.list_sweeps`` runs them.

A sweep's status is derived from its trials' counts (``transitions.derive_sweep_status``);
``derived_status`` is the same rule written as one ``CASE`` over a per-sweep count
subquery, so filtering by status, counting and paging all happen in the database.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, exists, func, or_, select, text
from sqlalchemy.orm import Session

from service.errors import BadCursor
from service.store.models import Sweep, SweepTrial, Trial

MAX_OFFSET = 100_000
_STATES = ("pending", "running", "succeeded", "failed", "cancelled")


def _count_subquery() -> Any:
    """Per sweep: total trials and the count in each status."""
    columns = [
        func.sum(case((Trial.status == state, 1), else_=0)).label(state) for state in _STATES
    ]
    return (
        select(SweepTrial.sweep_id.label("sweep_id"), func.count().label("total"), *columns)
        .join(Trial, Trial.id == SweepTrial.trial_id)
        .group_by(SweepTrial.sweep_id)
        .subquery("sweep_counts")
    )


def derived_status() -> tuple[ColumnElement[str], Any]:
    """``(CASE …, subquery)``: ``transitions.derive_sweep_status`` in SQL (refine rounds
    included; ``tests/service/test_api_edge.py`` holds the two equal).

    A sweep with no trials has no row in the subquery and counts as succeeded.
    """
    c = _count_subquery()
    total = func.coalesce(c.c.total, 0)
    pending, running = func.coalesce(c.c.pending, 0), func.coalesce(c.c.running, 0)
    succeeded, cancelled = func.coalesce(c.c.succeeded, 0), func.coalesce(c.c.cancelled, 0)
    active = pending + running
    # A refine sweep between rounds (refine_round set, refine_stop not yet) is running.
    refining = and_(Sweep.refine_round.is_not(None), Sweep.refine_stop.is_(None))
    stopped_on_cancel = and_(
        Sweep.cancel_requested.is_(True), Sweep.refine_stop == "cancelled", active == 0
    )
    status = case(
        (and_(refining, active == 0, total > 0), "running"),
        (stopped_on_cancel, "cancelled"),
        (total == 0, "succeeded"),
        (and_(active > 0, or_(running > 0, active < total)), "running"),
        (active > 0, "pending"),
        (and_(Sweep.cancel_requested.is_(True), cancelled > 0), "cancelled"),
        (succeeded == total, "succeeded"),
        (succeeded == 0, "failed"),
        else_="partial",
    )
    return status, c


def _has_tag(session: Session, tag: str) -> ColumnElement[bool]:
    if session.get_bind().dialect.name == "postgresql":
        return text("CAST(sweeps.tags AS JSONB) ? :tag").bindparams(tag=tag)
    return exists(
        select(1)
        .select_from(func.json_each(Sweep.tags).table_valued("value"))
        .where(text("value = :tag").bindparams(tag=tag))
    )


def conditions(
    session: Session,
    *,
    status: str | None,
    name: str | None,
    tag: str | None,
    submitter: str | None,
) -> list[ColumnElement[bool]]:
    """The WHERE conjuncts of a listing (over ``sweeps``)."""
    where: list[ColumnElement[bool]] = []
    if name:
        where.append(Sweep.name == name)
    if submitter:
        where.append(Sweep.submitter == submitter)
    if tag:
        where.append(_has_tag(session, tag))
    if status:
        derived, counts = derived_status()
        where.append(
            Sweep.id.in_(
                select(Sweep.id)
                .outerjoin(counts, counts.c.sweep_id == Sweep.id)
                .where(derived == status)
            )
        )
    return where


def count_statement(where: list[ColumnElement[bool]]) -> Select[Any]:
    return select(func.count()).select_from(Sweep).where(*where)


def page_statement(where: list[ColumnElement[bool]]) -> Select[Any]:
    return select(Sweep).where(*where).order_by(Sweep.created_at.desc(), Sweep.id)


def after(position: tuple[datetime, str]) -> ColumnElement[bool]:
    """Rows after ``(created_at, id)`` in the listing's order."""
    created_at, sweep_id = position
    return or_(
        Sweep.created_at < created_at,
        and_(Sweep.created_at == created_at, Sweep.id > sweep_id),
    )


def encode_cursor(sweep: Sweep) -> str:
    """Opaque cursor: base64url of ``{"t": created_at ISO, "i": id}``."""
    payload = {"t": sweep.created_at.isoformat(), "i": sweep.id}
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The cursor's position, or ``BadCursor`` (400) if it was not issued here."""
    try:
        payload = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        created_at = datetime.fromisoformat(payload["t"])
        sweep_id = payload["i"]
        if set(payload) != {"t", "i"} or not isinstance(sweep_id, str) or len(sweep_id) > 64:
            raise ValueError(cursor)
    except (binascii.Error, ValueError, TypeError, KeyError, UnicodeDecodeError):
        raise BadCursor(
            "cursor is not valid: pass the next_cursor of a previous page unchanged"
        ) from None
    return created_at, sweep_id
