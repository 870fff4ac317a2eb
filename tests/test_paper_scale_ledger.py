"""The paper-scale ledger (benchmarks/paper_scale.py --ledger): the campaign at D = 5000
takes longer than one session, so its networks are kept in a gzipped SQLite snapshot that
the next run restores and continues.  What is checked: a restored ledger holds every
result (a new submission of the same sweep is all cache hits, nothing runs twice), what a
stopped run left cancelled runs when asked again (nothing lost), and the snapshot is the
same bytes for the same database.  Real app, real SQLite, the in-process runner."""

from __future__ import annotations

import gzip
from pathlib import Path

from fastapi.testclient import TestClient

from benchmarks.paper_scale import (
    FINAL,
    combined_agreement,
    decimal_alphas,
    inline_driver,
    load,
    open_ledger,
    save_ledger,
    shaped,
    stored_simulation_sweeps,
)
from service.app import create_app
from service.settings import Settings

SPEC = {
    "name": "ledger",
    "workload": "dln_finetune",
    "params": {"D": 20, "rho_pt": 0.1, "rho_ft": 0.1, "omega": 0.5, "c_pt": 0.01},
    "zip": [{"lambda_pt": [0.0, 0.5], "gamma_ft": [1.0, 0.0]}],
    "axes": {"alpha": [0.5, 1.0]},
    "seeds": 2,
}


def folder(tmp_path: Path, name: str) -> Path:
    made = tmp_path / name
    made.mkdir()
    return made


def service_at(work: Path) -> tuple[object, Settings]:
    settings = Settings(database_url=f"sqlite:///{work}")
    return create_app(settings, start_dispatcher=False), settings


def results(client: TestClient, sweep_id: str) -> dict[str, float]:
    rows = client.get("/v1/results", params={"sweep_id": sweep_id, "limit": 100}).json()
    return {row["key"]: row["gen_error_sim"] for row in rows["items"]}


def test_a_restored_ledger_holds_every_result_and_runs_nothing_again(tmp_path) -> None:
    ledger = tmp_path / "ledger.sqlite.gz"
    first = open_ledger(ledger, folder(tmp_path, "first"))  # no ledger yet: an empty one
    app, settings = service_at(first)
    with TestClient(app) as client:
        sweep = client.post("/v1/sweeps", json=SPEC).json()
        inline_driver(app, settings)(120.0)
        assert client.get(f"/v1/sweeps/{sweep['id']}").json()["status"] == "succeeded"
        before = results(client, sweep["id"])
    assert len(before) == 8
    save_ledger(first, ledger)

    again = open_ledger(ledger, folder(tmp_path, "again"))
    assert again != first
    app, _ = service_at(again)
    with TestClient(app) as client:
        plan = client.post("/v1/sweeps/plan", json=SPEC).json()
        resubmitted = client.post("/v1/sweeps", json={**SPEC, "name": "ledger-again"}).json()
        after = results(client, resubmitted["id"])
    assert (plan["cached_count"], plan["new_count"]) == (8, 0)
    assert resubmitted["status"] == "succeeded" and resubmitted["cached_count"] == 8
    assert after == before  # the same keys, the same numbers


def test_what_a_stopped_run_left_runs_when_asked_again(tmp_path) -> None:
    ledger = tmp_path / "ledger.sqlite.gz"
    work = open_ledger(ledger, folder(tmp_path, "stopped"))
    app, settings = service_at(work)
    with TestClient(app) as client:
        sweep = client.post("/v1/sweeps", json=SPEC).json()
        client.post(f"/v1/sweeps/{sweep['id']}/cancel").raise_for_status()
    save_ledger(work, ledger)

    work = open_ledger(ledger, folder(tmp_path, "resumed"))
    app, settings = service_at(work)
    with TestClient(app) as client:
        again = client.post("/v1/sweeps", json={**SPEC, "name": "resumed"}).json()
        assert (again["cached_count"], again["status"]) == (0, "pending")
        inline_driver(app, settings)(120.0)
        done = client.get(f"/v1/sweeps/{again['id']}").json()
        assert done["status"] == "succeeded"
        assert len(results(client, again["id"])) == 8


def test_the_snapshot_is_the_same_bytes_for_the_same_database(tmp_path) -> None:
    work = open_ledger(tmp_path / "none.sqlite.gz", folder(tmp_path, "work"))
    app, _ = service_at(work)
    with TestClient(app) as client:
        client.post("/v1/sweeps", json=SPEC).raise_for_status()
    one, two = tmp_path / "one.sqlite.gz", tmp_path / "two.sqlite.gz"
    save_ledger(work, one)
    save_ledger(work, two)
    assert one.read_bytes() == two.read_bytes()
    assert gzip.decompress(one.read_bytes())[:16] == b"SQLite format 3\x00"
    assert not list(tmp_path.glob("*.partial"))


