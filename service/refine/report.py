"""The boundary report of a refine sweep (``GET /v1/sweeps/{id}/boundary``).

:func:`boundary_report` is pure (the refinement inputs in, the wire model out);
:func:`sweep_boundary` is the use case the route calls.  The boundary cells are the leaf
cells whose sampled points carry different labels: the boundary between those labels
passes through each, and its centre estimates the position to within half the cell's
width per axis.  While the sweep still refines (or when the budget stopped it) some
cells are coarser than the finest resolution; ``achieved_halfwidth`` says how coarse.
"""

from __future__ import annotations

from collections import Counter

from sqlalchemy.orm import Session

from api_schemas.refine import BoundaryAxis, BoundaryCell, BoundaryRead
from service.errors import NotRefined
from service.refine.boundary import boundary_cells
from service.refine.state import view_of
from service.store import refine as refine_store
from service.store.refine import RefineInputs


def boundary_report(inputs: RefineInputs) -> BoundaryRead:
    """The estimated boundary of one refine sweep (see the module docstring)."""
    view = view_of(inputs.spec, inputs.records)
    lattice, labels = view.lattice, view.labels
    cells = boundary_cells(lattice, labels, view.order)
    counts = Counter(label for label in labels.values() if label is not None)
    return BoundaryRead(
        sweep_id=inputs.sweep_id,
        label=view.refine.label,
        round=inputs.round,
        refining=inputs.refining,
        stop_reason=inputs.stop_reason,
        axes=[
            BoundaryAxis(
                name=axis.name,
                low=axis.low,
                high=axis.high,
                log=axis.log,
                resolution=axis.width(1 / lattice.finest),
            )
            for axis in lattice.axes
        ],
        points=len(labels),
        labelled=sum(counts.values()),
        labels={label: counts[label] for label in sorted(counts, key=_ranker(view.order))},
        cells=[
            BoundaryCell(
                lower=cell.lower,
                upper=cell.upper,
                centre=cell.centre,
                labels=[str(label) for label in cell.labels],
                depth=cell.depth,
            )
            for cell in cells
        ],
        achieved_halfwidth=max((cell.halfwidth for cell in cells), default=None),
    )


def _ranker(order: list[str]):  # noqa: ANN202 - a sort key
    return lambda label: (order.index(label) if label in order else len(order), label)


def sweep_boundary(session: Session, sweep_id: str) -> BoundaryRead:
    """The boundary of a stored refine sweep; 404 for an unknown or non-refine sweep."""
    try:
        inputs = refine_store.refine_inputs(session, sweep_id)
    except ValueError:
        raise NotRefined(
            f"sweep {sweep_id} is not a refine sweep (its spec has no refine block), "
            "so it has no boundary; draw its phase figure instead"
        ) from None
    return boundary_report(inputs)
