"""Processes stopped cleanly mid-batch (SIGTERM, Ctrl-C), then counted.

- ``sweeps serve`` (API + dispatcher + its private local Ray, SQLite) gets SIGTERM while
  batches run: it exits 0 with one line on stderr (no traceback, no Ray C++ stack dump),
  the trials it was running are pending as soon as it has exited (no lease to wait for,
  the interrupted attempt not counted), and a restarted server finishes the sweep
  without running again any trial that had finished;
- ``sweeps worker`` gets Ctrl-C (SIGINT to its process group, as a terminal sends it):
  the same.

The SIGKILL tests, whose helpers these reuse, are in ``tests/test_dispatch_kill.py``.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.test_dispatch_kill import SWEEPS, _assert_counted, _free_port, _serve, _snapshot, _spec

# What a crash leaves on stderr: Python tracebacks, and Ray's C++ failure handler.
CRASH_MARKS = ("Traceback", "*** SIGTERM received", "*** SIGINT received", "logging.cc", "@ 0x")


def _slow_batches(max_steps: int) -> dict:
    """Execution options under which a batch trains its two networks for exactly
    ``max_steps`` steps (a small ``lr`` and an unreachable loss threshold: no early stop);
    at D = 120 that is about 1.2 s per 100,000 steps here.  With the default options a
    batch takes about 0.05 s once Ray is warm, and the batch seen running could finish
    before the signal reached the process: then nothing was running to release, and the
    test could not tell a clean stop from one that lost work."""
    return {"lr": 0.002, "max_steps": max_steps, "loss_threshold": 1e-12}


def _wait_mid_batch(url: str, process: subprocess.Popen, log: Path) -> dict:
    """Wait until some trials succeeded, some run and some wait; the snapshot then."""
    deadline = time.monotonic() + 180
    while True:
        snapshot = _snapshot(url)
        states = {status for status, *_ in snapshot.values()}
        if {"succeeded", "running", "pending"} <= states:
            return snapshot
        assert process.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, states
        time.sleep(0.05)


def _assert_stopped_cleanly(
    process: subprocess.Popen, log: Path, command: str, sig: str
) -> tuple[int, int]:
    """Exit 0, no crash output, one closing line; returns (trials released, trials kept:
    finished inside a batch that was still running, so written instead of released)."""
    assert process.wait(timeout=90) == 0, log.read_text()[-3000:]
    text = log.read_text()
    for mark in CRASH_MARKS:
        assert mark not in text, text[-3000:]
    last = text.strip().splitlines()[-1]
    found = re.fullmatch(
        rf"sweeps {command}: stopped \({sig}\); (\d+) running trials? released to pending"
        r"(?:, (\d+) finished inside running batches kept)?",
        last,
    )
    assert found, text[-3000:]
    return int(found.group(1)), int(found.group(2) or 0)


def _assert_released(stopped: dict, before: dict, released_kept: tuple[int, int]) -> None:
    """Nothing runs or holds a lease; the trials that ran are pending, attempts given back;
    what had finished is unchanged."""
    assert {status for status, *_ in stopped.values()} <= {"succeeded", "pending"}
    assert all(owner is None for *_, owner in stopped.values())
    for trial_id, (status, attempts, finished_at, _) in before.items():
        if status == "succeeded":
            assert stopped[trial_id][:3] == (status, attempts, finished_at), trial_id
    pending = [v for v in stopped.values() if v[0] == "pending"]
    assert all(attempts == 0 for _, attempts, *_ in pending)
    # The trials running at the signal went back, or were kept had they finished.
    released, kept = released_kept
    assert released <= len(pending) and released + kept >= 1
    assert len([v for v in stopped.values() if v[0] == "succeeded"]) >= kept


@pytest.mark.slow
def test_sigterm_of_sweeps_serve_mid_batch_then_restart(tmp_path) -> None:
    db_url = f"sqlite:///{tmp_path / 'sweeps.db'}"
    port = _free_port()
    server = _serve(db_url, port, tmp_path)
    log = tmp_path / f"serve-{port}.log"
    try:
        spec = _spec(execution=_slow_batches(60_000))  # the restart runs the rest: ~0.7 s each
        response = httpx.post(f"http://127.0.0.1:{port}/v1/sweeps", json=spec, timeout=30)
        assert response.status_code == 201, response.text
        sweep_id = response.json()["id"]
        before = _wait_mid_batch(db_url, server, log)
        server.send_signal(signal.SIGTERM)
        released = _assert_stopped_cleanly(server, log, "serve", "SIGTERM")
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
    stopped = _snapshot(db_url)  # at once: no lease had to expire
    _assert_released(stopped, before, released)

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
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=90)
    # Finished before the stop: same attempt and time; pending at the stop: run once.
    _assert_counted(stopped, _snapshot(db_url), db_url)


@pytest.mark.slow
def test_ctrl_c_of_sweeps_worker_mid_batch(tmp_path) -> None:
    from api_schemas.spec import SweepSpec
    from service.settings import Settings
    from service.store.migrate import upgrade_to_head
    from service.store.session import make_engine, make_session_factory, session_scope
    from service.sweeps import submit_sweep

    db_url = f"sqlite:///{tmp_path / 'sweeps.db'}"
    upgrade_to_head(db_url)
    engine = make_engine(db_url)
    with session_scope(make_session_factory(engine)) as session:
        spec = SweepSpec.model_validate(_spec(execution=_slow_batches(250_000)))  # ~3 s each
        submit_sweep(session, spec, Settings(), "tester", None)
    engine.dispose()
    log = tmp_path / "worker.log"
    env = {
        **os.environ,
        "SWEEPS_DATABASE_URL": db_url,
        "SWEEPS_DISPATCH__LEASE_SECONDS": "3",
        "SWEEPS_DISPATCH__BATCH_SIZE": "2",
        "SWEEPS_DISPATCH__MAX_INFLIGHT_BATCHES": "2",
        "SWEEPS_RAY__NUM_CPUS": "1",
    }
    with open(log, "w") as stderr:
        worker = subprocess.Popen(
            [str(SWEEPS), "worker"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,
        )
        try:
            before = _wait_mid_batch(db_url, worker, log)
            os.killpg(worker.pid, signal.SIGINT)  # what Ctrl-C in its terminal sends
            released = _assert_stopped_cleanly(worker, log, "worker", "SIGINT")
        finally:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGKILL)
    _assert_released(_snapshot(db_url), before, released)
