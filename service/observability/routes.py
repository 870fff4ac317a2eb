"""``GET /metrics``: Prometheus text format (a thin handler over ``metrics``)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from service.observability.metrics import registry_for
from service.routes.responses import errors

router = APIRouter(tags=["health"])


@router.get(
    "/metrics",
    operation_id="metrics",
    response_class=Response,
    responses=errors(auth=False),
)
def metrics(request: Request) -> Response:
    """Prometheus metrics: trials, queue depth, latencies, batches, cache hits, liveness."""
    registry = getattr(request.app.state, "metrics_registry", None)
    if registry is None:
        registry = request.app.state.metrics_registry = registry_for(request.app)
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
