"""Judge a run: pick its baseline, apply each metric's policy, record the verdict.

Baseline strategies (``BenchmarkRunCreate.baseline``; ``auto`` picks the first that
applies):

- ``pinned``: exactly the run named by ``baseline_run_id``;
- ``base_commit``: the merge target, as Conbench does it: the default branch's runs up to
  and including the latest run of the PR's base commit;
- ``default_branch``: the latest runs on the default branch (``SWEEPS_BENCHMARKS__DEFAULT_BRANCH``).

Only judged runs (pass, fail, inconclusive) of the same suite version on the same
machine fingerprint, created before the contender, count.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from api_schemas.benchmarks import MetricPolicy
from service.benchmarks.measures import contenders
from service.benchmarks.policies import HistoryValue, judge_metric, run_status
from service.benchmarks.suites import Suite
from service.settings import Settings
from service.store import benchmark_thresholds as threshold_store
from service.store import benchmarks as store
from service.store.benchmarks import RunRecord


def choose_baseline(
    session: Session, run: RunRecord, settings: Settings, window: int
) -> tuple[str, list[RunRecord], str | None]:
    """(strategy, baseline runs oldest first, note) for ``run``."""
    options = run.options or {}
    wanted = options.get("baseline", "auto")
    default = settings.benchmarks.default_branch
    if wanted == "pinned":
        pinned = store.baseline_runs(session, run, run_ids=[options.get("baseline_run_id", "")])
        note = None if pinned else f"pinned run {options.get('baseline_run_id')!r} is not judged"
        return "pinned", pinned, note
    note = None
    if wanted in ("auto", "base_commit") and run.base_commit:
        anchor = store.baseline_runs(session, run, commit=run.base_commit, limit=1)
        if anchor:
            runs = store.baseline_runs(
                session, run, branch=default, upto=anchor[-1].created_at, limit=window
            )
            if anchor[-1].id not in {r.id for r in runs}:
                runs = [*(runs[1:] if len(runs) >= window else runs), anchor[-1]]
            return "base_commit", runs, None
        note = f"no judged run of base commit {run.base_commit}; used the default branch"
    runs = store.baseline_runs(session, run, branch=default, limit=window)
    return "default_branch", runs, note


def effective_policies(
    session: Session, suite: Suite, names: dict[str, Any]
) -> dict[str, MetricPolicy]:
    """Each judged metric's policy: the suite's, replaced by a stored threshold for the
    full metric name or its base name (thresholds as data)."""
    overrides = {t.metric: t.policy for t in threshold_store.thresholds(session, suite.name)}
    out = {}
    for name, (metric, _) in names.items():
        stored = overrides.get(name, overrides.get(metric.name))
        out[name] = MetricPolicy.model_validate(stored) if stored else metric.policy
    return out


def judge_run(
    session: Session,
    run: RunRecord,
    suite: Suite,
    measurements: dict[str, Any],
    settings: Settings,
    source: str,
) -> None:
    """Judge ``run`` on ``measurements`` and record values and status (once)."""
    judged = contenders(suite, measurements)
    policies = effective_policies(session, suite, judged)
    window = max((p.window for p in policies.values()), default=100)
    strategy, runs, note = choose_baseline(session, run, settings, window)
    earlier = store.values_of(session, [r.id for r in runs])
    same_commit = store.baseline_runs(session, run, commit=run.commit) if run.commit else []
    rerun_values = store.values_of(session, [r.id for r in same_commit])
    values, outcomes, counts = [], [], {}
    for name, (metric, contender) in judged.items():
        policy = policies[name]
        history = [
            HistoryValue(r.id, r.commit, earlier[(r.id, name)].value, earlier[(r.id, name)].samples)
            for r in runs
            if (r.id, name) in earlier
        ]
        counts[name] = len(history)
        result = judge_metric(policy, contender, history)
        confirmed = True
        if result.outcome == "regression" and policy.confirm_on_rerun:
            confirmed = any(
                rerun_values.get((r.id, name)) is not None
                and rerun_values[(r.id, name)].outcome == "regression"
                for r in same_commit
            )
        outcomes.append((result.outcome, False, confirmed))
        detail = {
            "kind": metric.kind,
            "test": policy.test,
            "contender": result.contender,
            "baseline": result.baseline,
            "change": result.change,
            "change_pct": result.change_pct,
            "statistic": result.statistic,
            "limits": result.limits,
            "reason": result.reason,
            "confirmed": confirmed,
        }
        if not confirmed:
            detail["reason"] = "regression seen once; a rerun on this commit must repeat it"
        values.append(
            {
                "metric": name,
                "value": contender.value,
                "samples": list(contender.samples),
                "theory": contender.theory,
                "source": source,
                "outcome": result.outcome,
                "detail": detail,
            }
        )
    status, reason = run_status(outcomes)
    if note and status == "inconclusive":
        reason = f"{reason}; {note}"
    verdict = {
        "reason": reason,
        "baseline": {
            "strategy": strategy,
            "runs": [r.id for r in runs],
            "commits": [r.commit for r in runs],
            "window": window,
            "sample_counts": counts,
            "note": note,
        },
        "policy": {name: policy.model_dump() for name, policy in policies.items()},
    }
    store.finish_run(session, run.id, status, verdict, values)


def restatus(session: Session, run_id: str) -> None:
    """Recompute a judged run's status after an acknowledgement."""
    run = store.get_run(session, run_id)
    rows = store.run_values(session, run_id)
    outcomes = [
        (v.outcome or "error", v.acknowledged is not None, bool(v.detail.get("confirmed", True)))
        for v in rows
    ]
    status, reason = run_status(outcomes)
    store.restatus(session, run_id, status, {**(run.verdict or {}), "reason": reason})
