"""Verdict policies: pure functions from a contender value and the baseline's history to
a judgement.  No database, no clock; everything judged is passed in.

Tests (``MetricPolicy.test``):

- ``theory_z``: ``z = (mean − theory) / SEM`` over the contender's samples (seeds);
  regression when ``|z| > threshold`` (default 5).
- ``golden``: regression when ``|value − golden| > tolerance``.
- ``minimum`` / ``maximum``: regression when the value is below / above ``threshold``.
- ``lookback_z`` (Conbench): over the latest ``window`` baseline runs (at least
  ``min_runs``, default 2), ``z = (x − mean) / sd`` (ddof = 1); regression when z is past
  ``threshold`` (default 5) in the worse direction *and* the change is at least
  ``min_change_pct``; improvement likewise the other way.
- ``percentage``: change against the baseline median past ``threshold`` percent.
- ``mann_whitney`` (asv): two-sided Mann–Whitney U of the contender's samples against
  the pooled baseline samples; regression when ``p < threshold`` (default 0.002) and the
  contender's median is worse.

Too little data is ``insufficient_data`` with the reason, never a silent pass.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from api_schemas.benchmarks import MetricPolicy


@dataclass(frozen=True)
class Contender:
    """One metric of the run being judged."""

    value: float | None
    samples: tuple[float, ...] = ()
    theory: float | None = None  # theory_z: the theory; golden: the golden value


@dataclass(frozen=True)
class HistoryValue:
    """One earlier baseline run's value of the metric."""

    run_id: str
    commit: str | None
    value: float | None
    samples: tuple[float, ...] = ()


@dataclass(frozen=True)
class Judgement:
    outcome: str
    contender: dict[str, Any]
    baseline: dict[str, Any] = field(default_factory=dict)
    change: float | None = None
    change_pct: float | None = None
    statistic: float | None = None
    limits: dict[str, float | None] = field(default_factory=dict)
    reason: str | None = None


def aggregate(samples: Sequence[float], how: str, direction: str = "lower_is_better") -> float:
    """Repetitions → one value: median, mean, or best-of (min, or max when higher is better)."""
    if how == "mean":
        return statistics.fmean(samples)
    if how == "best":
        return min(samples) if direction == "lower_is_better" else max(samples)
    return statistics.median(samples)


def sem(samples: Sequence[float]) -> float | None:
    """Sample std / sqrt(n) (ddof = 1); None below two samples."""
    if len(samples) < 2:
        return None
    return statistics.stdev(samples) / math.sqrt(len(samples))


def _ratio(gap: float, scale: float) -> float:
    if scale > 0:
        return gap / scale
    return 0.0 if gap == 0 else math.copysign(math.inf, gap)


def _pct(value: float, reference: float) -> float | None:
    return None if reference == 0 else 100.0 * (value - reference) / abs(reference)


def _contender(c: Contender) -> dict[str, Any]:
    out: dict[str, Any] = {"value": c.value, "n": len(c.samples) or int(c.value is not None)}
    if len(c.samples) >= 2:
        out["sem"] = sem(c.samples)
    if c.theory is not None:
        out["reference"] = c.theory
    return out


def _worse_sign(policy: MetricPolicy) -> int:
    return 1 if policy.direction == "lower_is_better" else -1


def judge_metric(
    policy: MetricPolicy, contender: Contender, history: Sequence[HistoryValue]
) -> Judgement:
    """The judgement of one metric under ``policy`` (rules in the module docstring)."""
    described = _contender(contender)
    if contender.value is None or not math.isfinite(contender.value):
        return Judgement("error", described, reason="the metric has no finite value")
    if policy.test in ("theory_z", "golden", "minimum", "maximum"):
        return _against_reference(policy, contender, described)
    if policy.test == "mann_whitney":
        return _mann_whitney(policy, contender, history, described)
    return _against_history(policy, contender, history, described)


def _against_reference(policy: MetricPolicy, c: Contender, described: dict) -> Judgement:
    value, limit = float(c.value or 0.0), policy.limit()
    if policy.test in ("minimum", "maximum"):
        bad = value < limit if policy.test == "minimum" else value > limit
        bound = {"lower": limit, "upper": None} if policy.test == "minimum" else {"upper": limit}
        return Judgement("regression" if bad else "unchanged", described, limits=bound)
    if c.theory is None:
        return Judgement("error", described, reason=f"{policy.test} needs a reference value")
    gap = value - c.theory
    if policy.test == "golden":
        tolerance = policy.tolerance or 0.0
        bad = abs(gap) > tolerance
        limits = {"lower": c.theory - tolerance, "upper": c.theory + tolerance}
        return Judgement(
            "regression" if bad else "unchanged",
            described,
            change=gap,
            statistic=gap,
            limits=limits,
        )
    if len(c.samples) < max(2, policy.min_samples):
        return Judgement(
            "insufficient_data",
            described,
            reason=f"theory_z needs {max(2, policy.min_samples)} samples, got {len(c.samples)}",
        )
    error = sem(c.samples) or 0.0
    z = _ratio(gap, error)
    limits = {"lower": c.theory - limit * error, "upper": c.theory + limit * error}
    outcome = "regression" if abs(z) > limit else "unchanged"
    return Judgement(outcome, described, change=gap, statistic=z, limits=limits)


