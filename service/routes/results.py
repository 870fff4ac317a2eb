"""Result endpoints: thin handlers over ``service.store.results``.

The handlers read the raw query string and hand it to ``result_filters`` so that every
parameter name is checked (a typo such as ``lamda_pt_lt`` is a 422, never ignored).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from api_schemas.wire import ResultPage, Summary
from service import results_export
from service.deps import SessionDep, SettingsDep
from service.routes.responses import errors
from service.store import results as results_store
from service.store.result_filters import (
    openapi_parameters,
    parse_export_query,
    parse_list_query,
    parse_summary_query,
)

router = APIRouter(prefix="/v1/results", tags=["results"])
ERRORS = errors(400, 404)


@router.get(
    "",
    operation_id="list_results",
    response_model=ResultPage,
    responses=ERRORS,
    openapi_extra={"parameters": openapi_parameters("list")},
)
def list_results(request: Request, session: SessionDep, settings: SettingsDep) -> ResultPage:
    """Results filtered by regime, parameter ranges, sweep, workload and status; paged."""
    query = parse_list_query(request.query_params.multi_items(), settings.limits.page_limit)
    return results_store.list_results(session, query)


@router.get(
    "/summary",
    operation_id="summarize_results",
    response_model=Summary,
    responses=ERRORS,
    openapi_extra={"parameters": openapi_parameters("summary")},
)
def summarize_results(request: Request, session: SessionDep) -> Summary:
    """Per parameter group: count, mean ± SEM of the simulation, theory and regime."""
    query = parse_summary_query(request.query_params.multi_items())
    return results_store.summarize_results(session, query)


@router.get(
    "/export",
    operation_id="export_results",
    response_class=StreamingResponse,
    responses={
        200: {"content": {mime: {} for mime in results_export.MEDIA_TYPES.values()}},
        **ERRORS,
    },
    openapi_extra={"parameters": openapi_parameters("export")},
)
def export_results(request: Request, session: SessionDep) -> StreamingResponse:
    """Every matching result as a streamed CSV or Parquet file."""
    query = parse_export_query(request.query_params.multi_items())
    results_store.ensure_sweep(session, query.filter.sweep_id)
    return results_export.export_response(request.app.state.session_factory, query)
