"""Bring-your-own results: checked against the suite (every config label and every
performance metric present, nothing unknown) and stored beside the replica theory that
the service computes for each config (``service.benchmarks.theory``)."""

from __future__ import annotations

from typing import Any

from api_schemas.benchmarks import BenchmarkRunCreate
from service.benchmarks.suites import PERFORMANCE_MEASURES, Suite, suite_configs
from service.benchmarks.theory import replica_theory
from service.errors import ResultsIncomplete
from service.settings import Settings


def brought_measurements(
    suite: Suite, settings: Settings, body: BenchmarkRunCreate
) -> dict[str, Any]:
    """Bring-your-own measurements with the theory beside them; 422 naming every missing
    or unknown config and every missing performance metric."""
    results = body.results
    if results is None:
        raise ResultsIncomplete(
            [{"loc": ["body", "results"], "msg": "mode byo needs results", "type": "missing"}]
        )
    configs = suite_configs(suite, settings.limits)
    labels = {c.label for c in configs}
    errors = [
        {
            "loc": ["body", "results", "configs", c.label],
            "type": "missing",
            "msg": f"no result for suite config {c.label!r}",
        }
        for c in configs
        if c.label not in results.configs
    ]
    errors += [
        {
            "loc": ["body", "results", "configs", label],
            "type": "unknown",
            "msg": f"{label!r} is not a config of suite {suite.name}",
        }
        for label in results.configs
        if label not in labels
    ]
    wanted = {m.measure for m in suite.metrics if m.measure in PERFORMANCE_MEASURES}
    errors += [
        {
            "loc": ["body", "results", "metrics", name],
            "type": "missing",
            "msg": f"no values for performance metric {name!r}",
        }
        for name in sorted(wanted - set(results.metrics))
    ]
    if errors:
        raise ResultsIncomplete(errors)
    out: dict[str, Any] = {}
    for config in configs:
        theory, regime = replica_theory(config.params)
        given = results.configs[config.label]
        out[config.label] = {
            "gen_error": list(given.gen_error),
            "theory_replica": theory,
            "theory_finite": None,
            "regime_theory": regime,
            "regime_empirical": list(given.regime_empirical or []),
        }
    return {"configs": out, "metrics": {k: list(v) for k, v in results.metrics.items()}}
