"""FastAPI dependencies that authenticate a request and check its scope.

``Authorization: Bearer <key>`` (documented in OpenAPI as the ``ApiKey`` scheme).  With
``SWEEPS_AUTH__ENABLED=false`` (the embedded default) every request acts as one local
user with every scope: the ``X-Sweeps-Submitter`` header, else ``SWEEPS_DEFAULT_SUBMITTER``.
Failures are 401 (no valid key: missing, malformed, unknown, revoked, expired, disabled
user) or 403 (a scope the key lacks), each recorded in the audit log in its own
transaction, so the request's rollback does not erase it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from service.auth import keys
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


class PrincipalCache:
    """Principals of recently seen keys, by the key's hash, for ``ttl_s`` seconds.

    A database look-up per request would cost more than the rest of a small request;
    with the cache, a key is checked against the database at most once per ``ttl_s`` per
    process.  Revoking or disabling through this process drops its entries at once; other
    replicas see it within ``ttl_s`` (``SWEEPS_AUTH__CACHE_SECONDS``; 0 disables the cache).
    """

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._entries: dict[str, tuple[float, Principal]] = {}

    def get(self, key_hash: str) -> Principal | None:
        entry = self._entries.get(key_hash)
        if entry is None or entry[0] < time.monotonic():
            self._entries.pop(key_hash, None)
            return None
        return entry[1]

    def put(self, key_hash: str, principal: Principal) -> None:
        if self.ttl_s > 0:
            if len(self._entries) > 10_000:  # bounded: forget everything rather than grow
                self._entries.clear()
            self._entries[key_hash] = (time.monotonic() + self.ttl_s, principal)

    def clear(self) -> None:
        self._entries.clear()


def principal_cache(request: Request) -> PrincipalCache:
    state = request.app.state
    if getattr(state, "principal_cache", None) is None:
        state.principal_cache = PrincipalCache(state.settings.auth.cache_seconds)
    return state.principal_cache


def _authenticate(request: Request, key: str | None) -> Principal:
    if not key:
        audit_failure(request, "auth.missing_key", 401, {"reason": "no API key"})
        raise Unauthorized("missing API key: send `Authorization: Bearer <key>`")
    cache = principal_cache(request)
    digest = keys.hash_key(key)
    cached = cache.get(digest)
    if cached is not None:
        return cached
    # A short transaction of its own: a rejected key is audited even though the
    # request's own transaction is then rolled back.
    with session_scope(request.app.state.session_factory) as session:
        result = user_store.authenticate(session, key)
    if isinstance(result, user_store.Rejected):
        audit_failure(request, "auth.rejected", 401, {"reason": result.reason})
        raise Unauthorized(f"invalid API key: {result.reason}")
    cache.put(digest, result)
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
        principal = _authenticate(request, credentials.credentials if credentials else None)
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
