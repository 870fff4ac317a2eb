"""FastAPI dependencies that authenticate a request and check its scope.

``Authorization: Bearer <key>`` (documented in OpenAPI as the ``ApiKey`` scheme).  With
``SWEEPS_AUTH__ENABLED=false`` (the embedded default) every request acts as one local
user with every scope: the ``X-Sweeps-Submitter`` header, else ``SWEEPS_DEFAULT_SUBMITTER``.
Failures are 401 (no valid key: missing, malformed, unknown, revoked, expired, disabled
user) or 403 (a scope the key lacks), each recorded in the audit log in its own
transaction, so the request's rollback does not erase it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from service.auth.principal import ALL_SCOPES, Principal
from service.errors import Forbidden, Unauthorized
from service.store import audit
from service.store import users as user_store
from service.store.session import session_scope

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="An API key (`fts_…`), sent as `Authorization: Bearer <key>`.",
)


def client_address(request: Request) -> str | None:
    return request.client.host if request.client else None


def audit_failure(request: Request, action: str, code: int, detail: dict, actor=None) -> None:  # noqa: ANN001
    """An audit entry for a refused request, in its own transaction."""
    request.state.audited = True
    with session_scope(request.app.state.session_factory) as session:
        audit.record(
            session,
            actor=actor.name if actor else None,
            actor_kind=actor.kind if actor else None,
            client_address=client_address(request),
            action=action,
            resource=f"{request.method} {request.url.path}",
            result_code=code,
            detail=detail,
        )


def _local(request: Request, submitter: str | None) -> Principal:
    name = (submitter or "").strip()[:128] or request.app.state.settings.default_submitter
    return Principal(user_id=None, name=name, kind="local", is_admin=True, scopes=ALL_SCOPES)


def _authenticate(session: Session, request: Request, key: str | None) -> Principal:
    if not key:
        audit_failure(request, "auth.missing_key", 401, {"reason": "no API key"})
        raise Unauthorized("missing API key: send `Authorization: Bearer <key>`")
    result = user_store.authenticate(session, key)
    if isinstance(result, user_store.Rejected):
        audit_failure(request, "auth.rejected", 401, {"reason": result.reason})
        raise Unauthorized(f"invalid API key: {result.reason}")
    return result


def get_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    x_sweeps_submitter: Annotated[
        str | None,
        Header(max_length=128, description="the submitter when auth is off (ignored with auth)"),
    ] = None,
) -> Principal:
    """Who the request acts as (cached per request by FastAPI)."""
    if not request.app.state.settings.auth.enabled:
        principal = _local(request, x_sweeps_submitter)
    else:
        # Authentication reads in its own short transaction: a rejected key is audited
        # even though the request's own transaction is then rolled back.
        with session_scope(request.app.state.session_factory) as session:
            key = credentials.credentials if credentials else None
            principal = _authenticate(session, request, key)
    request.state.principal = principal
    return principal


def require(scope: str) -> Callable[..., Principal]:
    """A dependency: the request's principal, which must hold ``scope``."""

    def dependency(
        request: Request, principal: Annotated[Principal, Depends(get_principal)]
    ) -> Principal:
        if not principal.can(scope):
            audit_failure(request, "auth.forbidden", 403, {"scope": scope}, actor=principal)
            raise Forbidden(f"this key lacks the {scope!r} scope")
        return principal

    dependency.__name__ = f"require_{scope}"
    return dependency


Reader = Annotated[Principal, Depends(require("read"))]
Submitter = Annotated[Principal, Depends(require("submit"))]
Admin = Annotated[Principal, Depends(require("admin"))]
