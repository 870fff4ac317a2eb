"""``/metrics`` parsed by prometheus_client's own parser: every metric the issue names is
there, with values that follow what the store and the dispatcher did."""

from __future__ import annotations

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from service.app import create_app
from service.runners import InlineRunner
from service.settings import DispatchSettings, Settings
from tests.service.factories import small_finetune_spec
from tests.support import wait_done

SPEC = small_finetune_spec(name="metrics")
EXPECTED = {
    "sweeps_trials": "gauge",  # by status and workload
    "sweeps_queue_depth": "gauge",  # pending trials per submitter
    "sweeps_claim_seconds": "histogram",
    "sweeps_persist_seconds": "histogram",
    "sweeps_batch_seconds": "histogram",
    "sweeps_cache_hit_ratio": "gauge",
    "sweeps_ray_tasks_in_flight": "gauge",
    "sweeps_dispatcher_up": "gauge",
    "sweeps_dispatcher_rounds": "counter",
    "sweeps_dispatcher_last_round_age_seconds": "gauge",
    "sweeps_dispatchers_holding_leases": "gauge",
    "sweeps_events_latest_seq": "gauge",
}


def scrape(client: TestClient) -> dict[str, object]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {family.name: family for family in text_string_to_metric_families(response.text)}


def samples(family, name: str | None = None) -> dict[tuple, float]:
    return {
        tuple(sorted(s.labels.items())): s.value
        for s in family.samples
        if name is None or s.name == name
    }


def test_metrics_follow_the_store_and_the_dispatcher(sqlite_url) -> None:
    settings = Settings(database_url=sqlite_url, dispatch=DispatchSettings(poll_seconds=0.05))
    idle = create_app(settings, start_dispatcher=False)
    running = create_app(settings, runner=InlineRunner(), start_dispatcher=True, migrate=False)
    with TestClient(idle) as other:
        # A replica without a dispatcher: the queue as the store holds it, and no liveness.
        other.post(
            "/v1/sweeps",
            json=small_finetune_spec(name="queued", axes={"lambda_pt": [0.25, 0.75]}),
            headers={"X-Sweeps-Submitter": "bob"},
        )
        queued = scrape(other)
        assert samples(queued["sweeps_queue_depth"]) == {(("submitter", "bob"),): 4}
        assert samples(queued["sweeps_dispatcher_up"])[()] == 0

        with TestClient(running) as client:
            first = client.post("/v1/sweeps", json=SPEC, headers={"X-Sweeps-Submitter": "ada"})
            wait_done(client, first.json()["id"])
            again = client.post(
                "/v1/sweeps", json={**SPEC, "name": "again"}, headers={"X-Sweeps-Submitter": "ada"}
            )
            wait_done(client, again.json()["id"])
            families = scrape(client)
    for name, kind in EXPECTED.items():
        assert name in families, f"/metrics lacks {name}"
        assert families[name].type == kind, (name, families[name].type)

    trials = samples(families["sweeps_trials"])
    assert trials[(("status", "succeeded"), ("workload", "dln_finetune"))] == 10
    assert samples(families["sweeps_queue_depth"]) == {}
    # 16 trials asked for (4 + 6 + 6), the last 6 already had results.
    assert samples(families["sweeps_cache_hit_ratio"])[()] == 6 / 16
    assert samples(families["sweeps_dispatcher_up"])[()] == 1
    assert samples(families["sweeps_ray_tasks_in_flight"])[()] == 0
    rounds = samples(families["sweeps_dispatcher_rounds"], "sweeps_dispatcher_rounds_total")
    assert rounds[()] > 0
    assert 0 <= samples(families["sweeps_dispatcher_last_round_age_seconds"])[()] < 60
    assert samples(families["sweeps_claim_seconds"], "sweeps_claim_seconds_count")[()] >= 1
    assert samples(families["sweeps_persist_seconds"], "sweeps_persist_seconds_count")[()] >= 1
    batches = samples(families["sweeps_batch_seconds"], "sweeps_batch_seconds_count")
    assert batches[(("workload", "dln_finetune"),)] >= 1
    assert samples(families["sweeps_events_latest_seq"])[()] > 0
