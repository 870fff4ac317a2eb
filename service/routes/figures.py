"""Figures and the agreement report of a sweep: thin handlers over ``service.figures``
and ``service.report``."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Response
from sqlalchemy.orm import Session

from api_schemas.report import DEFAULT_CLASSIFIER, AgreementReport, ClassifierVersion
from service import report as report_service
from service.deps import ReadableSweep, SessionDep
from service.figures import FORMATS, KINDS, FigureOptions
from service.figures import sweep as figure_service
from service.figures.cache import RENDERINGS
from service.routes.responses import errors
from service.store import events as event_store

router = APIRouter(prefix="/v1/sweeps", tags=["figures"])
ERRORS = errors(404, 409)
FIGURE_HELP = "; ".join(f"{kind}: {text}" for kind, text in KINDS.items())
FIGURE_PATTERN = f"^({'|'.join(KINDS)})\\.({'|'.join(FORMATS)})$"
SweepIdPath = Annotated[str, Path(min_length=1, max_length=64)]
MapAxis = Annotated[str | None, Query(min_length=1, max_length=64)]


@router.get(
    "/{sweep_id}/figures/{figure}",
    operation_id="render_figure",
    response_class=Response,
    responses={200: {"content": {mime: {} for mime in FORMATS.values()}}, **ERRORS},
    description=f"`figure` is `<kind>.<png|svg>`. Kinds — {FIGURE_HELP}.",
)
def render_figure(
    sweep_id: ReadableSweep,
    figure: Annotated[
        str,
        # Documented, not validated here: another name is a 404 UnknownFigure that lists
        # the kinds and formats (parse_figure_name), not a pattern-mismatch 422.
        Path(description="<kind>.<png|svg>", json_schema_extra={"pattern": FIGURE_PATTERN}),
    ],
    session: SessionDep,
    theory_sweep: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=64,
            description="a dln_theory sweep whose curves are the theory lines",
        ),
    ] = None,
    x: Annotated[MapAxis, Query(description="maps: parameter on the x axis")] = None,
    y: Annotated[MapAxis, Query(description="maps: parameter on the y axis")] = None,
    yscale: Literal["log", "linear"] = "log",
    source: Annotated[
        Literal["theory", "empirical"], Query(description="heat maps: which ℓ / PD values")
    ] = "theory",
    floor: Annotated[
        float, Query(gt=0, le=1e300, description="scatter: stopping-rule floor")
    ] = 1e-2,
) -> Response:
    """A figure of the sweep, rendered server-side as PNG or SVG."""
    kind, fmt = figure_service.parse_figure_name(figure)
    options = FigureOptions(x=x, y=y, yscale=yscale, source=source, floor=floor)
    content = RENDERINGS.get_or_render(
        _cache_key(session, sweep_id, ("figure", kind, fmt, theory_sweep, options)),
        lambda: figure_service.sweep_figure(
            session, sweep_id, kind, fmt, theory_sweep=theory_sweep, options=options
        ),
    )
    headers = {"Content-Disposition": f'inline; filename="{sweep_id}-{figure}"'}
    return Response(content=content, media_type=FORMATS[fmt], headers=headers)


@router.get(
    "/{sweep_id}/report",
    operation_id="get_report",
    response_model=AgreementReport,
    responses=ERRORS,
)
def get_report(
    sweep_id: ReadableSweep,
    session: SessionDep,
    floor: Annotated[
        float,
        Query(gt=0, le=1e300, description="E_gen below which the stopping rule sets the error"),
    ] = report_service.DEFAULT_FLOOR,
    worst: Annotated[int, Query(ge=0, le=1000, description="how many worst configs")] = 10,
    classifier: Annotated[
        ClassifierVersion,
        Query(description="regime classifier applied to the stored (ℓ, PD)"),
    ] = DEFAULT_CLASSIFIER,
) -> AgreementReport:
    """Theory vs simulation per config: mean ± SEM, z-score, 95% coverage, regimes."""
    return RENDERINGS.get_or_render(
        _cache_key(session, sweep_id, ("report", floor, worst, classifier)),
        lambda: report_service.sweep_report(
            session, sweep_id, floor=floor, worst=worst, classifier_version=classifier
        ),
    )


def _cache_key(session: Session, sweep_id: str, request: tuple) -> tuple | None:
    """(sweep, its latest event seq, the request); None when the sweep has no events
    (a theory sweep's own events do not cover a companion ``theory_sweep``: not cached)."""
    latest = event_store.latest_event(session, sweep_id)
    if latest is None or (request[0] == "figure" and request[3] is not None):
        return None
    return (sweep_id, latest[0], request)
