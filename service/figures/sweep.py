"""The figure use case: a stored sweep (and an optional companion theory sweep) → bytes.

Theory lines: with ``theory_sweep`` (a ``dln_theory`` sweep over the same task and init
settings, typically 80 α points) the lines are its replica curves; without it they join
the replica values stored on each simulated config (``gen_error_asymptotic`` at the
simulated α).  Errors: unknown kind or format 404, unknown sweep 404, no results 409,
a map over parameters the sweep does not vary 422.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from service.errors import BadQuery, NoResultsYet, SweepNotFound, UnknownFigure
from service.figures import (
    FORMATS,
    KINDS,
    NEEDS_SIMULATION,
    FigureInput,
    FigureInputError,
    FigureOptions,
    render,
)
from service.refine.state import view_of
from service.store import figures as figure_store
from service.store import refine as refine_store


def parse_figure_name(name: str) -> tuple[str, str]:
    """``"gen_error.png"`` → ``("gen_error", "png")``; ``UnknownFigure`` (404) otherwise."""
    kind, dot, fmt = name.rpartition(".")
    if not dot:
        kind, fmt = name, ""
    if kind not in KINDS or fmt not in FORMATS:
        raise UnknownFigure(
            f"no figure {name!r}: ask for <kind>.<format> with kind one of "
            f"{', '.join(KINDS)} and format one of {', '.join(FORMATS)}"
        )
    return kind, fmt


def sweep_figure(
    session: Session,
    sweep_id: str,
    kind: str,
    fmt: str,
    *,
    theory_sweep: str | None = None,
    options: FigureOptions | None = None,
) -> bytes:
    """Render figure ``kind`` of a stored sweep as ``fmt`` bytes."""
    if kind not in KINDS or fmt not in FORMATS:
        parse_figure_name(f"{kind}.{fmt}")
    sweep = figure_store.sweep_info(session, sweep_id)
    records = figure_store.sweep_records(session, sweep_id)
    if kind in NEEDS_SIMULATION:
        figure_store.require_simulation(sweep, records)
    theory_records = []
    if theory_sweep is not None:
        try:
            companion = figure_store.sweep_info(session, theory_sweep)
        except SweepNotFound:
            raise SweepNotFound(f"no theory_sweep with id {theory_sweep!r}") from None
        theory_records = figure_store.sweep_records(session, companion.id)
        if not any(r.get("gen_error_asymptotic") is not None for r in theory_records):
            raise NoResultsYet(
                f"theory_sweep {theory_sweep} ({companion.name}) has no replica results "
                "(gen_error_asymptotic); pass a dln_theory sweep"
            )
    refine = None
    if kind == "phase":
        try:
            inputs = refine_store.refine_inputs(session, sweep_id)
        except ValueError:  # not a refine sweep: the plain grid figure
            inputs = None
        if inputs is not None:
            refine = view_of(inputs.spec, inputs.records)
    data = FigureInput(
        title=sweep.name, records=records, theory_records=theory_records, refine=refine
    )
    try:
        return render(kind, fmt, data, options)
    except FigureInputError as exc:
        raise BadQuery([{"loc": ["query"], "msg": str(exc), "type": "value_error"}]) from None
