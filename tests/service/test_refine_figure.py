"""The phase figure of a refine sweep, drawn from its mesh (pure: synthetic records)."""

from __future__ import annotations

import math

import pytest

from service.figures.common import FigureInputError, to_bytes
from service.figures.refined import refined_phase_figure
from service.refine.lattice import Lattice
from service.refine.offline import refine_offline
from service.refine.state import view_of

BOX = {
    "lambda_pt": {"low": -0.99, "high": 0.99},
    "gamma_ft": {"low": 1e-3, "high": 10.0, "log": True},
    "c_pt": {"low": 1e-4, "high": 1.0, "log": True},
}


def spec_for(names: tuple[str, ...]) -> dict:
    params = {"rho_pt": 0.1, "rho_ft": 0.1, "omega": 1.0, "alpha": 0.2, "c_pt": 1e-3}
    for name in names:
        params.pop(name, None)
    refine = {"box": {n: BOX[n] for n in names}, "initial": 3, "max_depth": 3, "budget": 400}
    return {"name": "fig", "workload": "dln_theory", "params": params, "refine": refine}


def plane(params: dict[str, float]) -> str:
    return "II" if params["lambda_pt"] > 0.3 * math.log10(params["gamma_ft"]) else "IV"


@pytest.mark.parametrize("names", [("lambda_pt", "gamma_ft"), ("lambda_pt", "gamma_ft", "c_pt")])
def test_refined_phase_figure_renders_2d_and_a_3d_slice(names) -> None:
    spec = spec_for(names)
    lattice = Lattice.from_spec(spec["refine"])
    run = refine_offline(lattice, plane, 400)
    records = [{"params": lattice.params(p), "regime_theory": v} for p, v in run.labels.items()]
    view = view_of(spec, records)
    png = to_bytes(refined_phase_figure("fig", view), "png")
    assert png[:4] == b"\x89PNG"
    swapped = to_bytes(refined_phase_figure("fig", view, x="gamma_ft", y="lambda_pt"), "svg")
    assert b"<svg" in swapped[:400]
    with pytest.raises(FigureInputError, match="not an axis"):
        refined_phase_figure("fig", view, x="omega")
