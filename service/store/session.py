"""Engines and sessions.  Engines are built in the app's lifespan (or a CLI command),
never at import time and never shipped to Ray workers.

Transaction boundary: the request (``get_session`` commits on success, rolls back on
error) or the dispatcher's round (``session_scope``).  Store functions only ``flush()``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """An engine with the pragmas each backend needs.

    SQLite: WAL (readers never block the one writer), foreign keys on, a busy timeout so
    the dispatcher thread and request handlers queue for the write lock instead of
    failing.  PostgreSQL: pre-ping, so a restarted database does not surface as a 500.
    """
    if is_sqlite(url):
        engine = create_engine(
            url, echo=echo, connect_args={"check_same_thread": False, "timeout": 30}
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record) -> None:  # noqa: ANN001
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    return create_engine(url, echo=echo, pool_pre_ping=True, pool_size=10, max_overflow=20)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions whose commits also write the event rows of what they changed
    (``service.store.events``: a ``before_commit`` hook)."""
    from service.store import events

    factory = sessionmaker(bind=engine, expire_on_commit=False)
    event.listen(factory, "before_commit", events.write_events)
    event.listen(factory, "after_rollback", events.forget_marks)
    return factory


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction: commit on success, roll back on any error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
