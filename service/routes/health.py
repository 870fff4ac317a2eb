"""Liveness and readiness."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from api_schemas.wire import Health
from service.deps import SessionDep, SettingsDep
from service.routes.responses import errors
from service.store.health import database_answers

router = APIRouter(tags=["health"])


def ray_state(runner: Any, timeout: float) -> tuple[bool, str]:
    """(fine, description) of the runner: a Ray runner is asked whether its cluster
    answers within ``timeout``; other runners (inline, none) just describe themselves."""
    if runner is None:
        return True, "not used"
    probe = getattr(runner, "health", None)
    if probe is None:
        return True, runner.describe()
    return probe(timeout)


@router.get("/healthz", operation_id="health", response_model=Health, responses=errors(auth=False))
def health(request: Request, session: SessionDep, settings: SettingsDep) -> Health:
    """Database reachable, Ray answering (short timeout), dispatcher state."""
    from workers.envelope import code_version

    problem = database_answers(session)
    database = request.app.state.engine.dialect.name if problem is None else f"error: {problem}"
    ray_ok, ray = ray_state(request.app.state.runner, settings.ray.health_timeout_seconds)
    dispatcher = request.app.state.dispatcher
    dispatcher_state = "disabled"
    if dispatcher is not None:
        dispatcher_state = "running" if dispatcher.alive else "stopped"
        if dispatcher.last_error:
            dispatcher_state = "erroring"
    ok = not database.startswith("error") and dispatcher_state in ("running", "disabled") and ray_ok
    return Health(
        status="ok" if ok else "degraded",
        database=database,
        ray=ray,
        dispatcher=dispatcher_state,
        version=code_version(),
    )
