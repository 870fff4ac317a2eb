"""The audit log: append-only rows, read newest first by keyset."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from api_schemas.auth import AuditPage, AuditRead
from service.errors import BadCursor
from service.store.clock import as_utc
from service.store.models import AuditEntry


def record(
    session: Session,
    *,
    actor: str | None,
    actor_kind: str | None,
    client_address: str | None,
    action: str,
    resource: str | None,
    result_code: int,
    detail: dict[str, Any] | None = None,
) -> None:
    """Append one entry in the caller's transaction (rows are never updated)."""
    session.add(
        AuditEntry(
            at=datetime.now(UTC),
            actor=actor,
            actor_kind=actor_kind,
            client_address=(client_address or "")[:64] or None,
            action=action,
            resource=(resource or "")[:200] or None,
            result_code=result_code,
            detail=detail,
        )
    )
    session.flush()


def list_entries(
    session: Session,
    *,
    limit: int,
    cursor: str | None,
    actor: str | None = None,
    action: str | None = None,
) -> AuditPage:
    """Newest first; ``cursor`` is the last id seen."""
    statement = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit + 1)
    if cursor:
        try:
            before = int(cursor)
        except ValueError:
            raise BadCursor(f"cursor {cursor!r} is not a cursor of this endpoint") from None
        if not 0 < before < 2**63:
            raise BadCursor(f"cursor {cursor!r} is out of range")
        statement = statement.where(AuditEntry.id < before)
    if actor:
        statement = statement.where(AuditEntry.actor == actor)
    if action:
        statement = statement.where(AuditEntry.action == action)
    rows = list(session.scalars(statement))
    items = [
        AuditRead(
            id=row.id,
            at=as_utc(row.at),
            actor=row.actor,
            actor_kind=row.actor_kind,
            client_address=row.client_address,
            action=row.action,
            resource=row.resource,
            result_code=row.result_code,
            detail=row.detail,
        )
        for row in rows[:limit]
    ]
    return AuditPage(
        items=items, next_cursor=str(rows[limit - 1].id) if len(rows) > limit else None
    )
