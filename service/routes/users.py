"""Users, API keys and the caller's own identity: thin handlers over ``service.accounts``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from api_schemas.auth import KeyCreate, KeyCreated, KeyRead, Me, UserCreate, UserRead, UserUpdate
from service import accounts
from service.deps import Admin, AuditDep, PrincipalCacheDep, Reader, SessionDep, SettingsDep
from service.routes.responses import BODY, errors
from service.store import users as user_store

router = APIRouter(prefix="/v1", tags=["users"])
ERRORS = errors(*BODY, 404, 409)


@router.get("/me", operation_id="whoami", response_model=Me, responses=ERRORS)
def whoami(session: SessionDep, principal: Reader, settings: SettingsDep) -> Me:
    """Who this key is: scopes, share, usage, quotas, queued and running trials."""
    return accounts.me(session, principal, settings)


@router.post(
    "/users",
    operation_id="create_user",
    response_model=UserRead,
    status_code=status.HTTP_201_CREATED,
    responses=ERRORS,
)
def create_user(body: UserCreate, session: SessionDep, _: Admin, audit: AuditDep) -> UserRead:
    """Create a user or a service account (admin)."""
    user = accounts.create_user(session, body)
    audit("user.create", f"user:{user.name}", 201, {"admin": user.admin, "kind": user.kind})
    return user


@router.get("/users", operation_id="list_users", response_model=list[UserRead], responses=ERRORS)
def list_users(session: SessionDep, _: Admin) -> list[UserRead]:
    """Every user with share, usage and quotas (admin)."""
    return user_store.list_users(session)


@router.get("/users/{name}", operation_id="get_user", response_model=UserRead, responses=ERRORS)
def get_user(name: str, session: SessionDep, _: Admin) -> UserRead:
    """One user (admin)."""
    return user_store.get_user(session, name)


@router.patch(
    "/users/{name}", operation_id="update_user", response_model=UserRead, responses=ERRORS
)
def update_user(
    name: str,
    body: UserUpdate,
    session: SessionDep,
    _: Admin,
    audit: AuditDep,
    cache: PrincipalCacheDep,
) -> UserRead:
    """Change a user's admin flag, share, quotas, or disable it (admin)."""
    user = user_store.update_user(
        session,
        name,
        admin=body.admin,
        disabled=body.disabled,
        share=body.share,
        quotas=body.quotas,
    )
    audit("user.update", f"user:{name}", 200, body.model_dump(exclude_none=True, mode="json"))
    cache.clear()  # a disabled user or a changed admin flag takes effect at once here
    return user


@router.post(
    "/keys",
    operation_id="create_key",
    response_model=KeyCreated,
    status_code=status.HTTP_201_CREATED,
    responses=ERRORS,
)
def create_key(
    body: KeyCreate, session: SessionDep, principal: Reader, settings: SettingsDep, audit: AuditDep
) -> KeyCreated:
    """A new API key, shown once (yours; an admin may name another user)."""
    key = accounts.create_key(session, principal, settings, body)
    audit("key.create", f"key:{key.prefix}", 201, {"user": key.user, "scopes": key.scopes})
    return key


@router.get("/keys", operation_id="list_keys", response_model=list[KeyRead], responses=ERRORS)
def list_keys(
    session: SessionDep,
    principal: Reader,
    user: Annotated[str | None, Query(max_length=128)] = None,
) -> list[KeyRead]:
    """Your keys (an admin: everyone's, or one user's); never the secrets."""
    return accounts.list_keys(session, principal, user)


@router.delete(
    "/keys/{key_id}", operation_id="revoke_key", response_model=KeyRead, responses=ERRORS
)
def revoke_key(
    key_id: str, session: SessionDep, principal: Reader, audit: AuditDep, cache: PrincipalCacheDep
) -> KeyRead:
    """Revoke a key at once (yours, or any as an admin; other replicas within the
    principal cache's lifetime)."""
    key = accounts.revoke_key(session, principal, key_id)
    audit("key.revoke", f"key:{key.prefix}", 200, {"user": key.user})
    cache.clear()
    return key
