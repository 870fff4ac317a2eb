"""Theory vs simulation: the agreement report of one sweep (``GET /v1/sweeps/{id}/report``).

The computation (:func:`config_stats`, :func:`agreement_report`) is pure: plain result
records in, a wire model out.  :func:`sweep_report` is the use case the route and the CLI
call; it reads the records through ``service.store.figures``.

Rules (documented in the README, "Reproducing the paper"):

- A *config* is one parameter set with its seeds pooled.  Simulation: mean and SEM
  (sample std / sqrt(n), ddof = 1) of ``gen_error_sim`` over seeds; theory: the replica
  ``gen_error_asymptotic`` at the same α (stored on every ``dln_finetune`` trial).
- ``z = (mean − theory) / SEM``; the theory is *inside* when ``|mean − theory| ≤ 1.96·SEM``
  (the paper plots mean ± 1.96·SEM, THEORY.md §5).
- Verdicts, first match wins: ``not_converged`` if any seed stopped at ``max_steps`` or
  diverged; ``too_few_seeds`` if fewer than two seeds have a simulated error;
  ``stopping_rule`` if the theory and the simulation mean are both below ``floor``
  (default 1e-2) and the theory is outside the interval — there the train-MSE threshold
  (1e-4), not the implicit bias, sets the simulated error (THEORY.md §5); otherwise
  ``agree`` or ``disagree``.
- ``fraction_inside`` = agree / (agree + disagree); ``fraction_inside_all`` counts every
  config with an SEM in the denominator, so nothing hides behind an exclusion.
- Regime agreement rate: over trials that carry both labels, the fraction whose measured
  (empirical) label equals the theory label.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from api_schemas.report import AgreementReport, ConfigAgreement, RegimeAgreement
from api_schemas.wire import REGIMES

Z_95 = 1.96
DEFAULT_FLOOR = 1e-2
DEFAULT_WORST = 10
TARGET_FRACTION = 0.8
# Parameters that say where a trial sits but not which config it is.
NOT_CONFIG = ("seed",)
# Parameters that a replica (D → ∞) prediction does not depend on.
NOT_THEORY = ("alpha", "D", "n_test", "alpha_pt")
# Stop reasons of a run that is not the interpolator the theory describes.
UNCONVERGED_STOPS = ("max_steps", "diverged")


@dataclass
class ConfigStats:
    """One config's pooled seeds (plain data, shared with the figures)."""

    params: dict[str, Any]
    alpha: float | None
    n: int
    mean: float | None
    sem: float | None
    theory: float | None
    finite_theory: float | None
    regime_theory: str | None
    regime_empirical: str | None
    regime_matches: int
    regime_pairs: int
    stop_reasons: dict[str, int] = field(default_factory=dict)
    l_order: float | None = None
    pd: float | None = None

    @property
    def converged(self) -> bool:
        return not any(reason in UNCONVERGED_STOPS for reason in self.stop_reasons)


def config_key(params: dict[str, Any], drop: tuple[str, ...] = NOT_CONFIG) -> str:
    """A canonical string for a parameter set without ``drop`` (seed by default)."""
    return json.dumps({k: v for k, v in params.items() if k not in drop}, sort_keys=True)


def theory_key(params: dict[str, Any]) -> str:
    """The key shared by a simulation config and its replica curve (no α, D, seed)."""
    return config_key(params, NOT_CONFIG + NOT_THEORY)


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _mode(values: list[str]) -> str | None:
    if not values:
        return None
    counts = Counter(values)
    return min(counts, key=lambda label: (-counts[label], label))


