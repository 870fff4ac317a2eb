"""Adaptive refinement of a parameter box: the ``refine`` part of a sweep spec and the
wire shapes of a refined sweep's progress and boundary (``GET /v1/sweeps/{id}/boundary``).

A refine spec names a 2-D or 3-D box (each axis linear, or logarithmic where the
parameter is a scale), an initial grid of ``initial`` points per axis, and the label the
boundary is drawn on (``label``): a regime column, or a numeric result column cut at
``thresholds``.  The service runs the initial grid, then rounds that split only the
cells whose known points disagree, until ``budget`` trials are used or every boundary
cell is ``max_depth`` halvings deep (``service/refine/``).  Pydantic + stdlib only.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, ValidationInfo, field_validator, model_validator

from api_schemas.result_columns import FILTER_COLUMNS
from api_schemas.workloads import StrictModel

REGIME_LABELS = ("regime_theory", "regime_empirical")
# Why a refined sweep stopped refining.
StopReason = Literal["resolution", "budget", "no_boundary", "cancelled", "error"]


class RefineAxis(StrictModel):
    """One side of the box: ``low`` to ``high``, evenly spaced in log where ``log``."""

    low: float
    high: float
    log: bool = Field(default=False, description="space points geometrically (a scale)")

    @model_validator(mode="after")
    def _ordered(self) -> RefineAxis:
        if not self.low < self.high:
            raise ValueError("low must be < high")
        if self.log and self.low <= 0:
            raise ValueError("a log axis needs low > 0")
        return self


class RefineSpec(StrictModel):
    """Adaptive boundary search over a 2-D or 3-D box (see the module docstring)."""

    box: dict[str, RefineAxis] = Field(
        min_length=2, max_length=3, description="parameter → range; 2 or 3 parameters"
    )
    initial: int = Field(default=9, ge=2, le=65, description="initial grid points per axis")
    max_depth: int = Field(
        default=4, ge=0, le=10, description="most halvings of an initial cell (the resolution)"
    )
    budget: int = Field(ge=1, le=1_000_000, description="most trials in all (points × seeds)")
    label: str = Field(
        default="regime_theory",
        description="regime_theory, regime_empirical, or a numeric result column",
    )
    diagnostics: bool = Field(
        default=True,
        description="regime labels: also split cells whose points' (l-order, PD) ranges "
        "could hold another regime under the classifier's thresholds",
    )
    thresholds: list[float] = Field(
        default_factory=list,
        max_length=16,
        validate_default=True,
        description="cuts of a numeric ``label`` column: a point's label is its bucket",
    )

    @field_validator("label")
    @classmethod
    def _known_column(cls, on: str) -> str:
        if on not in REGIME_LABELS and on not in FILTER_COLUMNS:
            known = ", ".join((*REGIME_LABELS, *FILTER_COLUMNS))
            raise ValueError(f"unknown column {on!r}; known: {known}")
        return on

    @field_validator("thresholds")
    @classmethod
    def _thresholds(cls, thresholds: list[float], info: ValidationInfo) -> list[float]:
        on = info.data.get("label")
        if on is None:  # ``label`` itself was rejected
            return thresholds
        if on in REGIME_LABELS:
            if thresholds:
                raise ValueError(f"thresholds apply to numeric columns, not to {on}")
        elif not thresholds:
            raise ValueError(f"a numeric column ({on}) needs thresholds")
        elif sorted(set(thresholds)) != thresholds:
            raise ValueError("thresholds must be strictly increasing")
        return thresholds

    def finest_cells(self) -> int:
        """Cells per axis at the finest resolution."""
        return (self.initial - 1) * 2**self.max_depth


class RefineProgress(BaseModel):
    """Where a refined sweep stands (a field of ``SweepRead``)."""

    round: int = Field(description="0: the initial grid; n: the n-th subdivision round")
    refining: bool = Field(description="more rounds may follow (the sweep is not done)")
    stop_reason: StopReason | None = Field(
        default=None, description="why refinement ended: resolution, budget, no_boundary, …"
    )
    budget: int = Field(description="most trials the refinement may use")


class BoundaryAxis(BaseModel):
    name: str
    low: float
    high: float
    log: bool
    resolution: float = Field(
        description="finest cell width: parameter units, or decades on a log axis"
    )


class BoundaryCell(BaseModel):
    """A leaf cell whose known points disagree: the boundary passes through it."""

    lower: dict[str, float]
    upper: dict[str, float]
    centre: dict[str, float] = Field(description="the boundary's estimated position")
    labels: list[str] = Field(description="labels met on the cell's points")
    depth: int = Field(description="halvings of an initial cell (max_depth = finest)")


class BoundaryRead(BaseModel):
    """The estimated boundary of a refined sweep: its cells and their resolution.

    The boundary lies inside the union of ``cells``; each cell's centre estimates its
    position to within half the cell's width along every axis.  ``achieved_halfwidth``
    is the largest such half width (unit box coordinates, 0..1 per axis): the
    resolution the budget allowed.
    """

    sweep_id: str
    label: str = Field(description="the column the boundary is drawn on")
    round: int
    refining: bool
    stop_reason: StopReason | None
    axes: list[BoundaryAxis]
    points: int = Field(description="distinct parameter points sampled")
    labelled: int = Field(description="points with a label (finished, value present)")
    labels: dict[str, int] = Field(description="points per label")
    cells: list[BoundaryCell]
    achieved_halfwidth: float | None = Field(
        description="largest half width of a boundary cell, in unit box coordinates"
    )
