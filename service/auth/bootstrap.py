"""Server-side account commands (``sweeps admin create-user``): straight to the database,
for the first admin, before any key exists to call the API with."""

from __future__ import annotations

from datetime import timedelta

from api_schemas.auth import KeyCreated, Quotas
from service.settings import Settings
from service.store import audit
from service.store import users as user_store
from service.store.migrate import upgrade_to_head
from service.store.session import make_engine, make_session_factory, session_scope


def create_user_with_key(
    settings: Settings,
    name: str,
    *,
    admin: bool = False,
    kind: str = "user",
    share: float = 1.0,
    scopes: list[str] | None = None,
) -> KeyCreated:
    """Create ``name`` and a first key for it; returns the key (shown once)."""
    upgrade_to_head(settings.database_url)
    engine = make_engine(settings.database_url)
    try:
        with session_scope(make_session_factory(engine)) as session:
            user_store.create_user(
                session, name, kind=kind, admin=admin, share=share, quotas=Quotas()
            )
            granted = scopes or (["read", "submit", "admin"] if admin else ["read", "submit"])
            key = user_store.create_key(
                session,
                name,
                scopes=granted,
                label="created by sweeps admin create-user",
                lifetime=timedelta(days=settings.auth.key_days),
            )
            audit.record(
                session,
                actor=None,
                actor_kind="cli",
                client_address=None,
                action="user.create",
                resource=f"user:{name}",
                result_code=201,
                detail={"admin": admin, "kind": kind, "key": key.prefix},
            )
        return key
    finally:
        engine.dispose()
