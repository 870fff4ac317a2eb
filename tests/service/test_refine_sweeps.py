"""Refine sweeps through the real store and dispatcher (SQLite and PostgreSQL): rounds
grow the sweep, the budget holds, resubmission is all cache hits, the status says the
round, bad specs are 422s with field paths, and the boundary / phase figure endpoints."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api_schemas.spec import SweepSpec
from service.dispatch import Dispatcher
from service.refine.lattice import Lattice
from service.refine.offline import refine_offline
from service.runners import InlineRunner
from service.settings import Settings
from service.store import sweeps as sweep_store
from service.store.models import Trial
from service.store.session import session_scope
from service.sweeps import submit_sweep
from workers.config import InitParams, TaskStats
from workers.theory.regimes import theory_regime

TASK = {"rho_pt": 0.1, "rho_ft": 0.1, "omega": 1.0, "c_pt": 1.0e-3, "alpha": 0.2}
BOX = {
    "lambda_pt": {"low": -0.99, "high": 0.99},
    "gamma_ft": {"low": 1.0e-3, "high": 10.0, "log": True},
}


def refine_spec(**refine: Any) -> dict[str, Any]:
    block = {"box": BOX, "initial": 4, "max_depth": 3, "budget": 40, **refine}
    return {"name": "refine", "workload": "dln_theory", "params": TASK, "refine": block}


def submit(factory, spec: dict, settings: Settings):
    with session_scope(factory) as session:
        sweep, _ = submit_sweep(session, SweepSpec.model_validate(spec), settings, "tester", None)
    return sweep


def read(factory, sweep_id: str):
    with session_scope(factory) as session:
        return sweep_store.read_sweep(session, sweep_id)


def trial_rows(factory) -> int:
    with session_scope(factory) as session:
        return session.scalar(select(func.count()).select_from(Trial))


def theory_label(params: dict[str, float]) -> str:
    task = TaskStats(TASK["rho_pt"], TASK["rho_ft"], TASK["omega"])
    return theory_regime(task, InitParams(TASK["c_pt"], **params)).label


def test_refinement_stops_at_the_budget_and_matches_the_offline_rounds(
    session_factory, migrated_url
) -> None:
    settings = Settings(database_url=migrated_url)
    spec = refine_spec(diagnostics=False)
    sweep = submit(session_factory, spec, settings)
    assert sweep.trial_count == 16 and sweep.refine.round == 0 and sweep.refine.refining
    Dispatcher(session_factory, settings, InlineRunner()).run_until_idle()
    done = read(session_factory, sweep.id)
    assert done.status == "succeeded" and done.refine.stop_reason == "budget"
    assert 16 < done.trial_count <= 40 and done.counts.succeeded == done.trial_count
    assert done.refine.round >= 1 and not done.refine.refining and done.finished_at is not None
    # The service sampled exactly the points the pure algorithm picks over the same labels.
    lattice = Lattice.from_spec(spec["refine"])
    with session_scope(session_factory) as session:
        stored = {lattice.locate(p) for p in session.scalars(select(Trial.params))}
    offline = refine_offline(lattice, theory_label, 40)
    assert stored == set(offline.labels) and offline.stop == "budget"
    assert len(stored) == done.trial_count and done.refine.round == offline.rounds


def test_a_resubmitted_refine_sweep_is_all_cache_hits(session_factory, migrated_url) -> None:
    settings = Settings(database_url=migrated_url)
    first = submit(session_factory, refine_spec(), settings)
    Dispatcher(session_factory, settings, InlineRunner()).run_until_idle()
    before = trial_rows(session_factory)
    again = submit(session_factory, refine_spec(), settings)
    assert again.cached_count == again.trial_count == 16
    runner = InlineRunner()
    Dispatcher(session_factory, settings, runner).run_until_idle()
    second, original = read(session_factory, again.id), read(session_factory, first.id)
    assert trial_rows(session_factory) == before  # nothing new was made, nothing reran
    assert second.trial_count == original.trial_count == second.cached_count
    assert second.refine.round == original.refine.round and second.status == "succeeded"


def test_a_box_without_boundary_stops_after_the_initial_grid(session_factory, migrated_url) -> None:
    settings = Settings(database_url=migrated_url)
    box = {"lambda_pt": {"low": 0.5, "high": 0.99}, "gamma_ft": {"low": 1e-3, "high": 1e-2}}
    sweep = submit(session_factory, refine_spec(box=box, budget=100), settings)
    Dispatcher(session_factory, settings, InlineRunner()).run_until_idle()
    done = read(session_factory, sweep.id)
    assert done.refine.stop_reason == "no_boundary" and done.refine.round == 0
    assert done.trial_count == 16 and done.status == "succeeded"


def test_the_status_says_the_round_and_is_not_succeeded_while_refining(
    session_factory, migrated_url, app_client: TestClient
) -> None:
    settings = Settings(database_url=migrated_url)
    sweep = submit(session_factory, refine_spec(), settings)
    dispatcher = Dispatcher(session_factory, settings, InlineRunner())
    dispatcher._refine = lambda: False  # the initial grid only
    dispatcher.run_until_idle()
    body = app_client.get(f"/v1/sweeps/{sweep.id}").json()
    assert body["status"] == "running" and body["counts"]["succeeded"] == 16
    assert body["refine"] == {"round": 0, "refining": True, "stop_reason": None, "budget": 40}
    boundary = app_client.get(f"/v1/sweeps/{sweep.id}/boundary").json()
    assert boundary["refining"] and boundary["points"] == 16 and boundary["cells"]
    Dispatcher(session_factory, settings, InlineRunner()).run_until_idle()
    body = app_client.get(f"/v1/sweeps/{sweep.id}").json()
    assert body["status"] == "succeeded" and body["refine"]["round"] >= 1
    boundary = app_client.get(f"/v1/sweeps/{sweep.id}/boundary").json()
    cell = boundary["cells"][0]
    assert len(cell["labels"]) >= 2 and set(cell["centre"]) == {"lambda_pt", "gamma_ft"}
    assert boundary["axes"][1]["log"] and boundary["axes"][1]["resolution"] == pytest.approx(
        4 / 24
    )  # 4 decades over (4 - 1) * 2^3 cells
    png = app_client.get(f"/v1/sweeps/{sweep.id}/figures/phase.png")
    assert png.status_code == 200 and png.content[:4] == b"\x89PNG"


def test_cancel_between_rounds_stops_the_refinement(session_factory, migrated_url) -> None:
    settings = Settings(database_url=migrated_url)
    sweep = submit(session_factory, refine_spec(), settings)
    dispatcher = Dispatcher(session_factory, settings, InlineRunner())
    dispatcher._refine = lambda: False
    dispatcher.run_until_idle()
    with session_scope(session_factory) as session:
        sweep_store.cancel_sweep(session, sweep.id)
    Dispatcher(session_factory, settings, InlineRunner()).run_until_idle()
    done = read(session_factory, sweep.id)
    assert done.status == "cancelled" and done.refine.stop_reason == "cancelled"
    assert done.trial_count == 16


def test_empirical_regimes_with_seeds(session_factory, migrated_url) -> None:
    spec = {
        "name": "refine-emp",
        "workload": "dln_finetune",
        "params": {"D": 40, "alpha": 0.5, "rho_pt": 0.1, "rho_ft": 0.1, "omega": 1.0},
        "refine": {
            "box": {"lambda_pt": {"low": -0.9, "high": 0.9}, "c_pt": BOX["gamma_ft"]},
            "initial": 3,
            "max_depth": 1,
            "budget": 40,
            "label": "regime_empirical",
        },
        "seeds": 2,
        "execution": {"lr": 0.2, "max_steps": 2000},
    }
    spec["params"]["gamma_ft"] = 0.5
    settings = Settings(database_url=migrated_url)
    sweep = submit(session_factory, spec, settings)
    assert sweep.trial_count == 18  # 3 × 3 points × 2 seeds
    Dispatcher(session_factory, settings, InlineRunner()).run_until_idle()
    done = read(session_factory, sweep.id)
    assert done.refine.stop_reason in {"budget", "resolution", "no_boundary"}
    assert done.trial_count <= 40 and done.trial_count % 2 == 0
    assert done.status == "succeeded"


def _with(spec: dict, path: list, value: Any) -> dict:
    out = copy.deepcopy(spec)
    node = out
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return out


BAD = {
    "log axis at zero": (
        ["refine", "box", "gamma_ft"],
        {"low": 0.0, "high": 10.0, "log": True},
        ["body", "refine", "box", "gamma_ft"],
    ),
    "out of range": (
        ["refine", "box", "lambda_pt"],
        {"low": -1.5, "high": 0.5},
        ["body", "refine", "box", "lambda_pt"],
    ),
    "budget below the grid": (["refine", "budget"], 10, ["body", "refine", "budget"]),
    "unknown column": (["refine", "label"], "regime", ["body", "refine", "label"]),
    "no empirical theory": (["refine", "label"], "regime_empirical", ["body", "refine", "label"]),
    "thresholds on a label": (["refine", "thresholds"], [0.1], ["body", "refine", "thresholds"]),
    "axes beside": (["axes"], {"a_pt": [1.0, 2.0]}, ["body", "axes"]),
    "one-dimensional box": (
        ["refine", "box"],
        {"lambda_pt": {"low": 0, "high": 1}},
        ["body", "refine", "box"],
    ),
    "unknown parameter": (
        ["refine", "box", "lamda_pt"],
        {"low": 0, "high": 1},
        ["body", "refine", "box", "lamda_pt"],
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_refine_spec_is_a_422_with_the_field_path(app_client: TestClient, case) -> None:
    path, value, loc = BAD[case]
    response = app_client.post("/v1/sweeps", json=_with(refine_spec(), path, value))
    assert response.status_code == 422, response.text
    locs = [error["loc"] for error in response.json()["detail"]]
    assert loc in locs or any(list(found[: len(loc)]) == loc for found in locs), locs
    assert app_client.get("/v1/sweeps").json()["total"] == 0


def test_boundary_of_a_plain_sweep_is_409(app_client: TestClient) -> None:
    spec = {"name": "grid", "workload": "dln_theory", "params": TASK, "axes": {}}
    spec["params"] = {**TASK, "lambda_pt": 0.0, "gamma_ft": 0.1}
    created = app_client.post("/v1/sweeps", json=spec).json()
    response = app_client.get(f"/v1/sweeps/{created['id']}/boundary")
    assert response.status_code == 409 and response.json()["error"] == "NotRefined"


def test_a_round_is_added_once_even_when_two_dispatchers_decide_it(
    session_factory, migrated_url
) -> None:
    """Both decide round 1 from the same finished round 0; the round guard lets one in."""
    from service.refine.controller import decide_round
    from service.store import refine as refine_store
    from service.store import rounds

    settings = Settings(database_url=migrated_url)
    sweep = submit(session_factory, refine_spec(), settings)
    dispatcher = Dispatcher(session_factory, settings, InlineRunner())
    dispatcher._refine = lambda: False
    dispatcher.run_until_idle()
    with session_scope(session_factory) as session:
        inputs = refine_store.refine_inputs(session, sweep.id)
    decisions = [decide_round(inputs, settings.limits) for _ in range(2)]
    assert decisions[0] == decisions[1] and decisions[0].planned
    with session_scope(session_factory) as session:
        first = rounds.add_round(session, sweep.id, 0, decisions[0].planned)
    with session_scope(session_factory) as session:
        second = rounds.add_round(session, sweep.id, 0, decisions[1].planned)
    assert first is not None and second is None
    after = read(session_factory, sweep.id)
    assert after.refine.round == 1 and after.trial_count == 16 + len(first.ids)
    assert trial_rows(session_factory) == after.trial_count
