"""FastAPI dependencies: the request's session (its transaction), settings, the
principal (``service.auth.deps``), an audit trail bound to the request, and the
visibility check of a sweep named in the path."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Depends, Path, Request
from sqlalchemy.orm import Session

from service.auth import policy
from service.auth.deps import (
    Admin,
    PrincipalCache,
    Reader,
    Submitter,
    client_address,
    get_principal,
    principal_cache,
)
from service.auth.principal import Principal
from service.settings import Settings
from service.store import audit
from service.store import sweeps as sweep_store
from service.store.session import session_scope

__all__ = [
    "Admin",
    "AuditDep",
    "PrincipalCacheDep",
    "PrincipalDep",
    "Reader",
    "ReadableSweep",
    "SessionDep",
    "SettingsDep",
    "Submitter",
]


def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


def get_session(request: Request) -> Iterator[Session]:
    """One transaction per request: commit on success, roll back on any error."""
    with session_scope(request.app.state.session_factory) as session:
        yield session


# scope="function": commit (or roll back) *before* the response is sent.  FastAPI's
# default ends a yield dependency after the response, so a client could read 201 for a
# sweep whose commit had not happened yet (a GET right after it answered 404).
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
PrincipalCacheDep = Annotated[PrincipalCache, Depends(principal_cache)]


class AuditTrail:
    """Appends audit entries in the request's transaction (so an entry exists exactly
    when the action it records was committed)."""

    def __init__(self, request: Request, session: Session, principal: Principal) -> None:
        self.request, self.session, self.principal = request, session, principal

    def __call__(
        self,
        action: str,
        resource: str | None,
        code: int = 200,
        detail: dict[str, Any] | None = None,
    ) -> None:
        audit.record(
            self.session,
            actor=self.principal.name,
            actor_kind=self.principal.kind,
            client_address=client_address(self.request),
            action=action,
            resource=resource,
            result_code=code,
            detail=detail,
        )


def get_audit(request: Request, session: SessionDep, principal: PrincipalDep) -> AuditTrail:
    return AuditTrail(request, session, principal)


AuditDep = Annotated[AuditTrail, Depends(get_audit)]


def check_readable_sweep(
    sweep_id: Annotated[
        str, Path(min_length=1, max_length=64, description="a sweep id returned by create_sweep")
    ],
    session: SessionDep,
    principal: Reader,
    settings: SettingsDep,
) -> str:
    """The path's sweep id, once the principal may read it (404 / 403 otherwise)."""
    policy.check_read(principal, settings, sweep_store.sweep_owner(session, sweep_id))
    return sweep_id


ReadableSweep = Annotated[str, Depends(check_readable_sweep)]
