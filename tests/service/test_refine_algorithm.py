"""The refinement algorithm on synthetic labellings with known boundaries (pure: no
database, no workers)."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from service.refine.boundary import boundary_cells, grid_units, predict
from service.refine.cells import plan_round
from service.refine.labels import (
    PointValue,
    bucket_names,
    comparator,
    point_value,
    regimes_possible,
)
from service.refine.lattice import Lattice, LatticeAxis
from service.refine.offline import refine_offline

AXES_2D = (LatticeAxis("lambda_pt", -1.0, 1.0), LatticeAxis("gamma_ft", 1e-2, 1e2, log=True))


def circle(params: dict[str, float]) -> str:
    """Inside / outside a circle of radius 0.3 around the unit box's centre."""
    u = (params["lambda_pt"] + 1) / 2
    v = (math.log10(params["gamma_ft"]) + 2) / 4
    return "in" if (u - 0.5) ** 2 + (v - 0.5) ** 2 < 0.09 else "out"


def test_lattice_values_round_trip_exactly() -> None:
    lattice = Lattice(AXES_2D, initial=9, max_depth=5)
    rng = random.Random(0)
    for _ in range(200):
        point = (rng.randint(0, lattice.finest), rng.randint(0, lattice.finest))
        assert lattice.locate(lattice.params(point)) == point
    assert lattice.params((0, lattice.finest)) == {"lambda_pt": -1.0, "gamma_ft": 1e2}
    assert lattice.locate({"lambda_pt": 0.123456, "gamma_ft": 1.0}) is None  # off the lattice


def test_circle_boundary_is_found_at_the_finest_resolution() -> None:
    lattice = Lattice(AXES_2D, initial=9, max_depth=4)
    run = refine_offline(lattice, circle, budget_points=10_000)
    assert run.stop == "resolution" and run.rounds == 4
    cells = boundary_cells(lattice, run.labels)
    assert cells and all(cell.depth == lattice.max_depth for cell in cells)
    # Every boundary cell straddles the true circle (within its own half diagonal) ...
    for cell in cells:
        u, v = (np.array(cell.cell.origin) + cell.cell.size / 2) / lattice.finest
        assert abs(math.hypot(u - 0.5, v - 0.5) - 0.3) <= cell.halfwidth * math.sqrt(2) + 1e-12
    # ... the map it implies is right almost everywhere ...
    units = grid_units(256)
    truth = [circle(lattice_params(lattice, u)) for u in units]
    found = predict(lattice, run.labels, units)
    wrong = np.mean([a != b for a, b in zip(truth, found, strict=True)])
    assert wrong < 0.01
    # ... with far fewer points than the uniform grid of the same resolution.
    assert len(run.labels) < 0.3 * (lattice.finest + 1) ** 2


def lattice_params(lattice: Lattice, unit: np.ndarray) -> dict[str, float]:
    return {axis.name: axis.at(float(u)) for axis, u in zip(lattice.axes, unit, strict=True)}


def test_a_box_without_boundary_stops_after_the_initial_grid() -> None:
    lattice = Lattice(AXES_2D, initial=5, max_depth=4)
    run = refine_offline(lattice, lambda params: "II", budget_points=1000)
    assert run.stop == "no_boundary" and run.rounds == 0 and len(run.labels) == 25


def test_refinement_never_exceeds_the_budget() -> None:
    lattice = Lattice(AXES_2D, initial=9, max_depth=6)
    for budget in (81, 100, 250, 600):
        run = refine_offline(lattice, circle, budget_points=budget)
        assert len(run.labels) <= budget and run.stop == "budget"
    with pytest.raises(ValueError, match="initial grid"):
        refine_offline(lattice, circle, budget_points=80)


def test_three_dimensional_plane() -> None:
    axes = (*AXES_2D, LatticeAxis("c_pt", 1e-4, 1.0, log=True))
    lattice = Lattice(axes, initial=5, max_depth=3)

    def plane(params: dict[str, float]) -> str:
        return "a" if params["lambda_pt"] + 0.5 * math.log10(params["c_pt"]) < -1.0 else "b"

    run = refine_offline(lattice, plane, budget_points=100_000)
    assert run.stop == "resolution"
    cells = boundary_cells(lattice, run.labels)
    assert cells and all(cell.depth == 3 for cell in cells)
    assert len(run.labels) < 0.5 * (lattice.finest + 1) ** 3


def test_a_small_island_between_grid_points_is_found_through_the_diagnostics() -> None:
    """Two corners agree on IV, but their (l, PD) span the regime-I corner of the
    classifier: the cell is split although its labels agree."""
    a, b = PointValue("IV", 1.3, -0.05), PointValue("IV", 1.2, -0.2)
    assert regimes_possible([a, b]) >= {"I", "IV"}
    assert regimes_possible([PointValue("II", 1.9, -0.9), PointValue("II", 1.8, -0.8)]) == {"II"}
    lattice = Lattice(AXES_2D, initial=2, max_depth=2)
    corners = {p: a if p[0] == 0 else b for p in lattice.initial_points()}
    labels_only = comparator("regime_theory", diagnostics=False)
    assert plan_round(lattice, corners, 100, labels_only).stop == "no_boundary"
    split = plan_round(lattice, corners, 100, comparator("regime_theory", diagnostics=True))
    assert split.stop is None and len(split.new_points) == 5


def test_point_labels_majority_over_seeds_and_threshold_buckets() -> None:
    records = [
        {"regime_empirical": "II", "regime_theory": "IV"},
        {"regime_empirical": "IV", "regime_theory": "IV"},
        {"regime_empirical": "II", "regime_theory": "IV"},
    ]
    assert point_value(records, "regime_empirical", ()).label == "II"
    assert point_value(records[:2], "regime_empirical", ()).label == "IV"  # tie → theory
    assert bucket_names([0.1, 0.5]) == ["<0.1", "[0.1,0.5)", ">=0.5"]
    values = [{"gen_error_asymptotic": v} for v in (0.2, 0.4, None)]
    assert point_value(values, "gen_error_asymptotic", [0.1, 0.5]).label == "[0.1,0.5)"
    assert point_value([{"gen_error_asymptotic": None}], "gen_error_asymptotic", [0.1]) is None
