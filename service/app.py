"""The FastAPI application: ``create_app()`` wires settings, the engine, Ray and the
dispatcher in the lifespan (never at import time) and registers the routers and the
error handlers that render every failure as ``{"error": …, "detail": …}``.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.auth.deps import audit_failure
from service.body_limit import BodyLimitMiddleware
from service.errors import Forbidden, QuotaExceeded, SweepsError, Unauthorized
from service.openapi import install_openapi
from service.routes import (
    audit,
    benchmarks,
    boundary,
    events,
    figures,
    health,
    results,
    sweeps,
    users,
)
from service.settings import Settings, get_settings

log = logging.getLogger("sweeps.app")


# Names of the statuses the router and the body reader raise by themselves.
_HTTP_ERROR_NAMES = {
    400: "BadRequest",
    404: "NotFound",
    405: "MethodNotAllowed",
    413: "ContentTooLarge",
}


def _error(
    status: int, error: str, detail: Any, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        status_code=status, content={"error": error, "detail": detail}, headers=headers
    )


def _clean_validation_errors(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Field path + reason; drop the echoed input (it may be large or contain NaN)."""
    cleaned = []
    for error in errors:
        message = str(error.get("msg", "")).removeprefix("Value error, ")
        item = {"loc": list(error.get("loc", [])), "msg": message, "type": error.get("type")}
        cleaned.append(item)
    return cleaned


def _allowed_methods(request: Request) -> str:
    """The methods the API documents for this path, plus HEAD where GET is served.

    The router's own 405 names only the first route whose path matched (POST of
    ``/v1/sweeps`` but not its GET).  Of the documented templates that match, the most
    literal wins (``/v1/sweeps/plan`` over ``/v1/sweeps/{sweep_id}``), as a reader of
    the document would resolve it.
    """
    app = request.app
    templates = getattr(app.state, "path_methods", None)
    if templates is None:
        templates = []
        for template, operations in app.openapi().get("paths", {}).items():
            regex = re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(template))
            methods = {method.upper() for method in operations}
            templates.append((template.count("{"), re.compile(f"^{regex}$"), methods))
        app.state.path_methods = templates
    matching = [
        (params, served) for params, regex, served in templates if regex.match(request.url.path)
    ]
    if not matching:
        return ""
    fewest = min(params for params, _ in matching)
    methods = set().union(*(served for params, served in matching if params == fewest))
    if "GET" in methods:
        methods.add("HEAD")
    return ", ".join(sorted(methods))


def install_error_handlers(app: FastAPI) -> None:
    """Render every failure as ``{"error", "detail"}``: domain errors with their own
    status, schema errors as 422 with each field's ``loc``, the router's 404/405 (405
    with ``Allow``), body-parse failures (400), oversized bodies (413), database
    trouble (409/503) and anything unexpected (500, logged with its traceback)."""

    @app.exception_handler(SweepsError)
    async def _domain(request: Request, exc: SweepsError) -> JSONResponse:
        if isinstance(exc, Forbidden) and not getattr(request.state, "audited", False):
            # An ownership or quota refusal from the domain: on the record, too.
            principal = getattr(request.state, "principal", None)
            audit_failure(request, "auth.forbidden", 403, {"reason": str(exc.detail)}, principal)
        response = _error(exc.status_code, type(exc).__name__, exc.detail)
        if isinstance(exc, Unauthorized):
            response.headers["WWW-Authenticate"] = 'Bearer realm="finetune-sweeps"'
        if isinstance(exc, QuotaExceeded) and exc.retry_after_s is not None:
            response.headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after_s)))
        return response

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(422, "ValidationError", _clean_validation_errors(list(exc.errors())))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        name = _HTTP_ERROR_NAMES.get(exc.status_code, "HTTPError")
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = _allowed_methods(request)
        return _error(exc.status_code, name, exc.detail, headers or None)

    @app.exception_handler(IntegrityError)
    async def _integrity(_: Request, exc: IntegrityError) -> JSONResponse:
        # The one expected race (two requests with one Idempotency-Key) is resolved in
        # service.sweeps.submit_sweep; anything else here is a bug, not the client's.
        log.error("unexpected integrity error: %s", exc)
        return _error(500, "IntegrityError", "the server hit an unexpected integrity error")

    @app.exception_handler(DataError)
    async def _data(_: Request, exc: DataError) -> JSONResponse:
        # The database refused a value the schema let through (a NUL byte in a text on
        # PostgreSQL): the client's input, so a 4xx that names it, never a 500.
        reason = str(getattr(exc, "orig", exc)).splitlines()[0][:300]
        return _error(422, "InvalidInput", f"the database cannot store a value given: {reason}")

    @app.exception_handler(OperationalError)
    async def _database(_: Request, exc: OperationalError) -> JSONResponse:
        log.error("database error: %s", exc)
        return _error(503, "DatabaseUnavailable", "the database is unavailable; retry later")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return _error(500, "InternalError", f"unexpected {type(exc).__name__}; see the server log")


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
        from service.wiring import start_services

        services = start_services(
            settings, runner=runner, start_dispatcher=start_dispatcher, migrate=migrate
        )
        app.state.engine = services.engine
        app.state.session_factory = services.session_factory
        app.state.runner = services.runner
        app.state.dispatcher = services.dispatcher
        try:
            yield
        finally:
            services.stop()

    app = FastAPI(
        title="finetune-sweeps",
        version="0.1.0",
        description="Sweeps over initialization and task statistics for the theory of how "
        "pretraining shapes fine-tuning (arXiv 2602.20062): simulations beside their "
        "theory predictions, queryable by regime and by every init parameter.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.limits.max_body_bytes)
    install_error_handlers(app)
    install_openapi(app, settings)
    app.include_router(health.router)
    app.include_router(sweeps.router)
    app.include_router(results.router)
    app.include_router(figures.router)
    app.include_router(users.router)
    app.include_router(audit.router)
    app.include_router(boundary.router)
    app.include_router(benchmarks.router)
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
