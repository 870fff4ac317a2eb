"""A refine sweep's sampled points as the algorithm sees them (pure, over plain records).

:func:`view_of` maps a sweep's spec and its trials' records to the lattice, each point's
value (label, with (ℓ, PD) for regime labels) and the comparison that decides which
cells are mixed.  The controller, the boundary report and the phase figure all start
from this one view, so they agree on every point and every boundary cell.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from api_schemas.refine import RefineSpec
from api_schemas.spec import SweepSpec
from api_schemas.workloads import WORKLOAD_SCHEMAS
from service.refine.cells import Compare
from service.refine.labels import PointValue, comparator, label_map, label_order, point_values
from service.refine.lattice import Lattice, Point


@dataclass(frozen=True)
class RefineView:
    refine: RefineSpec
    lattice: Lattice
    values: dict[Point, PointValue | None]
    compare: Compare
    seeds: int

    @property
    def labels(self) -> dict[Point, str | None]:
        return label_map(self.values)

    @property
    def order(self) -> list[str]:
        """Every label ``label`` can take, in display order."""
        return label_order(self.refine.label, self.refine.thresholds)


def view_of(
    spec: SweepSpec | Mapping[str, Any], records: Iterable[Mapping[str, Any]]
) -> RefineView:
    """The view of a refine sweep (``spec.refine`` must be set)."""
    if not isinstance(spec, SweepSpec):
        spec = SweepSpec.model_validate(spec)
    refine = spec.refine
    if refine is None:
        raise ValueError(f"sweep spec {spec.name!r} has no refine block")
    lattice = Lattice.from_spec(refine)
    values = point_values(lattice, records, refine.label, refine.thresholds)
    seeds = len(spec.seed_list()) if WORKLOAD_SCHEMAS[spec.workload].uses_seeds else 1
    return RefineView(refine, lattice, values, comparator(refine.label, refine.diagnostics), seeds)
