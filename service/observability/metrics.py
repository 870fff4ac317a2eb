"""Prometheus metrics of the service.

Two kinds:

- **measured in the process** (module-level histograms and counters, observed by the
  dispatcher with one line each): claim and persist transaction latency, batch duration,
  dispatcher rounds.  They count what *this* process's dispatcher did.
- **computed from the database at scrape time** (:class:`StoreCollector`): trials by
  status and workload, queue depth per submitter, cache-hit ratio, dispatchers holding
  leases, the latest event sequence number — the same on every replica — and, from the
  app's own dispatcher, Ray tasks in flight and liveness.

Each app gets its own :class:`~prometheus_client.CollectorRegistry` (:func:`registry_for`),
so several apps in one process (tests, replicas) do not share database collectors.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from service.store import metrics as metric_store
from service.store.session import session_scope

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_BATCH_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 7200)

CLAIM_SECONDS = Histogram(
    "sweeps_claim_seconds",
    "Time of one claim transaction of the dispatcher (claimed trials only)",
    buckets=_LATENCY_BUCKETS,
    registry=None,
)
PERSIST_SECONDS = Histogram(
    "sweeps_persist_seconds",
    "Time of one result write of the dispatcher (transaction incl. commit and events)",
    buckets=_LATENCY_BUCKETS,
    registry=None,
)
BATCH_SECONDS = Histogram(
    "sweeps_batch_seconds",
    "Time from a batch's submission to Ray until its result was collected",
    ["workload"],
    buckets=_BATCH_BUCKETS,
    registry=None,
)
ROUNDS = Counter(
    "sweeps_dispatcher_rounds", "Rounds the dispatchers of this process ran", registry=None
)
PROCESS_METRICS = (CLAIM_SECONDS, PERSIST_SECONDS, BATCH_SECONDS, ROUNDS)


class StoreCollector(Collector):
    """Gauges read from the database (and the app's dispatcher) at each scrape."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with session_scope(self.app.state.session_factory) as session:
            snapshot = metric_store.snapshot(session)
        trials = GaugeMetricFamily(
            "sweeps_trials", "Trials by status and workload", labels=["status", "workload"]
        )
        for (status, workload), count in sorted(snapshot.trials.items()):
            trials.add_metric([status, workload], count)
        yield trials
        queue = GaugeMetricFamily(
            "sweeps_queue_depth", "Pending trials per submitter", labels=["submitter"]
        )
        for submitter, count in sorted(snapshot.queue_depth.items()):
            queue.add_metric([submitter], count)
        yield queue
        yield GaugeMetricFamily(
            "sweeps_cache_hit_ratio",
            "Trials that already had a result when their sweep was submitted / all requested",
            value=snapshot.cache_hit_ratio,
        )
        yield GaugeMetricFamily(
            "sweeps_dispatchers_holding_leases",
            "Distinct dispatchers holding unexpired leases (any process)",
            value=snapshot.lease_owners,
        )
        yield GaugeMetricFamily(
            "sweeps_events_latest_seq", "Highest event sequence number", value=snapshot.latest_seq
        )
        dispatcher = getattr(self.app.state, "dispatcher", None)
        yield GaugeMetricFamily(
            "sweeps_ray_tasks_in_flight",
            "Batches this process's dispatcher has submitted and not yet collected",
            value=len(dispatcher.inflight) if dispatcher is not None else 0,
        )
        yield GaugeMetricFamily(
            "sweeps_dispatcher_up",
            "1 when this process's dispatcher thread is alive",
            value=1 if dispatcher is not None and dispatcher.alive else 0,
        )
        last = getattr(dispatcher, "last_round_at", None) if dispatcher is not None else None
        yield GaugeMetricFamily(
            "sweeps_dispatcher_last_round_age_seconds",
            "Seconds since this process's dispatcher finished a round (-1: none)",
            value=time.time() - last if last else -1.0,
        )


def registry_for(app: Any) -> CollectorRegistry:
    """A registry with the process-wide metrics and this app's database collector."""
    registry = CollectorRegistry(auto_describe=False)
    for metric in PROCESS_METRICS:
        registry.register(metric)
    registry.register(StoreCollector(app))
    return registry
