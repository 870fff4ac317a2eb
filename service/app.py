"""The FastAPI application: ``create_app()`` wires settings, the engine, Ray and the
dispatcher in the lifespan (never at import time) and registers the routers and the
error handlers that render every failure as ``{"error": …, "detail": …}``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.errors import SweepsError
from service.routes import events, figures, health, results, sweeps
from service.settings import Settings, get_settings
from service.store.migrate import upgrade_to_head
from service.store.session import make_engine, make_session_factory

log = logging.getLogger("sweeps.app")


def _error(status: int, error: str, detail: Any) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": error, "detail": detail})


def _clean_validation_errors(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Field path + reason; drop the echoed input (it may be large or contain NaN)."""
    cleaned = []
    for error in errors:
        message = str(error.get("msg", "")).removeprefix("Value error, ")
        item = {"loc": list(error.get("loc", [])), "msg": message, "type": error.get("type")}
        cleaned.append(item)
    return cleaned


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(SweepsError)
    async def _domain(_: Request, exc: SweepsError) -> JSONResponse:
        return _error(exc.status_code, type(exc).__name__, exc.detail)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(422, "ValidationError", _clean_validation_errors(list(exc.errors())))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        name = {404: "NotFound", 405: "MethodNotAllowed"}.get(exc.status_code, "HTTPError")
        return _error(exc.status_code, name, exc.detail)

    @app.exception_handler(IntegrityError)
    async def _integrity(_: Request, exc: IntegrityError) -> JSONResponse:
        # Two concurrent submissions racing on one Idempotency-Key: the loser retries.
        return _error(409, "Conflict", "a concurrent request wrote the same row; retry")

    @app.exception_handler(OperationalError)
    async def _database(_: Request, exc: OperationalError) -> JSONResponse:
        log.error("database error: %s", exc)
        return _error(503, "DatabaseUnavailable", "the database is unavailable; retry later")


def create_app(
    settings: Settings | None = None,
    *,
    runner: Any = None,
    start_dispatcher: bool | None = None,
    migrate: bool = True,
) -> FastAPI:
    """Build the app.  ``runner`` overrides the Ray runner (tests, tools);
    ``start_dispatcher`` overrides ``settings.dispatch.enabled``."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from service.dispatch import Dispatcher
        from service.runners import RayRunner

        if migrate:
            upgrade_to_head(settings.database_url)
        engine = make_engine(settings.database_url)
        app.state.engine = engine
        app.state.session_factory = make_session_factory(engine)
        enabled = settings.dispatch.enabled if start_dispatcher is None else start_dispatcher
        app.state.runner = runner
        app.state.dispatcher = None
        if enabled:
            if app.state.runner is None:
                app.state.runner = RayRunner(settings.ray)
                app.state.runner.start()
            app.state.dispatcher = Dispatcher(app.state.session_factory, settings, app.state.runner)
            app.state.dispatcher.start()
        try:
            yield
        finally:
            if app.state.dispatcher is not None:
                app.state.dispatcher.stop()
            if runner is None and app.state.runner is not None:
                app.state.runner.shutdown()
            engine.dispose()

    app = FastAPI(
        title="finetune-sweeps",
        version="0.1.0",
        description="Sweeps over initialization and task statistics for the theory of how "
        "pretraining shapes fine-tuning (arXiv 2602.20062): simulations beside their "
        "theory predictions, queryable by regime and by every init parameter.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(sweeps.router)
    app.include_router(results.router)
    app.include_router(figures.router)
    app.include_router(events.router)
    _include_live_view(app, settings)
    return app


def _include_live_view(app: FastAPI, settings: Settings) -> None:
    """The web page at ``/`` and the Prometheus metrics at ``/metrics`` (issue 12)."""
    from service.observability import routes as metrics_routes
    from service.web import routes as web_routes

    if settings.live.metrics:
        app.include_router(metrics_routes.router)
    if settings.live.page:
        web_routes.mount(app)
