"""Refinement without the service: the same rounds over a label function (pure).

The service's controller runs each round's points as trials; this driver calls
``label_of(params)`` instead.  Both make exactly the same rounds for the same labels
(:func:`service.refine.cells.plan_round` decides), so the benchmark and the tests use
this to measure the algorithm, and the service tests check that the two agree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from service.refine.cells import Compare, Label, distinct, plan_round
from service.refine.lattice import Lattice, Point


@dataclass(frozen=True)
class OfflineRun:
    labels: dict[Point, Label | None]
    rounds: int
    stop: str


def refine_offline(
    lattice: Lattice,
    label_of: Callable[[dict[str, Any]], Label | None],
    budget_points: int,
    *,
    compare: Compare = distinct,
    max_rounds: int = 1000,
) -> OfflineRun:
    """Sample the initial grid, then rounds until a stop reason (or ``max_rounds``).

    ``budget_points`` bounds the number of distinct points (the service counts trials,
    i.e. points × seeds).  Raises ValueError when the initial grid alone exceeds it.
    """
    initial = lattice.initial_points()
    if len(initial) > budget_points:
        raise ValueError(f"the initial grid has {len(initial)} points > budget {budget_points}")
    labels: dict[Point, Label | None] = {p: label_of(lattice.params(p)) for p in initial}
    rounds = 0
    while rounds < max_rounds:
        plan = plan_round(lattice, labels, budget_points - len(labels), compare)
        if plan.stop is not None:
            return OfflineRun(labels, rounds, plan.stop)
        rounds += 1
        for point in plan.new_points:
            labels[point] = label_of(lattice.params(point))
    return OfflineRun(labels, rounds, "max_rounds")
