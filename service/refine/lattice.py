"""The integer lattice under a refined box: lattice points ↔ parameter values.

Every point a refinement can ever ask for lies on one lattice of
``finest = (initial − 1) · 2^max_depth`` cells per axis: the initial grid is every
``2^max_depth``-th lattice point, and each halving of a cell uses the points half way
between its corners.  Points are tuples of integers; a parameter value is computed from
its index by one formula (linear, or geometric on a log axis) with exact end points, so
the same point always gives the same float, hence the same content-addressed trial key
(a resubmitted refined sweep is all cache hits).  Pure: no database, no I/O.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

Point = tuple[int, ...]
# Relative tolerance when mapping a stored value back to its lattice index.
_MATCH_REL = 1e-9


@dataclass(frozen=True)
class LatticeAxis:
    name: str
    low: float
    high: float
    log: bool = False

    def at(self, unit: float) -> float:
        """The parameter value at ``unit`` ∈ [0, 1] along this axis."""
        if self.log:
            lo, hi = math.log(self.low), math.log(self.high)
            return math.exp(lo + unit * (hi - lo))
        return self.low + unit * (self.high - self.low)

    def unit(self, value: float) -> float:
        """The inverse of :meth:`at` (no clipping)."""
        if self.log:
            lo, hi = math.log(self.low), math.log(self.high)
            return (math.log(value) - lo) / (hi - lo)
        return (value - self.low) / (self.high - self.low)

    def width(self, fraction: float) -> float:
        """A ``fraction`` of the axis in parameter units, or in decades on a log axis."""
        if self.log:
            return fraction * math.log10(self.high / self.low)
        return fraction * (self.high - self.low)


@dataclass(frozen=True)
class Lattice:
    """The box's axes, the initial grid size and the finest resolution."""

    axes: tuple[LatticeAxis, ...]
    initial: int
    max_depth: int

    @classmethod
    def from_spec(cls, refine: Any) -> Lattice:
        """From an ``api_schemas.refine.RefineSpec`` (or its JSON dict)."""
        data = refine if isinstance(refine, Mapping) else refine.model_dump(mode="json")
        axes = tuple(
            LatticeAxis(name, float(a["low"]), float(a["high"]), bool(a.get("log", False)))
            for name, a in data["box"].items()
        )
        return cls(axes, int(data.get("initial", 9)), int(data.get("max_depth", 4)))

    @property
    def dim(self) -> int:
        return len(self.axes)

    @property
    def step0(self) -> int:
        """Lattice spacing of the initial grid (the size of an initial cell)."""
        return 2**self.max_depth

    @property
    def finest(self) -> int:
        """Cells per axis at the finest resolution (the largest index)."""
        return (self.initial - 1) * self.step0

    def value(self, axis: int, index: int) -> float:
        spec = self.axes[axis]
        if index == 0:
            return spec.low
        if index == self.finest:
            return spec.high
        return spec.at(index / self.finest)

    def params(self, point: Point) -> dict[str, float]:
        """``{parameter: value}`` of a lattice point."""
        return {
            a.name: self.value(i, index)
            for i, (a, index) in enumerate(zip(self.axes, point, strict=True))
        }

    def unit(self, point: Point) -> tuple[float, ...]:
        """The point in unit box coordinates (each axis 0..1, log axes in log)."""
        return tuple(index / self.finest for index in point)

    def locate(self, params: Mapping[str, Any]) -> Point | None:
        """The lattice point whose values these are, or None (not a point of this box)."""
        point = []
        for i, axis in enumerate(self.axes):
            value = params.get(axis.name)
            if not isinstance(value, int | float) or (axis.log and value <= 0):
                return None
            index = round(axis.unit(float(value)) * self.finest)
            if not 0 <= index <= self.finest:
                return None
            expected = self.value(i, index)
            if abs(expected - value) > _MATCH_REL * max(abs(expected), abs(value), 1e-300):
                return None
            point.append(index)
        return tuple(point)

    def initial_points(self) -> list[Point]:
        """The initial grid, first axis slowest."""
        ticks = range(0, self.finest + 1, self.step0)
        return [tuple(p) for p in itertools.product(ticks, repeat=self.dim)]

    def depth_of(self, size: int) -> int:
        """Halvings of an initial cell that give a cell of ``size`` lattice steps."""
        return self.max_depth - int(math.log2(size))


def as_params(lattice: Lattice, points: Iterable[Point]) -> list[dict[str, float]]:
    return [lattice.params(point) for point in points]
