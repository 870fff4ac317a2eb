"""Wire shape of the theory-vs-simulation agreement report (``GET /v1/sweeps/{id}/report``).

One row per *config* (a parameter set, seeds pooled): the simulation's mean and SEM over
seeds, the replica theory at the same α, the z-score and whether the theory lies inside
the simulation's 95% interval (mean ± 1.96·SEM, THEORY.md §5).  Pydantic + stdlib only.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

# How a config counts (service/report.py documents the rules):
# - agree / disagree: theory inside / outside mean ± 1.96·SEM;
# - stopping_rule: theory and simulation both below the floor, where the train-MSE
#   stopping threshold, not the implicit bias, sets the simulated error (THEORY.md §5);
# - not_converged: some seed stopped at max_steps or diverged (the run is not the
#   interpolator the theory describes);
# - too_few_seeds: fewer than two simulated seeds, so no SEM.
# The regime classifiers a report can apply (workers.theory.regimes.CLASSIFIER_VERSIONS;
# a test holds the two equal).  regimes-v2 is the default.
ClassifierVersion = Literal["regimes-v1", "regimes-v2"]
DEFAULT_CLASSIFIER = "regimes-v2"
Verdict = Literal["agree", "disagree", "stopping_rule", "not_converged", "too_few_seeds"]


class ConfigAgreement(BaseModel):
    """One config: simulation over seeds beside the replica theory."""

    params: dict[str, Any] = Field(description="the config's parameters (seed pooled)")
    alpha: float
    n_seeds: int = Field(description="seeds with a simulated error")
    sim_mean: float | None
    sim_sem: float | None = Field(description="sample std / sqrt(n); None for n < 2")
    theory: float | None = Field(description="replica E_gen at this α (D → ∞)")
    finite_theory_mean: float | None = Field(
        default=None, description="mean finite-sample theory (same X, y as the runs)"
    )
    z: float | None = Field(description="(sim_mean − theory) / sim_sem")
    inside_95: bool | None = Field(description="|sim_mean − theory| ≤ 1.96·sim_sem")
    verdict: Verdict
    regime_theory: str | None
    regime_empirical: str | None = Field(description="most common measured label over seeds")
    regime_match_rate: float | None = Field(
        description="fraction of this config's seeds whose measured label equals the theory's"
    )
    regime_l_half_width: float | None = Field(
        default=None, description="regimes-v2: 1.96·SEM over seeds of the measured ℓ-order"
    )
    regime_share_half_width: float | None = Field(
        default=None,
        description="regimes-v2: 1.96·SEM over seeds of the measured reuse share PD/(1 − ℓ)",
    )
    regime_clear: bool | None = Field(
        default=None,
        description="regimes-v2: the theory (ℓ, PD) is farther than the half-widths from "
        "every threshold",
    )
    stop_reasons: dict[str, int] = Field(default_factory=dict)


def varying_params(rows: list[ConfigAgreement]) -> list[str]:
    """The parameters (other than α and seed) whose value differs between ``rows``, sorted:
    what tells one config of a report from another at the same α."""
    keys = {key for row in rows for key in row.params if key not in ("alpha", "seed")}
    return sorted(key for key in keys if len({repr(row.params.get(key)) for row in rows}) > 1)


def param_pairs(params: dict[str, Any], keys: list[str]) -> str:
    """``omega=1, rho_ft=0.1, D=5000``: the ``keys`` a config has, numbers as ``:g``."""
    return ", ".join(
        f"{key}={params[key]:g}"
        if isinstance(params[key], int | float) and not isinstance(params[key], bool)
        else f"{key}={params[key]}"
        for key in keys
        if key in params
    )


class RegimeAgreement(BaseModel):
    """The agreement numbers restricted to one theory regime."""

    regime: str
    configs: int
    compared: int = Field(description="configs that count (agree + disagree)")
    inside_95: int
    fraction_inside: float | None = Field(description="inside_95 / compared")
    stopping_rule: int
    not_converged: int
    regime_agreement_rate: float | None
    clear_trials: int | None = Field(
        default=None, description="regimes-v2: trials of clear, converged configs"
    )
    clear_agreement_rate: float | None = Field(
        default=None, description="regimes-v2: label agreement among clear_trials"
    )
    boundary_trials: int | None = Field(
        default=None, description="regimes-v2: trials labelled boundary"
    )
    note: str | None = Field(default=None, description="why this regime falls short, if it does")


class AgreementReport(BaseModel):
    """Theory vs simulation for one sweep: totals, per regime, worst configs, every row."""

    sweep_id: str
    sweep_name: str
    workload: str
    configs: int
    compared: int = Field(description="configs that count: verdict agree or disagree")
    inside_95: int
    fraction_inside: float | None = Field(description="inside_95 / compared")
    fraction_inside_all: float | None = Field(
        description="inside_95 / every config with an SEM (nothing excluded)"
    )
    target_fraction: float = Field(description="the acceptance level (0.8)")
    meets_target: bool | None
    regime_agreement_rate: float | None = Field(
        description="fraction of trials whose measured regime equals the theory regime"
    )
    classifier: str = Field(
        default="regimes-v2", description="the regime classifier the labels are from"
    )
    regime_labelled_trials: int = Field(
        default=0, description="trials that carry both a theory and a measured label"
    )
    regime_clear_trials: int | None = Field(
        default=None,
        description="regimes-v2: trials of converged configs whose theory (ℓ, PD) is farther "
        "than the seeds' 95% half-widths from every threshold",
    )
    regime_clear_agreement_rate: float | None = Field(
        default=None, description="regimes-v2: measured label = theory label among those"
    )
    regime_clear_boundary: int | None = Field(
        default=None, description="regimes-v2: clear trials labelled boundary"
    )
    regime_clear_wrong: int | None = Field(
        default=None, description="regimes-v2: clear trials labelled another regime"
    )
    regime_boundary_trials: int | None = Field(
        default=None, description="regimes-v2: every trial labelled boundary"
    )
    regime_unconverged_trials: int | None = Field(
        default=None, description="regimes-v2: labelled trials of not_converged configs"
    )
    counts: dict[str, int] = Field(description="configs per verdict")
    floor: float = Field(description="the stopping-rule floor on E_gen")
    per_regime: list[RegimeAgreement]
    worst: list[ConfigAgreement] = Field(description="compared configs, largest |z| first")
    rows: list[ConfigAgreement]
    notes: list[str] = Field(default_factory=list)
