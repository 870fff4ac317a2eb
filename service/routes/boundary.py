"""The boundary of a refine sweep: a thin handler over ``service.refine.report``."""

from __future__ import annotations

from fastapi import APIRouter

from api_schemas.refine import BoundaryRead
from service.deps import SessionDep
from service.refine import report as refine_report
from service.routes.responses import errors

router = APIRouter(prefix="/v1/sweeps", tags=["refine"])


@router.get(
    "/{sweep_id}/boundary",
    operation_id="get_boundary",
    response_model=BoundaryRead,
    responses=errors(404, 409),
)
def get_boundary(sweep_id: str, session: SessionDep) -> BoundaryRead:
    """A refine sweep's boundary cells: estimated position and resolution."""
    return refine_report.sweep_boundary(session, sweep_id)
