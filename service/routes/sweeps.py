"""Sweep endpoints: thin handlers over ``service.sweeps`` and ``service.store.sweeps``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Response, status

from api_schemas.spec import NAME_PATTERN, SweepSpec
from api_schemas.wire import SweepPage, SweepPlan, SweepRead, SweepStatus, TrialPage, TrialStatus
from service import sweeps as sweep_service
from service.auth import policy
from service.deps import AuditDep, ReadableSweep, Reader, SessionDep, SettingsDep, Submitter
from service.routes.responses import BODY, SWEEP_LINKS, errors
from service.store import sweeps as sweep_store

router = APIRouter(prefix="/v1/sweeps", tags=["sweeps"])
CURSOR_PATTERN = "^[A-Za-z0-9_-]{1,512}$"
ID_PATH = Path(min_length=1, max_length=64, description="a sweep id returned by create_sweep")


@router.post(
    "",
    operation_id="create_sweep",
    response_model=SweepRead,
    status_code=status.HTTP_201_CREATED,
    responses={
        201: {"description": "the new sweep", "links": SWEEP_LINKS},
        200: {"model": SweepRead, "description": "idempotent replay", "links": SWEEP_LINKS},
        **errors(*BODY, 409, 429),
    },
)
def create_sweep(
    spec: SweepSpec,
    session: SessionDep,
    settings: SettingsDep,
    principal: Submitter,
    audit: AuditDep,
    response: Response,
    idempotency_key: Annotated[str | None, Header(min_length=1, max_length=200)] = None,
) -> SweepRead:
    """Submit a sweep; an Idempotency-Key (per submitter) makes retries safe."""
    sweep, created = sweep_service.submit_sweep(
        session, spec, settings, principal.name, idempotency_key, kind=principal.kind
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    else:
        audit("sweep.create", f"sweep:{sweep.id}", 201, {"trials": sweep.trial_count})
    return sweep


@router.post("/plan", operation_id="plan_sweep", response_model=SweepPlan, responses=errors(*BODY))
def plan_sweep(spec: SweepSpec, session: SessionDep, settings: SettingsDep, _: Reader) -> SweepPlan:
    """Dry run: trial count, cache hits, batches and estimated cost; writes nothing."""
    return sweep_service.plan_sweep(session, spec, settings)


@router.get("", operation_id="list_sweeps", response_model=SweepPage, responses=errors(400))
def list_sweeps(
    session: SessionDep,
    settings: SettingsDep,
    principal: Reader,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[
        str | None, Query(pattern=CURSOR_PATTERN, description="next_cursor of the previous page")
    ] = None,
    offset: Annotated[
        int,
        Query(ge=0, le=sweep_store.MAX_OFFSET, description="rows to skip (prefer cursor)"),
    ] = 0,
    status_: Annotated[SweepStatus | None, Query(alias="status")] = None,
    name: Annotated[str | None, Query(pattern=NAME_PATTERN)] = None,
    tag: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    submitter: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
) -> SweepPage:
    """List sweeps, newest first, filtered by status, name, tag or submitter (keyset-paged)."""
    return sweep_store.list_sweeps(
        session,
        limit=limit,
        cursor=cursor,
        offset=offset,
        status=status_,
        name=name,
        tag=tag,
        submitter=policy.restricted_to(principal, settings) or submitter,
    )


@router.get(
    "/{sweep_id}",
    operation_id="get_sweep",
    response_model=SweepRead,
    responses={200: {"description": "the sweep", "links": SWEEP_LINKS}, **errors(404)},
)
def get_sweep(sweep_id: ReadableSweep, session: SessionDep, settings: SettingsDep) -> SweepRead:
    """One sweep: status, counts, progress, throughput, ETA, and why pending trials wait."""
    return sweep_service.sweep_with_wait(session, sweep_id, settings)


@router.post(
    "/{sweep_id}/cancel",
    operation_id="cancel_sweep",
    response_model=SweepRead,
    responses=errors(404, 409),
)
def cancel_sweep(
    sweep_id: Annotated[str, ID_PATH], session: SessionDep, principal: Submitter, audit: AuditDep
) -> SweepRead:
    """Cancel pending trials and running batches that no other live sweep needs (owner
    or admin)."""
    sweep = sweep_service.cancel_sweep(session, sweep_id, principal)
    audit("sweep.cancel", f"sweep:{sweep_id}", 200, {"owner": sweep.submitter})
    return sweep


@router.get(
    "/{sweep_id}/trials",
    operation_id="list_sweep_trials",
    response_model=TrialPage,
    responses=errors(400, 404),
)
def list_trials(
    sweep_id: ReadableSweep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[
        str | None, Query(pattern=sweep_store.TRIAL_CURSOR_PATTERN, description="next_cursor")
    ] = None,
    status_: Annotated[TrialStatus | None, Query(alias="status")] = None,
    since: Annotated[
        int | None,
        Query(ge=0, le=2**63 - 1, description="only trials changed after this event seq"),
    ] = None,
) -> TrialPage:
    """The sweep's trials with status, attempts and errors (cursor-paginated)."""
    return sweep_store.list_trials(
        session, sweep_id, limit=limit, cursor=cursor, status=status_, since=since
    )