def _window(policy: MetricPolicy, history: Sequence[HistoryValue]) -> list[HistoryValue]:
    usable = [h for h in history if h.value is not None and math.isfinite(h.value)]
    return usable[-policy.window :]


def _too_few(policy: MetricPolicy, runs: list[HistoryValue], described: dict) -> Judgement:
    return Judgement(
        "insufficient_data",
        described,
        baseline={"runs": len(runs)},
        reason=f"{policy.test} needs at least {policy.min_runs} earlier baseline runs, "
        f"found {len(runs)}",
    )


def _against_history(
    policy: MetricPolicy, c: Contender, history: Sequence[HistoryValue], described: dict
) -> Judgement:
    runs = _window(policy, history)
    if len(runs) < policy.min_runs:
        return _too_few(policy, runs, described)
    values = [float(h.value) for h in runs if h.value is not None]
    value, limit, worse = float(c.value or 0.0), policy.limit(), _worse_sign(policy)
    if policy.test == "percentage":
        reference = statistics.median(values)
        pct = _pct(value, reference)
        signed = (pct or 0.0) * worse
        base = {"runs": len(runs), "median": reference}
        span = abs(reference) * limit / 100
        limits = {"lower": reference - span, "upper": reference + span}
        return Judgement(
            _direction(signed > limit, signed < -limit),
            described,
            base,
            value - reference,
            pct,
            pct,
            limits,
        )
    mean = statistics.fmean(values)
    spread = statistics.stdev(values) if len(values) >= 2 else 0.0
    z = _ratio(value - mean, spread)
    pct = _pct(value, mean)
    big = abs(pct or 0.0) >= policy.min_change_pct
    signed = z * worse
    base = {"runs": len(runs), "mean": mean, "sd": spread}
    limits = {"lower": mean - limit * spread, "upper": mean + limit * spread}
    outcome = _direction(signed > limit and big, signed < -limit and big)
    return Judgement(outcome, described, base, value - mean, pct, z, limits)


def _direction(worse: bool, better: bool) -> str:
    return "regression" if worse else "improvement" if better else "unchanged"


def _mann_whitney(
    policy: MetricPolicy, c: Contender, history: Sequence[HistoryValue], described: dict
) -> Judgement:
    from scipy.stats import mannwhitneyu

    runs = _window(policy, history)
    pooled = [x for h in runs for x in (h.samples or ((h.value,) if h.value is not None else ()))]
    if len(runs) < policy.min_runs:
        return _too_few(policy, runs, described)
    if min(len(c.samples), len(pooled)) < policy.min_samples:
        return Judgement(
            "insufficient_data",
            described,
            {"runs": len(runs), "samples": len(pooled)},
            reason=f"mann_whitney needs {policy.min_samples} samples per side, got "
            f"{len(c.samples)} and {len(pooled)}",
        )
    p = float(mannwhitneyu(c.samples, pooled, alternative="two-sided").pvalue)
    reference = statistics.median(pooled)
    mine = statistics.median(c.samples)
    signed = (mine - reference) * _worse_sign(policy)
    pct = _pct(mine, reference)
    big = abs(pct or 0.0) >= policy.min_change_pct
    significant = p < policy.limit() and big
    base = {"runs": len(runs), "samples": len(pooled), "median": reference}
    outcome = _direction(significant and signed > 0, significant and signed < 0)
    return Judgement(outcome, described, base, mine - reference, pct, p, {"p": policy.limit()})


def run_status(outcomes: Sequence[tuple[str, bool, bool]]) -> tuple[str, str | None]:
    """The run's status from ``(outcome, acknowledged, confirmed)`` per metric.

    error beats fail beats inconclusive beats pass: an error means the run cannot be
    trusted; an acknowledged regression no longer fails; an unconfirmed one (policy
    ``confirm_on_rerun``) is inconclusive until a rerun repeats it.
    """
    counts = {"error": 0, "fail": 0, "unconfirmed": 0, "insufficient": 0}
    for outcome, acknowledged, confirmed in outcomes:
        if outcome == "error":
            counts["error"] += 1
        elif outcome == "regression" and not acknowledged:
            counts["fail" if confirmed else "unconfirmed"] += 1
        elif outcome == "insufficient_data":
            counts["insufficient"] += 1
    if not outcomes:
        return "inconclusive", "the suite judged no metric"
    if counts["error"]:
        return "error", f"{counts['error']} metrics could not be judged"
    if counts["fail"]:
        return "fail", f"{counts['fail']} metrics regressed"
    if counts["unconfirmed"] or counts["insufficient"]:
        parts = []
        if counts["insufficient"]:
            parts.append(f"{counts['insufficient']} metrics lack baseline data")
        if counts["unconfirmed"]:
            parts.append(f"{counts['unconfirmed']} regressions await a confirming rerun")
        return "inconclusive", "; ".join(parts)
    return "pass", None
