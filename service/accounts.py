"""User and key use cases: who may create, list and revoke what.

Admins manage every user and key; a user manages their own keys, and may not mint a
key with a scope their own key lacks (a read-only key cannot make a submit key).
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from api_schemas.auth import KeyCreate, KeyCreated, KeyRead, Me, Quotas, UserCreate, UserRead
from service.auth.principal import Principal
from service.errors import Forbidden
from service.settings import Settings
from service.store import users as user_store


def create_user(session: Session, body: UserCreate) -> UserRead:
    return user_store.create_user(
        session,
        body.name,
        kind=body.kind,
        admin=body.admin,
        share=body.share,
        quotas=body.quotas,
    )


def create_key(
    session: Session, principal: Principal, settings: Settings, body: KeyCreate
) -> KeyCreated:
    owner = body.user or principal.name
    if owner != principal.name and not principal.is_admin:
        raise Forbidden("only an admin may create keys for another user")
    if not principal.is_admin and not set(body.scopes) <= principal.scopes:
        missing = sorted(set(body.scopes) - principal.scopes)
        raise Forbidden(f"a key cannot grant scopes its creator lacks: {', '.join(missing)}")
    days = body.expires_in_days or settings.auth.key_days
    return user_store.create_key(
        session, owner, scopes=list(body.scopes), label=body.label, lifetime=timedelta(days=days)
    )


def list_keys(session: Session, principal: Principal, user: str | None) -> list[KeyRead]:
    if principal.is_admin:
        return user_store.list_keys(session, user)
    if user is not None and user != principal.name:
        raise Forbidden("only an admin may list another user's keys")
    return user_store.list_keys(session, principal.name)


def revoke_key(session: Session, principal: Principal, key_id: str) -> KeyRead:
    owner = user_store.key_owner(session, key_id)
    if owner != principal.name and not principal.is_admin:
        raise Forbidden("only the key's owner or an admin may revoke it")
    return user_store.revoke_key(session, key_id)


def me(session: Session, principal: Principal, settings: Settings) -> Me:
    user = user_store.user_row_facts(session, principal.name)
    return Me(
        name=principal.name,
        kind=principal.kind if principal.kind in ("user", "service") else "local",
        admin=principal.is_admin,
        scopes=sorted(principal.scopes),
        auth=settings.auth.enabled,
        share=user.share if user else settings.fair_share.default_share,
        usage=user.usage if user else 0.0,
        quotas=user.quotas if user else Quotas(),
        queued_trials=user_store.queued_trials(session, principal.name),
        running_trials=user_store.running_trials(session, principal.name),
    )
