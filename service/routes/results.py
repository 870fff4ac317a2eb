"""Result endpoints: thin handlers over ``service.store.results``.

The handlers read the raw query string and hand it to ``result_filters`` so that every
parameter name is checked (a typo such as ``lamda_pt_lt`` is a 422, never ignored).
"""

from __future__ import annotations

from dataclasses import replace

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from api_schemas.wire import ResultPage, Summary
from service import results_export
from service.auth import policy
from service.deps import Reader, SessionDep, SettingsDep
from service.routes.responses import errors
from service.store import results as results_store
from service.store.result_filters import (
    openapi_parameters,
    parse_export_query,
    parse_list_query,
    parse_summary_query,
)

router = APIRouter(prefix="/v1/results", tags=["results"])


def visible(query, principal, settings):  # noqa: ANN001, ANN201 - any query with a .filter
    """The query limited to the principal's own sweeps when reads are restricted."""
    owner = policy.restricted_to(principal, settings)
    if owner is None:
        return query
    return replace(query, filter=replace(query.filter, visible_to=owner))


ERRORS = errors(400, 404)


@router.get(
    "",
    operation_id="list_results",
    response_model=ResultPage,
    responses=ERRORS,
    openapi_extra={"parameters": openapi_parameters("list")},
)
def list_results(
    request: Request, session: SessionDep, settings: SettingsDep, principal: Reader
) -> ResultPage:
    """Results filtered by regime, parameter ranges, sweep, workload and status; paged."""
    query = parse_list_query(request.query_params.multi_items(), settings.limits.page_limit)
    return results_store.list_results(session, visible(query, principal, settings))


@router.get(
    "/summary",
    operation_id="summarize_results",
    response_model=Summary,
    responses=ERRORS,
    openapi_extra={"parameters": openapi_parameters("summary")},
)
def summarize_results(
    request: Request, session: SessionDep, settings: SettingsDep, principal: Reader
) -> Summary:
    """Per parameter group: count, mean ± SEM of the simulation, theory and regime."""
    query = parse_summary_query(request.query_params.multi_items())
    return results_store.summarize_results(session, visible(query, principal, settings))


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
def export_results(
    request: Request, session: SessionDep, settings: SettingsDep, principal: Reader
) -> StreamingResponse:
    """Every matching result as a streamed CSV or Parquet file."""
    query = visible(parse_export_query(request.query_params.multi_items()), principal, settings)
    results_store.ensure_sweep(session, query.filter.sweep_id)
    return results_export.export_response(request.app.state.session_factory, query)
