"""Fixtures for the service tests: a migrated database on each backend, a session on
it, and the real app behind an httpx-based TestClient."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from service.app import create_app
from service.settings import Settings
from service.store.migrate import upgrade_to_head
from service.store.session import make_engine, make_session_factory


@pytest.fixture
def migrated_url(database_url: str) -> str:
    """``database_url`` (a fresh SQLite file or PostgreSQL schema) at Alembic head."""
    upgrade_to_head(database_url)
    return database_url


@pytest.fixture
def session_factory(migrated_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(migrated_url)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def app_client(migrated_url: str) -> Iterator[TestClient]:
    """The real app (no dispatcher) over httpx; the lifespan runs inside the ``with``."""
    app = create_app(Settings(database_url=migrated_url), start_dispatcher=False, migrate=False)
    with TestClient(app) as client:
        yield client
