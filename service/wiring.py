"""Server wiring in one place: the engine, the session factory, the batch runner and
the dispatcher built from ``Settings``, and torn down in reverse.

Both the app's lifespan (``service/app.py``) and ``sweeps worker`` call
``start_services`` / ``Services.stop``, so a standalone dispatcher is wired exactly like
the one inside the API.  Nothing here runs at import time; Ray and the dispatcher are
imported only when a dispatcher is wanted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from service.settings import Settings
from service.store.migrate import upgrade_to_head
from service.store.session import make_engine, make_session_factory


@dataclass
class Services:
    """What a running server process holds.  ``runner`` / ``dispatcher`` are ``None``
    when no dispatcher runs here; ``owns_runner`` says whether ``stop`` shuts the
    runner down (a runner passed in by the caller is the caller's to stop)."""

    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]
    runner: Any = None
    dispatcher: Any = None
    owns_runner: bool = False

    def stop(self) -> None:
        """Stop the dispatcher (releasing its leases), then the runner, then the engine."""
        if self.dispatcher is not None:
            self.dispatcher.stop()
        if self.owns_runner and self.runner is not None:
            self.runner.shutdown()
        self.engine.dispose()


def start_services(
    settings: Settings,
    *,
    runner: Any = None,
    start_dispatcher: bool | None = None,
    migrate: bool = True,
) -> Services:
    """Migrate (unless ``migrate=False``), build the engine and session factory, and when
    a dispatcher is wanted (``start_dispatcher``, default ``settings.dispatch.enabled``)
    start ``runner`` (default: a ``RayRunner`` from ``settings.ray``) and a dispatcher.

    On failure everything already built is torn down before the error propagates.
    """
    if migrate:
        upgrade_to_head(settings.database_url)
    engine = make_engine(settings.database_url)
    services = Services(settings, engine, make_session_factory(engine), runner=runner)
    enabled = settings.dispatch.enabled if start_dispatcher is None else start_dispatcher
    if not enabled:
        return services
    try:
        from service.dispatch import Dispatcher

        if services.runner is None:
            from service.runners import RayRunner

            services.runner = RayRunner(settings.ray)
            services.owns_runner = True
            services.runner.start()
        services.dispatcher = Dispatcher(services.session_factory, settings, services.runner)
        services.dispatcher.start()
    except BaseException:
        services.stop()
        raise
    return services
