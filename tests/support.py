"""Helpers shared by the end-to-end tests."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient

FINAL_SWEEP_STATES = ("succeeded", "failed", "partial", "cancelled")


def wait_done(client: TestClient, sweep_id: str, timeout: float = 240) -> dict:
    """Poll ``GET /v1/sweeps/{id}`` until the sweep is in a final state; return it."""
    deadline = time.monotonic() + timeout
    sweep: dict = {}
    while time.monotonic() < deadline:
        sweep = client.get(f"/v1/sweeps/{sweep_id}").json()
        if sweep["status"] in FINAL_SWEEP_STATES:
            return sweep
        time.sleep(0.1)
    raise AssertionError(f"sweep {sweep_id} did not finish: {sweep}")