def config_stats(records: list[dict[str, Any]]) -> list[ConfigStats]:
    """Pool each config's seeds: mean, SEM, theory, regimes, stop reasons.

    ``records`` are result rows as dicts with ``params``, ``gen_error_sim``,
    ``gen_error_asymptotic``, ``gen_error_theory``, ``regime_theory``,
    ``regime_empirical``, ``stop_reason``, ``diverged``, ``l_order_theory``,
    ``pd_theory`` (missing keys count as None).  Order: first appearance.
    """
    groups: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        groups.setdefault(config_key(record["params"]), []).append(record)
    out = []
    for members in groups.values():
        sims = [r["gen_error_sim"] for r in members if _finite(r.get("gen_error_sim"))]
        n = len(sims)
        mean = _mean(sims)
        sem = None
        if n >= 2 and mean is not None:
            variance = sum((x - mean) ** 2 for x in sims) / (n - 1)
            sem = math.sqrt(variance / n)
        pairs = [
            (r.get("regime_theory"), r.get("regime_empirical"))
            for r in members
            if r.get("regime_theory") and r.get("regime_empirical")
        ]
        stops: Counter[str] = Counter()
        for r in members:
            if r.get("diverged"):
                stops["diverged"] += 1
            elif r.get("stop_reason"):
                stops[r["stop_reason"]] += 1
        params = members[0]["params"]
        alpha = params.get("alpha")
        out.append(
            ConfigStats(
                params=dict(params),
                alpha=float(alpha) if alpha is not None else None,
                n=n,
                mean=mean,
                sem=sem,
                theory=_mean(
                    [
                        r["gen_error_asymptotic"]
                        for r in members
                        if _finite(r.get("gen_error_asymptotic"))
                    ]
                ),
                finite_theory=_mean(
                    [r["gen_error_theory"] for r in members if _finite(r.get("gen_error_theory"))]
                ),
                regime_theory=_mode(
                    [r["regime_theory"] for r in members if r.get("regime_theory")]
                ),
                regime_empirical=_mode(
                    [r["regime_empirical"] for r in members if r.get("regime_empirical")]
                ),
                regime_matches=sum(1 for t, e in pairs if t == e),
                regime_pairs=len(pairs),
                stop_reasons=dict(stops),
                l_order=_mean(
                    [r["l_order_theory"] for r in members if _finite(r.get("l_order_theory"))]
                ),
                pd=_mean([r["pd_theory"] for r in members if _finite(r.get("pd_theory"))]),
            )
        )
    return out


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def judge(stats: ConfigStats, floor: float = DEFAULT_FLOOR) -> ConfigAgreement:
    """One config's z-score, interval test and verdict (rules in the module docstring)."""
    z = inside = None
    if stats.mean is not None and stats.theory is not None and stats.sem is not None:
        gap = stats.mean - stats.theory
        if stats.sem > 0:
            z = gap / stats.sem
            inside = abs(gap) <= Z_95 * stats.sem
        else:
            inside = gap == 0
    if not stats.converged:
        verdict = "not_converged"
    elif stats.sem is None or stats.theory is None:
        verdict = "too_few_seeds"
    elif inside:
        verdict = "agree"
    elif stats.theory < floor and stats.mean is not None and stats.mean < floor:
        verdict = "stopping_rule"
    else:
        verdict = "disagree"
    return ConfigAgreement(
        params=stats.params,
        alpha=stats.alpha if stats.alpha is not None else math.nan,
        n_seeds=stats.n,
        sim_mean=stats.mean,
        sim_sem=stats.sem,
        theory=stats.theory,
        finite_theory_mean=stats.finite_theory,
        z=z,
        inside_95=inside,
        verdict=verdict,
        regime_theory=stats.regime_theory,
        regime_empirical=stats.regime_empirical,
        regime_match_rate=(
            stats.regime_matches / stats.regime_pairs if stats.regime_pairs else None
        ),
        stop_reasons=stats.stop_reasons,
    )


