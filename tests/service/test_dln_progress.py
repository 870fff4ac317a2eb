"""Honest progress of dln_finetune sweeps through the real app (SQLite and PostgreSQL):
per-trial step/loss reports reach ``GET /v1/sweeps/{id}``, ``executing`` counts only the
trials a worker computes now and ``queued_in_batch`` the rest of the running ones, and
the stored ``wall_time_s`` follows each trial's steps.  Batches run in-process."""

from __future__ import annotations

import time
from concurrent.futures import Future

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from service.app import create_app
from service.dispatch import Dispatcher
from service.runners import InlineRunner
from service.settings import DispatchSettings, Settings
from service.store.models import Trial
from service.store.session import session_scope
from tests.service.factories import small_finetune_spec


class FirstBatchRunner(InlineRunner):
    """Runs the first batch in-process and then holds it as unfinished; later batches
    never start (they wait in the queue as they would behind a busy Ray worker)."""

    def __init__(self) -> None:
        super().__init__()
        self.submitted = 0
        self.held: list[tuple[Future, tuple]] = []
        self.released = False

    def submit(self, workload, trials, theory_wanted, gpus, *, theory_only=False):
        self.submitted += 1
        if self.submitted == 1 or self.released:
            return super().submit(workload, trials, theory_wanted, gpus, theory_only=theory_only)
        future: Future = Future()
        self.held.append((future, (workload, trials, theory_wanted, gpus, theory_only)))
        return future

    def release(self) -> None:
        """The queued batches run now (their futures complete)."""
        self.released = True
        for future, (workload, trials, wanted, gpus, theory_only) in self.held:
            ran = super().submit(workload, trials, wanted, gpus, theory_only=theory_only)
            future.set_result(ran.result())

    def wait(self, handles, timeout):
        return super().wait(handles, timeout) if self.released else []


@pytest.fixture
def client(migrated_url):
    settings = Settings(
        database_url=migrated_url,
        dispatch=DispatchSettings(batch_size=2, progress_poll_seconds=0.01),
    )
    with TestClient(create_app(settings, start_dispatcher=False, migrate=False)) as client:
        yield client


def poll(dispatcher: Dispatcher) -> None:
    time.sleep(0.02)
    dispatcher.step()


def test_running_counts_split_into_executing_and_queued(client) -> None:
    spec = small_finetune_spec(axes={"lambda_pt": [-0.5, 0.5]})  # 2 settings × 2 seeds
    sweep_id = client.post("/v1/sweeps", json=spec).json()["id"]
    runner = FirstBatchRunner()
    app = client.app
    dispatcher = Dispatcher(app.state.session_factory, app.state.settings, runner)
    dispatcher.step()
    poll(dispatcher)
    sweep = client.get(f"/v1/sweeps/{sweep_id}").json()
    assert sweep["counts"]["running"] == 4
    reported = {r["trial_id"]: r["progress"] for r in sweep["running"] if r["progress"]}
    assert len(reported) == 2  # the first batch's trials; the second batch never started
    for progress in reported.values():
        assert progress["phase"] == "done" and progress["step"] > 0
        assert progress["loss"] is not None and progress["steps"] == 3000
    # Both columns stopped inside a batch that still "runs": nobody executes.
    assert (sweep["executing"], sweep["queued_in_batch"]) == (0, 4)

    # A worker reports one trial training now: it alone is executing.
    trial_id = next(iter(reported))
    now = time.time()
    runner.board.report(trial_id, {"phase": "finetune", "step": 50, "loss": 0.1, "updated_at": now})
    poll(dispatcher)
    sweep = client.get(f"/v1/sweeps/{sweep_id}").json()
    assert (sweep["executing"], sweep["queued_in_batch"]) == (1, 3)

    # A report from before the current claim (an earlier attempt) does not count.
    runner.board.report(trial_id, {"phase": "finetune", "step": 50, "updated_at": now - 3600})
    poll(dispatcher)
    sweep = client.get(f"/v1/sweeps/{sweep_id}").json()
    assert (sweep["executing"], sweep["queued_in_batch"]) == (0, 4)

    runner.release()
    dispatcher.run_until_idle()
    sweep = client.get(f"/v1/sweeps/{sweep_id}").json()
    assert sweep["status"] == "succeeded"
    assert (sweep["executing"], sweep["queued_in_batch"]) == (0, 0)
    assert sweep["eta_s"] == 0.0


def test_stored_wall_time_follows_each_trials_steps(client) -> None:
    """One batch with a quick and a slow setting: their stored times are in the ratio of
    their steps (same shape), not the batch's time split evenly."""
    spec = small_finetune_spec(
        axes={"lambda_pt": [-0.9, 0.9]},
        seeds=1,
        execution={"lr": 0.2, "max_steps": 3000},
    )
    spec["params"] |= {"c_pt": 1e-3, "gamma_ft": 0.0}
    sweep_id = client.post("/v1/sweeps", json=spec).json()["id"]
    app = client.app
    Dispatcher(app.state.session_factory, app.state.settings, InlineRunner()).run_until_idle()
    assert client.get(f"/v1/sweeps/{sweep_id}").json()["status"] == "succeeded"
    with session_scope(app.state.session_factory) as session:
        rows = session.execute(select(Trial.metrics, Trial.wall_time_s)).all()
    (metrics_a, wall_a), (metrics_b, wall_b) = rows
    steps_a, steps_b = metrics_a["steps"], metrics_b["steps"]
    assert steps_a != steps_b
    assert wall_a / wall_b == pytest.approx(steps_a / steps_b, rel=1e-6)
