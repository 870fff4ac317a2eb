"""Processes killed with SIGKILL mid-batch, then counted.

- ``sweeps serve`` (API + dispatcher + its private local Ray) is killed while batches run,
  then started again on the same SQLite file;
- two dispatchers share one PostgreSQL; one of them, a separate process, is killed.

At the end: every trial succeeded exactly once; the trials that had finished before the
kill were not run again (same ``finished_at``, one attempt); the only trials with a
second attempt are those that were running (claimed) when the kill hit; every replica
value is there.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from service.store.migrate import upgrade_to_head
from service.store.models import Trial
from tests.service.factories import small_finetune_spec

ROOT = Path(__file__).resolve().parents[1]
SWEEPS = Path(sys.executable).with_name("sweeps")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _snapshot(url: str) -> dict[int, tuple[str, int, object, str | None]]:
    """``{trial id: (status, attempts, finished_at, lease owner)}``."""
    engine = create_engine(url)
    with Session(engine) as session:
        rows = session.execute(
            select(Trial.id, Trial.status, Trial.attempts, Trial.finished_at, Trial.lease_owner)
        ).all()
    engine.dispose()
    return {row.id: (row.status, row.attempts, row.finished_at, row.lease_owner) for row in rows}


def _assert_counted(before_kill: dict, after: dict, url: str) -> None:
    """The invariants of the module docstring."""
    assert set(after) == set(before_kill)
    assert {status for status, *_ in after.values()} == {"succeeded"}
    for trial_id, (status, attempts, finished_at, _) in before_kill.items():
        now_attempts, now_finished = after[trial_id][1], after[trial_id][2]
        if status == "succeeded":
            assert (now_attempts, now_finished) == (attempts, finished_at), trial_id
        elif status == "running":
            assert now_attempts == attempts + 1, trial_id  # rerun: it was in flight
        else:
            assert now_attempts == 1, trial_id
    engine = create_engine(url)
    with Session(engine) as session:
        missing = session.scalars(
            select(Trial.id).where(Trial.gen_error_asymptotic.is_(None))
        ).all()
    engine.dispose()
    assert missing == []


def _spec(execution: dict | None = None, **overrides) -> dict:
    # 9 seeds × 2 λ_PT: nine groups of two trials that share a dataset, so with batch size
    # 2 (a claim takes whole groups) a batch is one group and some trials are always
    # still pending while the first batches run.
    return small_finetune_spec(
        name="killed",
        params={**small_finetune_spec()["params"], "D": 120},
        axes={"lambda_pt": [-0.6, 0.3]},
        seeds=9,
        execution={"lr": 0.2, "max_steps": 20000, **(execution or {})},
        **overrides,
    )


def _serve(db_url: str, port: int, tmp_path: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "SWEEPS_DATABASE_URL": db_url,
        "SWEEPS_DISPATCH__LEASE_SECONDS": "3",
        "SWEEPS_DISPATCH__BATCH_SIZE": "2",
        "SWEEPS_DISPATCH__MAX_INFLIGHT_BATCHES": "2",
        "SWEEPS_RAY__NUM_CPUS": "1",
        "SWEEPS_CHECKPOINTS__DIR": str(tmp_path / "checkpoints"),
    }
    process = subprocess.Popen(
        [str(SWEEPS), "serve", "--port", str(port), "--log-level", "warning"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / f"serve-{port}.log", "w"),  # noqa: SIM115 - closed with the process
        start_new_session=True,  # its own process group: the kill takes its Ray with it
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code < 500:
                return process
        except httpx.HTTPError:
            pass
        assert process.poll() is None, (tmp_path / f"serve-{port}.log").read_text()[-3000:]
        time.sleep(0.3)
    raise AssertionError("sweeps serve did not come up")


def _kill(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


@pytest.mark.slow
def test_sigkill_of_sweeps_serve_mid_batch_then_restart(tmp_path) -> None:
    db_url = f"sqlite:///{tmp_path / 'sweeps.db'}"
    port = _free_port()
    server = _serve(db_url, port, tmp_path)
    try:
        response = httpx.post(f"http://127.0.0.1:{port}/v1/sweeps", json=_spec(), timeout=30)
        assert response.status_code == 201, response.text
        sweep_id = response.json()["id"]
        deadline = time.monotonic() + 180
        while True:
            snapshot = _snapshot(db_url)
            states = [status for status, *_ in snapshot.values()]
            if "succeeded" in states and "running" in states and "pending" in states:
                break
            assert time.monotonic() < deadline, states
            time.sleep(0.05)
    finally:
        _kill(server)
    before_kill = _snapshot(db_url)
    assert any(s == "running" for s, *_ in before_kill.values())
    port = _free_port()
    server = _serve(db_url, port, tmp_path)
    try:
        deadline = time.monotonic() + 240
        while True:
            sweep = httpx.get(f"http://127.0.0.1:{port}/v1/sweeps/{sweep_id}", timeout=10).json()
            if sweep["status"] in ("succeeded", "failed", "partial", "cancelled"):
                break
            assert time.monotonic() < deadline, sweep
            time.sleep(0.2)
        assert sweep["status"] == "succeeded", sweep
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
    _assert_counted(before_kill, _snapshot(db_url), db_url)


VICTIM = textwrap.dedent(
    """
    import sys
    from service.dispatch import Dispatcher
    from service.runners import InlineRunner
    from service.settings import DispatchSettings, Settings
    from service.store.session import make_engine, make_session_factory

    url = sys.argv[1]
    settings = Settings(database_url=url, dispatch=DispatchSettings(
        batch_size=2, max_inflight_batches=2, lease_seconds=2, poll_seconds=0.01))
    factory = make_session_factory(make_engine(url))
    Dispatcher(factory, settings, InlineRunner(), owner="victim").run()
    """
)


@pytest.mark.slow
@pytest.mark.postgres
def test_two_dispatchers_on_postgres_one_killed(postgres_url, tmp_path) -> None:
    from api_schemas.spec import SweepSpec
    from service.dispatch import Dispatcher
    from service.runners import InlineRunner
    from service.settings import DispatchSettings, Settings
    from service.store.session import make_engine, make_session_factory, session_scope
    from service.sweeps import submit_sweep

    upgrade_to_head(postgres_url)
    engine = make_engine(postgres_url)
    factory = make_session_factory(engine)
    settings = Settings(
        database_url=postgres_url,
        dispatch=DispatchSettings(
            batch_size=2, max_inflight_batches=2, lease_seconds=2, poll_seconds=0.01
        ),
    )
    with session_scope(factory) as session:
        submit_sweep(session, SweepSpec.model_validate(_spec()), settings, "tester", None)
    sync_url = postgres_url
    victim = subprocess.Popen(
        [sys.executable, "-c", VICTIM, sync_url],
        cwd=ROOT,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        start_new_session=True,
    )
    survivor = Dispatcher(factory, settings, InlineRunner(), owner="survivor")
    # The victim (a fresh process: imports take seconds on a loaded machine) claims first,
    # so that it holds trials when the two run side by side.
    deadline = time.monotonic() + 120
    while not any(v[3] == "victim" for v in _snapshot(sync_url).values()):
        assert victim.poll() is None, "the victim dispatcher died on its own"
        assert time.monotonic() < deadline, "the victim never claimed"
        time.sleep(0.02)
    survivor.start()
    try:
        deadline = time.monotonic() + 120
        while True:
            snapshot = _snapshot(sync_url)
            victims = [v for v in snapshot.values() if v[3] == "victim" and v[0] == "running"]
            owners_done = [v for v in snapshot.values() if v[0] == "succeeded"]
            if victims and len(owners_done) >= 2:
                break
            assert victim.poll() is None, "the victim dispatcher died on its own"
            assert time.monotonic() < deadline, snapshot
            time.sleep(0.01)
        os.killpg(victim.pid, signal.SIGKILL)
        victim.wait(timeout=30)
        before_kill = _snapshot(sync_url)
        deadline = time.monotonic() + 120
        while any(v[0] != "succeeded" for v in _snapshot(sync_url).values()):
            assert time.monotonic() < deadline, _snapshot(sync_url)
            time.sleep(0.1)
        # The survivor also fills in any replica value the victim was computing.
        deadline = time.monotonic() + 30
        while True:
            with session_scope(factory) as session:
                missing = session.scalars(
                    select(Trial.id).where(Trial.gen_error_asymptotic.is_(None))
                ).all()
            if not missing or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    finally:
        survivor.stop()
        if victim.poll() is None:
            os.killpg(victim.pid, signal.SIGKILL)
        engine.dispose()
    # Trials the victim held are exactly the ones run twice; others ran once.
    for status, _, _, owner in before_kill.values():
        if status == "running":
            assert owner in ("victim", "survivor")
    after = _snapshot(sync_url)
    for trial_id, (status, attempts, _, owner) in before_kill.items():
        if status == "running" and owner == "survivor":
            # The survivor's own batch was not hit by the kill: it finished once.
            assert after[trial_id][1] == attempts, trial_id
            before_kill[trial_id] = ("pending", attempts, None, None)
    _assert_counted(before_kill, after, sync_url)
