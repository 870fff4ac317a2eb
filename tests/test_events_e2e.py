"""The event stream end to end on a real local Ray: HTTP submit → dispatcher → Ray
batches → store → SSE, read live and again after a reconnect."""

from __future__ import annotations

import httpx
import pytest

from service.app import create_app
from service.settings import DispatchSettings, LiveSettings, Settings
from tests.live import read_sse, serve
from tests.service.factories import small_finetune_spec

pytestmark = pytest.mark.slow


def test_stream_of_a_sweep_on_ray(database_url, ray_runner) -> None:
    settings = Settings(
        database_url=database_url,
        dispatch=DispatchSettings(batch_size=2, poll_seconds=0.05),
        live=LiveSettings(poll_seconds=0.05),
    )
    app = create_app(settings, runner=ray_runner, start_dispatcher=True)
    with serve(app) as base:
        spec = small_finetune_spec(name="ray-stream", seeds=4)  # 12 trials, 6 batches
        sweep_id = httpx.post(f"{base}/v1/sweeps", json=spec).json()["id"]
        live = read_sse(base, sweep_id)
        final = live[-1]["data"]
        assert live[-1]["event"] == "done" and final["status"] == "succeeded"
        assert final["counts"]["succeeded"] == 12 and final["throughput_per_s"] > 0
        landed = [
            i
            for m in live
            for c in m["data"].get("changes", [])
            if c["from"] == "running" and c["to"] == "succeeded"
            for i in c["trial_ids"]
        ]
        assert sorted(landed) == sorted(set(landed)) and len(landed) == 12
        sweep = httpx.get(f"{base}/v1/sweeps/{sweep_id}").json()
        assert sweep["counts"] == final["counts"]
        middle = live[len(live) // 2]["id"]
        rest = read_sse(base, sweep_id, last_event_id=middle)
        assert rest == [m for m in live if m["id"] > middle]
