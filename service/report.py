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
- Regime labels under a classifier version (``classifier``, default ``regimes-v2``;
  ``workers.theory.regimes``): a stored label is used as stored when the trial was
  labelled with that version, else the version is applied to the stored (ℓ, PD).
  Regime agreement rate: over trials that carry both labels, the fraction whose measured
  (empirical) label equals the theory label.
- ``regimes-v2`` adds the seeds' uncertainty.  A config's empirical label is
  ``seed_interval`` over its seeds' measured (ℓ, PD): the label of the seed mean, or
  ``boundary`` when mean ± 1.96·SEM of ℓ or of the reuse share p = PD/(1 − ℓ) straddles
  a threshold; every trial of the config carries it.  A config is *clear* when its theory
  (ℓ, PD) lies farther than those half-widths from every threshold
  (``clear_of_thresholds``).  The headline ``regime_clear_agreement_rate`` counts the
  trials of clear, converged configs (a not_converged config's network is not the
  interpolator the theory labels; its trials are counted in
  ``regime_unconverged_trials``): matches / clear trials, the rest split into
  ``boundary`` and ``wrong`` (another regime).  ``regime_boundary_trials`` counts every
  trial labelled boundary.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from api_schemas.report import (
    AgreementReport,
    ConfigAgreement,
    RegimeAgreement,
    param_pairs,
    varying_params,
)
from api_schemas.wire import REGIMES
from workers.theory import regimes as classifier

Z_95 = 1.96
DEFAULT_FLOOR = 1e-2
DEFAULT_WORST = 10
TARGET_FRACTION = 0.8
# Parameters that say where a trial sits but not which config it is.
NOT_CONFIG = ("seed",)
# Parameters that a replica (D → ∞) prediction does not depend on.
# teacher_norm too: a finite-D draw option, absent from the replica problem
# (workers.workloads.THEORY_FIELDS), so an "exact" simulation matches a default theory
# sweep's curve (tests/service/test_report.py holds the two lists together).
NOT_THEORY = ("alpha", "D", "n_test", "alpha_pt", "teacher_norm")
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
    classifier: str = classifier.CLASSIFIER_VERSION
    # regimes-v2 only: the seed interval of the measured (ℓ, p) and whether the theory
    # point is clear of every threshold by more than it (None: v1, or no measurement).
    l_half_width: float | None = None
    share_half_width: float | None = None
    clear: bool | None = None
    labelled_trials: int = 0

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


def _label(record: dict[str, Any], side: str, version: str) -> str | None:
    """The ``side`` ("theory" / "empirical") label of one trial under ``version``: the
    stored one when the trial was labelled with that version, else ``version`` applied
    to the stored (ℓ, PD); None when neither is there."""
    stored = record.get(f"regime_{side}")
    if record.get("classifier_version") == version:
        return stored
    ell, pd = record.get(f"l_order_{side}"), record.get(f"pd_{side}")
    if _finite(ell) and _finite(pd):
        return classifier.classify(float(ell), float(pd), version)
    return None


def _regime_labels(
    members: list[dict[str, Any]], version: str
) -> tuple[list[tuple[str | None, str | None]], classifier.SeedInterval | None, bool | None]:
    """Per member (theory label, empirical label) under ``version``; for v2 also the
    config's seed interval and whether its theory point is clear of the thresholds."""
    theory = [_label(r, "theory", version) for r in members]
    if version != classifier.CLASSIFIER_V2:
        return (
            list(zip(theory, (_label(r, "empirical", version) for r in members), strict=True)),
            None,
            None,
        )
    measured = [
        r for r in members if _finite(r.get("l_order_empirical")) and _finite(r.get("pd_empirical"))
    ]
    if not measured:
        return [(t, None) for t in theory], None, None
    interval = classifier.seed_interval(
        [float(r["l_order_empirical"]) for r in measured],
        [float(r["pd_empirical"]) for r in measured],
    )
    labels = [interval.label if r in measured else None for r in members]
    ells = [r["l_order_theory"] for r in members if _finite(r.get("l_order_theory"))]
    pds = [r["pd_theory"] for r in members if _finite(r.get("pd_theory"))]
    clear = None
    if ells and pds:
        clear = classifier.clear_of_thresholds(
            sum(ells) / len(ells),
            sum(pds) / len(pds),
            interval.l_half_width,
            interval.share_half_width,
        )
    return list(zip(theory, labels, strict=True)), interval, clear


def config_stats(
    records: list[dict[str, Any]], classifier_version: str = classifier.CLASSIFIER_VERSION
) -> list[ConfigStats]:
    """Pool each config's seeds: mean, SEM, theory, regimes, stop reasons.

    ``records`` are result rows as dicts with ``params``, ``gen_error_sim``,
    ``gen_error_asymptotic``, ``gen_error_theory``, ``regime_theory``,
    ``regime_empirical``, ``stop_reason``, ``diverged``, ``l_order_theory``,
    ``pd_theory``, ``l_order_empirical``, ``pd_empirical``, ``classifier_version``
    (missing keys count as None).  Regime labels are ``classifier_version``'s (module
    docstring).  Order: first appearance.
    """
    classifier.check_version(classifier_version)
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
        labels, interval, clear = _regime_labels(members, classifier_version)
        pairs = [(t, e) for t, e in labels if t and e]
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
                regime_theory=_mode([t for t, _ in labels if t]),
                regime_empirical=_mode([e for _, e in labels if e]),
                regime_matches=sum(1 for t, e in pairs if t == e),
                regime_pairs=len(pairs),
                stop_reasons=dict(stops),
                l_order=_mean(
                    [r["l_order_theory"] for r in members if _finite(r.get("l_order_theory"))]
                ),
                pd=_mean([r["pd_theory"] for r in members if _finite(r.get("pd_theory"))]),
                classifier=classifier_version,
                l_half_width=_none_if_nan(interval.l_half_width) if interval else None,
                share_half_width=_none_if_nan(interval.share_half_width) if interval else None,
                clear=clear,
                labelled_trials=len(pairs),
            )
        )
    return out


