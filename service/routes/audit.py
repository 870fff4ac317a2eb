"""The audit log (admins): a thin handler over ``service.store.audit``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api_schemas.auth import AuditPage
from service.deps import Admin, SessionDep
from service.routes.responses import errors
from service.store import audit as audit_store

router = APIRouter(prefix="/v1", tags=["audit"])


@router.get(
    "/audit",
    operation_id="list_audit",
    response_model=AuditPage,
    responses=errors(400),
)
def list_audit(
    session: SessionDep,
    _: Admin,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[
        str | None, Query(pattern="^[1-9][0-9]{0,17}$", description="next_cursor of a page")
    ] = None,
    actor: Annotated[str | None, Query(max_length=128)] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
) -> AuditPage:
    """Audit entries, newest first (keyset: pass ``next_cursor`` as ``cursor``)."""
    return audit_store.list_entries(session, limit=limit, cursor=cursor, actor=actor, action=action)
