"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter, Request

from api_schemas.wire import Health
from service.deps import SessionDep
from service.store.health import database_answers

router = APIRouter(tags=["health"])


@router.get("/healthz", operation_id="health", response_model=Health)
def health(request: Request, session: SessionDep) -> Health:
    """Database reachable, Ray state, dispatcher state."""
    from workers.envelope import code_version

    problem = database_answers(session)
    database = request.app.state.engine.dialect.name if problem is None else f"error: {problem}"
    runner = request.app.state.runner
    dispatcher = request.app.state.dispatcher
    dispatcher_state = "disabled"
    if dispatcher is not None:
        dispatcher_state = "running" if dispatcher.alive else "stopped"
        if dispatcher.last_error:
            dispatcher_state = "erroring"
    ok = not database.startswith("error") and dispatcher_state in ("running", "disabled")
    return Health(
        status="ok" if ok else "degraded",
        database=database,
        ray=runner.describe() if runner is not None else "not used",
        dispatcher=dispatcher_state,
        version=code_version(),
    )
