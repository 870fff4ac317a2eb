"""``service.wiring``: the one place that builds and tears down what a server process
holds, used by the app's lifespan and by ``sweeps worker``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import inspect

from finetune_sweeps import Client
from service.app import create_app
from service.runners import InlineRunner
from service.settings import DispatchSettings, Settings
from service.wiring import start_services
from tests.live_server import serve_in_thread
from tests.service.factories import small_finetune_spec


def test_without_a_dispatcher_only_the_database_is_wired(sqlite_url) -> None:
    services = start_services(Settings(database_url=sqlite_url), start_dispatcher=False)
    assert services.runner is None and services.dispatcher is None
    assert "trials" in inspect(services.engine).get_table_names()  # migrated
    services.stop()


def test_a_dispatcher_starts_and_stops_and_a_given_runner_stays_the_callers(sqlite_url) -> None:
    runner = InlineRunner()
    services = start_services(Settings(database_url=sqlite_url), runner=runner)
    assert services.dispatcher is not None and services.dispatcher.alive
    assert services.runner is runner and not services.owns_runner
    services.stop()
    assert not services.dispatcher.alive


def test_the_lifespan_uses_the_wiring(sqlite_url) -> None:
    settings = Settings(database_url=sqlite_url, dispatch=DispatchSettings(poll_seconds=0.05))
    app = create_app(settings, runner=InlineRunner(), start_dispatcher=True)
    with serve_in_thread(app) as url, Client(url) as client:
        assert client.health().dispatcher == "running"
        assert client.submit(small_finetune_spec(), wait=True, timeout=60).status == "succeeded"
    assert not app.state.dispatcher.alive


@pytest.mark.slow
def test_sweeps_worker_runs_the_trials_of_an_api_without_a_dispatcher(
    sqlite_url, tmp_path: Path
) -> None:
    """The API only accepts; a ``sweeps worker`` process (real local Ray) runs the trials
    and stops cleanly on SIGTERM."""
    settings = Settings(database_url=sqlite_url)
    app = create_app(settings, start_dispatcher=False)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWEEPS_")}
    env |= {
        "SWEEPS_DATABASE_URL": sqlite_url,
        "SWEEPS_RAY__NUM_CPUS": "1",
        "SWEEPS_DISPATCH__POLL_SECONDS": "0.05",
        "RAY_AUTH_MODE": "disabled",
        "OMP_NUM_THREADS": "1",
    }
    with serve_in_thread(app) as url, Client(url) as client:
        assert client.health().dispatcher == "disabled"
        sweep = client.submit(small_finetune_spec(name="by-worker"))
        log = (tmp_path / "worker.log").open("w")
        worker = subprocess.Popen(
            [str(Path(sys.executable).with_name("sweeps")), "worker"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            done = client.wait(sweep.id, timeout=240, poll_s=0.2)
        finally:
            worker.send_signal(signal.SIGTERM)
            code = worker.wait(60)
        assert done.status == "succeeded", (tmp_path / "worker.log").read_text()
        assert code == 0 and "dispatcher" in (tmp_path / "worker.log").read_text()