def _none_if_nan(value: float) -> float | None:
    return value if math.isfinite(value) else None


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
        regime_l_half_width=stats.l_half_width,
        regime_share_half_width=stats.share_half_width,
        regime_clear=stats.clear,
        stop_reasons=stats.stop_reasons,
    )


@dataclass
class _LabelCounts:
    """Trial counts behind the v2 regime numbers (module docstring)."""

    clear: int = 0
    clear_matches: int = 0
    clear_boundary: int = 0
    boundary: int = 0
    unconverged: int = 0

    def add(self, stats: ConfigStats) -> None:
        trials = stats.labelled_trials
        is_boundary = stats.regime_empirical == classifier.BOUNDARY
        if is_boundary:
            self.boundary += trials
        if not stats.converged:
            self.unconverged += trials
        elif stats.clear:
            self.clear += trials
            self.clear_matches += stats.regime_matches
            self.clear_boundary += trials if is_boundary else 0


def _fraction(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def config_name(row: ConfigAgreement, keys: list[str]) -> str:
    """``alpha=0.157, omega=1, rho_ft=0.1``: a config by α and the ``keys`` that vary."""
    return ", ".join(
        part for part in (f"alpha={row.alpha:.3g}", param_pairs(row.params, keys)) if part
    )


def _shortfall_note(
    regime: str, rows: list[ConfigAgreement], target: float, keys: list[str]
) -> str:
    """Why a regime misses the target, in numbers: the gaps and the stop reasons.  The
    worst config is named by α and ``keys``, the parameters that vary in the report."""
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
            f"{config_name(worst, keys)}: sim {worst.sim_mean:.4g} ± {worst.sim_sem:.2g} vs theory "
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
    classifier_version: str = classifier.CLASSIFIER_VERSION,
) -> AgreementReport:
    """The report of one sweep's records (rules in the module docstring); regime labels
    under ``classifier_version`` (ValueError for an unknown one)."""
    version = classifier.check_version(classifier_version)
    all_stats = config_stats(records, version)
    rows = [judge(stats, floor) for stats in all_stats]
    counts = Counter(row.verdict for row in rows)
    compared = counts["agree"] + counts["disagree"]
    with_sem = sum(1 for row in rows if row.inside_95 is not None)
    inside_all = sum(1 for row in rows if row.inside_95)
    fraction = _fraction(counts["agree"], compared)
    v2 = version == classifier.CLASSIFIER_V2
    totals = _LabelCounts()
    per_regime = []
    notes = []
    for regime in REGIMES:
        members = [row for row in rows if row.regime_theory == regime]
        if not members:
            continue
        member_stats = [s for s in all_stats if s.regime_theory == regime]
        labels = _LabelCounts()
        for stats in member_stats:
            labels.add(stats)
            totals.add(stats)
        regime_counts = Counter(row.verdict for row in members)
        regime_compared = regime_counts["agree"] + regime_counts["disagree"]
        regime_fraction = _fraction(regime_counts["agree"], regime_compared)
        note = None
        if (regime_fraction is not None and regime_fraction < target) or regime_counts[
            "not_converged"
        ]:
            note = _shortfall_note(regime, members, target, varying_params(rows))
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
                    sum(s.regime_matches for s in member_stats),
                    sum(s.regime_pairs for s in member_stats),
                ),
                clear_trials=labels.clear if v2 else None,
                clear_agreement_rate=_fraction(labels.clear_matches, labels.clear) if v2 else None,
                boundary_trials=labels.boundary if v2 else None,
                note=note,
            )
        )
    for stats in all_stats:
        if stats.regime_theory not in REGIMES:
            totals.add(stats)
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
        regime_agreement_rate=_fraction(
            sum(s.regime_matches for s in all_stats), sum(s.regime_pairs for s in all_stats)
        ),
        classifier=version,
        regime_labelled_trials=sum(s.labelled_trials for s in all_stats),
        regime_clear_trials=totals.clear if v2 else None,
        regime_clear_agreement_rate=_fraction(totals.clear_matches, totals.clear) if v2 else None,
        regime_clear_boundary=totals.clear_boundary if v2 else None,
        regime_clear_wrong=(
            totals.clear - totals.clear_matches - totals.clear_boundary if v2 else None
        ),
        regime_boundary_trials=totals.boundary if v2 else None,
        regime_unconverged_trials=totals.unconverged if v2 else None,
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
    classifier_version: str = classifier.CLASSIFIER_VERSION,
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
        classifier_version=classifier_version,
    )
