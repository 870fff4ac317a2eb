"""The event stream of a sweep: a thin handler over ``service.events.stream``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse

from service.deps import SessionDep, SettingsDep
from service.events.stream import sweep_events
from service.routes.responses import errors
from service.store import sweeps as sweep_store

router = APIRouter(prefix="/v1/sweeps", tags=["events"])
FINAL = frozenset({"succeeded", "failed", "partial", "cancelled"})


@router.get(
    "/{sweep_id}/events",
    operation_id="stream_sweep_events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}, **errors(404)},
)
def stream_events(
    sweep_id: str,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    last_event_id: Annotated[
        str | None,
        Header(
            max_length=64,
            description="the id of the last event received (anything else: replay from since)",
        ),
    ] = None,
    since: Annotated[
        int | None, Query(ge=0, le=2**63 - 1, description="replay events after this seq")
    ] = None,
) -> StreamingResponse:
    """Server-Sent Events of the sweep (counts, throughput, ETA, trial changes, results)."""
    final = sweep_store.read_sweep(session, sweep_id).status.value in FINAL
    # SSE clients echo back the last id they saw; one that is not ours means "from since".
    resume = last_event_id.strip() if last_event_id else ""
    valid = resume.isascii() and resume.isdigit() and len(resume) <= 18
    after = int(resume) if valid else since or 0
    body = sweep_events(
        request.app.state.session_factory,
        sweep_id,
        after,
        heartbeat_s=settings.live.heartbeat_seconds,
        poll_s=settings.live.poll_seconds,
        final_without_events=final,
        disconnected=request.is_disconnected,
    )
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(body, media_type="text/event-stream", headers=headers)