def test_the_report_takes_the_newest_sweep_of_each_name_and_cancels_what_was_left(
    tmp_path,
) -> None:
    """A campaign continued in several runs stores one sweep per run under one name; the
    report is of the newest (it holds the earlier results as cache hits), and a run's
    unfinished trials are cancelled, not computed, by the report."""
    work = open_ledger(tmp_path / "none.sqlite.gz", folder(tmp_path, "work"))
    app, settings = service_at(work)
    with TestClient(app) as client:
        first = client.post("/v1/sweeps", json={**SPEC, "axes": {"alpha": [0.5]}}).json()
        inline_driver(app, settings)(120.0)
        second = client.post("/v1/sweeps", json=SPEC).json()  # stopped before it ran
        theory = {**SPEC["params"], "lambda_pt": 0.0, "gamma_ft": 1.0}
        del theory["D"]
        client.post(
            "/v1/sweeps",
            json={
                "name": "theory",
                "workload": "dln_theory",
                "params": theory,
                "axes": {"alpha": [0.5]},
            },
        ).raise_for_status()
        assert second["cached_count"] == 4 and second["status"] not in FINAL

        (reported,) = stored_simulation_sweeps(client)

        assert reported["id"] == second["id"] and reported["id"] != first["id"]
        assert reported["status"] == "cancelled"
        counts = {status: n for status, n in reported["counts"].items() if n}
        assert counts == {"succeeded": 4, "cancelled": 4}
        assert client.get(f"/v1/sweeps/{first['id']}").json()["status"] == "succeeded"


def test_the_full_grid_and_a_chosen_alpha_are_the_same_trials(tmp_path) -> None:
    """``linspace(0.01, 0.5, 11)`` holds 0.059000000000000004; a run with ``--alphas 0.059``
    and the projection of the full spec must key that α alike, or the projection counts
    what the ledger holds as missing."""
    assert decimal_alphas(load("exp1_full.yaml"))[:4] == [0.01, 0.059, 0.108, 0.157]
    grid = {**SPEC, "axes": {"alpha": {"kind": "linspace", "start": 0.01, "stop": 0.5, "num": 11}}}
    work = open_ledger(tmp_path / "none.sqlite.gz", folder(tmp_path, "work"))
    app, settings = service_at(work)
    with TestClient(app) as client:
        chosen = shaped(grid, alphas=[0.059], settings=None, device="cpu", dim=None, seeds=None)
        client.post("/v1/sweeps", json=chosen).raise_for_status()
        inline_driver(app, settings)(120.0)
        full = shaped(grid, alphas=None, settings=None, device="cpu", dim=None, seeds=None)
        plan = client.post("/v1/sweeps/plan", json=full).json()
    assert (plan["cached_count"], plan["new_count"]) == (4, 40)


def test_combined_agreement_counts_a_shared_config_once() -> None:
    """Exp 1 and the regime figure share configs; over both, each counts once (from the
    report with more seeds), and stopping-rule configs are not compared."""

    def config(omega: float, alpha: float, verdict: str, seeds: int = 14, mean=None) -> dict:
        return {
            "params": {"omega": omega, "alpha": alpha},
            "alpha": alpha,
            "sim_mean": omega if mean is None else mean,
            "sim_sem": 0.01,
            "theory": 0.5,
            "verdict": verdict,
            "n_seeds": seeds,
        }

    exp1 = {"rows": [config(0.0, 0.1, "agree"), config(1.0, 0.1, "disagree", seeds=12)]}
    figure = {
        "rows": [
            config(1.0, 0.1, "agree"),  # exp1's ω = 1 config with 14 seeds: this one counts
            config(0.0, 0.1, "agree"),  # shared, same seeds: counted once
            config(0.5, 0.1, "stopping_rule"),
            config(0.5, 0.2, "disagree"),
            # another name for the ω = 0.5 computation at α = 0.2 (same mean, SEM, theory)
            config(0.7, 0.2, "disagree", mean=0.5),
        ]
    }
    combined = combined_agreement([exp1, figure])
    assert combined["configs"] == 5 and combined["shared"] == 2
    assert combined["verdicts"] == {"agree": 2, "stopping_rule": 1, "disagree": 2}
    assert (combined["inside"], combined["compared"]) == (2, 4)
    assert combined["fraction_inside"] == 2 / 4
    assert combined["same_outcome_as_another"] == 1
    assert (combined["inside_distinct"], combined["compared_distinct"]) == (2, 3)