def _fraction(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def _shortfall_note(regime: str, rows: list[ConfigAgreement], target: float) -> str:
    """Why a regime misses the target, in numbers: the gaps and the stop reasons."""
    compared = [r for r in rows if r.verdict in ("agree", "disagree")]
    outside = [r for r in compared if r.verdict == "disagree"]
    parts = [
        f"regime {regime}: {len(compared) - len(outside)} of {len(compared)} compared "
        f"configs inside the 95% interval (target {target:.0%})"
    ]
    if outside:
        above = sum(1 for r in outside if (r.z or 0) > 0)
        worst = max(outside, key=lambda r: abs(r.z or 0))
        parts.append(
            f"{len(outside)} outside ({above} with the simulation above the theory); worst "
            f"alpha={worst.alpha:.3g}: sim {worst.sim_mean:.4g} ± {worst.sim_sem:.2g} vs theory "
            f"{worst.theory:.4g} (z = {worst.z:+.1f}); finite-sample theory on the same "
            f"instances {_fmt(worst.finite_theory_mean)}"
        )
        if len(outside) >= 2 and above in (0, len(outside)):
            side = "above" if above else "below"
            parts.append(
                f"every outside config has the simulation {side} the theory: configs of one task "
                "share their instances (same seed and α → same X and β*), so their deviations are "
                "correlated rather than independent"
            )
        if worst.finite_theory_mean is not None and worst.sim_mean is not None:
            rel = abs(worst.sim_mean - worst.finite_theory_mean) / max(worst.sim_mean, 1e-300)
            if rel < 0.05:
                parts.append(
                    "GD matches the finite-sample implicit-bias solution of its own instances "
                    f"(within {rel:.1%}), so the gap is finite-D (D → ∞ limit vs this D), not "
                    "the optimizer"
                )
    unconverged = [r for r in rows if r.verdict == "not_converged"]
    if unconverged:
        reasons: Counter[str] = Counter()
        for r in unconverged:
            reasons.update({k: v for k, v in r.stop_reasons.items() if k in UNCONVERGED_STOPS})
        parts.append(
            f"{len(unconverged)} configs not converged "
            f"({', '.join(f'{k}: {v} runs' for k, v in sorted(reasons.items()))}): rich settings "
            "(lambda_PT → −1, tiny c_PT) need more GD steps; raise max_steps"
        )
    return "; ".join(parts)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def agreement_report(
    records: list[dict[str, Any]],
    *,
    sweep_id: str,
    sweep_name: str,
    workload: str,
    floor: float = DEFAULT_FLOOR,
    worst: int = DEFAULT_WORST,
    target: float = TARGET_FRACTION,
) -> AgreementReport:
    """The report of one sweep's records (rules in the module docstring)."""
    rows = [judge(stats, floor) for stats in config_stats(records)]
    counts = Counter(row.verdict for row in rows)
    compared = counts["agree"] + counts["disagree"]
    with_sem = sum(1 for row in rows if row.inside_95 is not None)
    inside_all = sum(1 for row in rows if row.inside_95)
    pairs = [
        (r["regime_theory"], r["regime_empirical"])
        for r in records
        if r.get("regime_theory") and r.get("regime_empirical")
    ]
    fraction = _fraction(counts["agree"], compared)
    per_regime = []
    notes = []
    for regime in REGIMES:
        members = [row for row in rows if row.regime_theory == regime]
        if not members:
            continue
        regime_counts = Counter(row.verdict for row in members)
        regime_compared = regime_counts["agree"] + regime_counts["disagree"]
        regime_fraction = _fraction(regime_counts["agree"], regime_compared)
        regime_pairs = [(t, e) for t, e in pairs if t == regime]
        note = None
        if (regime_fraction is not None and regime_fraction < target) or regime_counts[
            "not_converged"
        ]:
            note = _shortfall_note(regime, members, target)
            notes.append(note)
        per_regime.append(
            RegimeAgreement(
                regime=regime,
                configs=len(members),
                compared=regime_compared,
                inside_95=regime_counts["agree"],
                fraction_inside=regime_fraction,
                stopping_rule=regime_counts["stopping_rule"],
                not_converged=regime_counts["not_converged"],
                regime_agreement_rate=_fraction(
                    sum(1 for t, e in regime_pairs if t == e), len(regime_pairs)
                ),
                note=note,
            )
        )
    if counts["stopping_rule"]:
        notes.append(
            f"{counts['stopping_rule']} configs have theory and simulation below {floor:g}: "
            "the train-MSE stopping threshold floors the simulated error there (THEORY.md §5), "
            "so they are listed as stopping_rule, not counted as disagreements"
        )
    ranked = sorted(
        (row for row in rows if row.verdict in ("agree", "disagree") and row.z is not None),
        key=lambda row: -abs(row.z or 0.0),
    )
    return AgreementReport(
        sweep_id=sweep_id,
        sweep_name=sweep_name,
        workload=workload,
        configs=len(rows),
        compared=compared,
        inside_95=counts["agree"],
        fraction_inside=fraction,
        fraction_inside_all=_fraction(inside_all, with_sem),
        target_fraction=target,
        meets_target=None if fraction is None else fraction >= target,
        regime_agreement_rate=_fraction(sum(1 for t, e in pairs if t == e), len(pairs)),
        counts={verdict: counts[verdict] for verdict in sorted(counts)},
        floor=floor,
        per_regime=per_regime,
        worst=ranked[:worst],
        rows=rows,
        notes=notes,
    )


def sweep_report(
    session: Session,
    sweep_id: str,
    *,
    floor: float = DEFAULT_FLOOR,
    worst: int = DEFAULT_WORST,
) -> AgreementReport:
    """The agreement report of a stored sweep (404 unknown, 409 no simulation results)."""
    from service.store import figures as figure_store

    sweep = figure_store.sweep_info(session, sweep_id)
    records = figure_store.sweep_records(session, sweep_id)
    figure_store.require_simulation(sweep, records)
    return agreement_report(
        records,
        sweep_id=sweep.id,
        sweep_name=sweep.name,
        workload=sweep.workload,
        floor=floor,
        worst=worst,
    )
