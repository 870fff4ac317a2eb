"""Helpers for the benchmark tests: the app with a real dispatcher (``InlineRunner``),
and bring-your-own bodies drawn from a seeded noise model around the replica theory."""

from __future__ import annotations

import random
from typing import Any

from fastapi.testclient import TestClient

from service.app import create_app
from service.benchmarks.theory import replica_theory
from service.dispatch import Dispatcher
from service.runners import InlineRunner
from service.settings import BenchmarkSettings, DispatchSettings, Settings


def bench_settings(url: str, suites_dir: str = "", **extra: Any) -> Settings:
    return Settings(
        database_url=url,
        benchmarks=BenchmarkSettings(suites_dir=suites_dir),
        dispatch=DispatchSettings(max_attempts=1),
        **extra,
    )


def make_client(settings: Settings) -> TestClient:
    return TestClient(create_app(settings, start_dispatcher=False, migrate=False))


def dispatch(client: TestClient) -> None:
    """Run every pending trial to completion through the real dispatcher."""
    app = client.app
    Dispatcher(app.state.session_factory, app.state.settings, InlineRunner()).run_until_idle()


def git(commit: str, branch: str = "main", **more: Any) -> dict[str, Any]:
    return {"repository": "lab/finetune-sweeps", "commit": commit, "branch": branch, **more}


def byo_body(
    client: TestClient,
    suite: str,
    rng: random.Random,
    commit: str,
    *,
    seeds: int = 10,
    wall: float = 1.0,
    shift_sem: dict[str, float] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Results for every config of ``suite``: seeds drawn from N(theory, 5% of theory),
    wall-time repetitions from N(wall, 2%); ``shift_sem`` moves a config's samples by that
    many of their SEMs."""
    configs = client.get(f"/v1/benchmarks/suites/{suite}").json()["configs"]
    results: dict[str, Any] = {}
    for config in configs:
        theory, regime = replica_theory(config["params"])
        samples = [rng.gauss(theory, 0.05 * theory) for _ in range(seeds)]
        shift = (shift_sem or {}).get(config["label"], 0.0)
        if shift:
            mean = sum(samples) / seeds
            sd = (sum((x - mean) ** 2 for x in samples) / (seeds - 1)) ** 0.5
            samples = [x + shift * sd / seeds**0.5 for x in samples]
        results[config["label"]] = {"gen_error": samples, "regime_empirical": [regime] * seeds}
    walls = [rng.gauss(wall, 0.02 * wall) for _ in range(5)]
    return {
        "mode": "byo",
        "git": git(commit),
        "machine": {"fingerprint": "noise-model"},
        "source": "seeded noise model",
        "results": {"configs": results, "metrics": {"wall_time_per_trial_s": walls}},
        **extra,
    }


def run_byo(client: TestClient, suite: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(f"/v1/benchmarks/{suite}/runs", json=body)
    assert response.status_code == 201, response.text
    return response.json()
