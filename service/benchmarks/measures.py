"""Measurements and the metric values judged from them (pure; no database).

A run's *measurements* are plain JSON, the same shape in both modes::

    {"configs": {label: {"gen_error": [per seed], "theory_replica": x, "theory_finite": y,
                         "regime_theory": "II", "regime_empirical": [per seed]}},
     "metrics": {performance metric: [repetitions]}}

Run-here measurements come from the suite sweeps' stored results
(:func:`from_records`); bring-your-own ones from the request, with the replica theory
added by the service.  :func:`contenders` turns them into one value per judged metric:
``<metric>[<config label>]`` for per-config metrics, ``<metric>`` otherwise.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from service.benchmarks.policies import Contender, aggregate, sem
from service.benchmarks.suites import Config, Suite, SuiteMetric, params_key

Z_95 = 1.96


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _mean(values: Sequence[float]) -> float | None:
    return statistics.fmean(values) if values else None


def from_records(
    configs: Sequence[Config],
    records: Mapping[str, Sequence[dict[str, Any]]],
    query_latency_ms: Sequence[float] = (),
    spans: Mapping[str, float | None] | None = None,
) -> dict[str, Any]:
    """Measurements of a run-here run from ``{sweep name: result records}``.

    Performance: ``wall_time_per_trial_s`` is every trial's compute seconds;
    ``throughput_trials_per_s`` trials over their summed compute time;
    ``dispatch_overhead_s`` per sweep, the part of its span (``spans``: first trial start
    to last finish, seconds) not spent computing, per trial; ``query_latency_ms`` as timed
    by the caller.
    """
    by_key = {(c.sweep, params_key(c.params)): c.label for c in configs}
    out: dict[str, dict[str, Any]] = {c.label: _empty() for c in configs}
    walls: list[float] = []
    overheads: list[float] = []
    for sweep, rows in records.items():
        sweep_walls: list[float] = []
        for row in rows:
            label = by_key.get((sweep, params_key(row["params"])))
            if label is None:
                continue
            entry = out[label]
            if _finite(row.get("gen_error_sim")):
                entry["gen_error"].append(float(row["gen_error_sim"]))
            for column, name in (
                ("gen_error_asymptotic", "replica"),
                ("gen_error_theory", "finite"),
            ):
                if _finite(row.get(column)):
                    entry[f"_{name}"].append(float(row[column]))
            if row.get("regime_theory"):
                entry["regime_theory"] = row["regime_theory"]
            if row.get("regime_empirical"):
                entry["regime_empirical"].append(row["regime_empirical"])
            if _finite(row.get("wall_time_s")):
                walls.append(float(row["wall_time_s"]))
                sweep_walls.append(float(row["wall_time_s"]))
        span = (spans or {}).get(sweep)
        if span is not None and sweep_walls:
            overheads.append(max(0.0, span - sum(sweep_walls)) / len(sweep_walls))
    for entry in out.values():
        entry["theory_replica"] = _mean(entry.pop("_replica"))
        entry["theory_finite"] = _mean(entry.pop("_finite"))
    metrics: dict[str, list[float]] = {"wall_time_per_trial_s": walls}
    if walls and sum(walls) > 0:
        metrics["throughput_trials_per_s"] = [len(walls) / sum(walls)]
    if overheads:
        metrics["dispatch_overhead_s"] = overheads
    if query_latency_ms:
        metrics["query_latency_ms"] = list(query_latency_ms)
    return {"configs": out, "metrics": metrics}


def _empty() -> dict[str, Any]:
    return {
        "gen_error": [],
        "_replica": [],
        "_finite": [],
        "regime_theory": None,
        "regime_empirical": [],
    }


def _theory(metric: SuiteMetric, entry: Mapping[str, Any]) -> float | None:
    if metric.theory == "finite" and entry.get("theory_finite") is not None:
        return entry["theory_finite"]
    return entry.get("theory_replica")


def contenders(
    suite: Suite, measurements: Mapping[str, Any]
) -> dict[str, tuple[SuiteMetric, Contender]]:
    """One contender value per judged metric name (rules in the module docstring)."""
    configs: Mapping[str, Mapping[str, Any]] = measurements.get("configs", {})
    perf: Mapping[str, Sequence[float]] = measurements.get("metrics", {})
    out: dict[str, tuple[SuiteMetric, Contender]] = {}
    for metric in suite.metrics:
        if metric.measure == "config_theory_z":
            for label, entry in configs.items():
                samples = tuple(entry.get("gen_error", ()))
                value = _mean(samples)
                out[f"{metric.name}[{label}]"] = (
                    metric,
                    Contender(value, samples, _theory(metric, entry)),
                )
        elif metric.measure == "config_golden":
            for label, golden in metric.golden.items():
                samples = tuple(configs.get(label, {}).get("gen_error", ()))
                out[f"{metric.name}[{label}]"] = (
                    metric,
                    Contender(_mean(samples), samples, golden),
                )
        elif metric.measure == "fraction_inside":
            out[metric.name] = (metric, Contender(_fraction_inside(metric, configs)))
        elif metric.measure == "regime_agreement":
            out[metric.name] = (metric, Contender(_regime_agreement(configs)))
        else:
            samples = tuple(float(x) for x in perf.get(metric.measure, ()))
            value = (
                aggregate(samples, metric.policy.aggregate, metric.policy.direction)
                if samples
                else None
            )
            out[metric.name] = (metric, Contender(value, samples))
    return out


def _fraction_inside(metric: SuiteMetric, configs: Mapping[str, Mapping[str, Any]]) -> float | None:
    """Configs whose theory lies inside mean ± 1.96·SEM, over configs with an SEM and a theory."""
    inside = compared = 0
    for entry in configs.values():
        samples, theory = entry.get("gen_error", ()), _theory(metric, entry)
        error = sem(samples)
        if error is None or theory is None:
            continue
        compared += 1
        inside += abs(statistics.fmean(samples) - theory) <= Z_95 * error
    return inside / compared if compared else None


def _regime_agreement(configs: Mapping[str, Mapping[str, Any]]) -> float | None:
    """Seeds whose measured regime equals the config's theory regime, over labelled seeds."""
    pairs = [
        (entry.get("regime_theory"), label)
        for entry in configs.values()
        for label in entry.get("regime_empirical") or ()
        if entry.get("regime_theory")
    ]
    return sum(1 for t, e in pairs if t == e) / len(pairs) if pairs else None
