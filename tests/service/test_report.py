"""The agreement report: its arithmetic against hand-computed numbers (pure), and the
``GET /v1/sweeps/{id}/report`` endpoint on both backends."""

from __future__ import annotations

import math

import pytest

from service.report import agreement_report, config_stats, judge
from tests.service.factories import make_sweep, make_trial


def rec(alpha, sim, theory, *, seed=0, lam=0.0, regime="II", emp="II", stop="loss_threshold"):
    params = {"c_pt": 1e-3, "lambda_pt": lam, "gamma_ft": 0.0, "alpha": alpha, "D": 100}
    return {
        "params": params,
        "seed": seed,
        "gen_error_sim": sim,
        "gen_error_asymptotic": theory,
        "gen_error_theory": sim,
        "regime_theory": regime,
        "regime_empirical": emp,
        "classifier_version": "regimes-v1",
        "stop_reason": stop,
        "diverged": False,
    }


def records():
    """Five configs, each a verdict of its own (numbers worked by hand in the tests)."""
    out = []
    # A (α = 0.1): sims 1.0, 1.2, 1.4 → mean 1.2, sd 0.2, SEM 0.2/√3; theory 1.1 → z = √3/2.
    out += [rec(0.1, x, 1.1, seed=i) for i, x in enumerate((1.0, 1.2, 1.4))]
    # B (α = 0.2): sims 0.50, 0.52, 0.54 → mean 0.52, SEM 0.02/√3; theory 0.6 → z = −4√3.
    out += [
        rec(0.2, x, 0.6, seed=i, regime="IV", emp=e)
        for i, (x, e) in enumerate(zip((0.5, 0.52, 0.54), ("IV", "II", "IV"), strict=True))
    ]
    # C (α = 0.3): both below the 1e-2 floor, theory outside → stopping_rule.
    out += [rec(0.3, x, 1e-4, seed=i) for i, x in enumerate((1e-3, 1.1e-3, 1.2e-3))]
    # D (α = 0.4): one seed hit max_steps → not_converged.
    out += [
        rec(0.4, x, 0.3, seed=i, stop=s)
        for i, (x, s) in enumerate(
            zip((0.3, 0.31, 0.5), ("loss_threshold",) * 2 + ("max_steps",), strict=True)
        )
    ]
    # E (α = 0.5, λ = −0.5): one seed only → too_few_seeds.
    out += [rec(0.5, 0.2, 0.2, lam=-0.5, regime="I", emp="I")]
    return out


def test_config_stats_mean_and_sem() -> None:
    stats = {s.alpha: s for s in config_stats(records(), "regimes-v1")}
    assert stats[0.1].n == 3 and stats[0.1].mean == pytest.approx(1.2)
    assert stats[0.1].sem == pytest.approx(0.2 / math.sqrt(3))
    assert stats[0.2].sem == pytest.approx(0.02 / math.sqrt(3))
    assert stats[0.5].sem is None
    assert stats[0.4].stop_reasons == {"loss_threshold": 2, "max_steps": 1}
    assert stats[0.2].regime_empirical == "IV" and stats[0.2].regime_matches == 2


def test_z_scores_and_verdicts() -> None:
    rows = {row.alpha: row for row in (judge(s) for s in config_stats(records(), "regimes-v1"))}
    assert rows[0.1].z == pytest.approx(math.sqrt(3) / 2) and rows[0.1].inside_95
    assert rows[0.1].verdict == "agree"
    assert rows[0.2].z == pytest.approx(-4 * math.sqrt(3)) and not rows[0.2].inside_95
    assert rows[0.2].verdict == "disagree"
    assert rows[0.3].verdict == "stopping_rule"
    assert rows[0.4].verdict == "not_converged"
    assert rows[0.5].verdict == "too_few_seeds" and rows[0.5].z is None
    assert rows[0.2].regime_match_rate == pytest.approx(2 / 3)


def test_report_totals_regimes_and_worst() -> None:
    report = agreement_report(
        records(),
        sweep_id="s",
        sweep_name="hand",
        workload="dln_finetune",
        classifier_version="regimes-v1",
    )
    assert report.configs == 5
    assert report.counts == {
        "agree": 1,
        "disagree": 1,
        "not_converged": 1,
        "stopping_rule": 1,
        "too_few_seeds": 1,
    }
    assert report.compared == 2 and report.inside_95 == 1
    assert report.fraction_inside == pytest.approx(0.5) and report.meets_target is False
    # Every config with an SEM: A inside; B, C outside; D (mean 0.37, SEM 0.0651, theory
    # 0.3: |gap| 0.07 ≤ 1.96·0.0651) inside → 2 of 4.
    assert report.fraction_inside_all == pytest.approx(0.5)
    # Trials with both labels: 13, all matching except one of B's seeds.
    assert report.regime_agreement_rate == pytest.approx(12 / 13)
    by_regime = {row.regime: row for row in report.per_regime}
    assert by_regime["IV"].compared == 1 and by_regime["IV"].fraction_inside == 0.0
    assert by_regime["IV"].regime_agreement_rate == pytest.approx(2 / 3)
    assert by_regime["IV"].note and "0 of 1" in by_regime["IV"].note
    # The worst config is named by α and the parameters that vary in the report (λ: E
    # has −0.5), so two configs at one α cannot read alike.
    assert "worst alpha=0.2, lambda_pt=0: sim 0.52 " in by_regime["IV"].note
    assert by_regime["II"].fraction_inside == 1.0 and by_regime["II"].not_converged == 1
    assert by_regime["II"].stopping_rule == 1
    assert [row.alpha for row in report.worst] == [0.2, 0.1]
    assert any("stopping threshold" in note for note in report.notes)


def test_floor_is_a_parameter() -> None:
    report = agreement_report(
        records(), sweep_id="s", sweep_name="hand", workload="dln_finetune", floor=1e-4
    )
    assert report.counts["disagree"] == 2 and "stopping_rule" not in report.counts


def test_report_endpoint(app_client) -> None:
    factory = app_client.app.state.session_factory
    session = factory()
    trials = []
    for alpha, sims, theory in ((0.2, (0.5, 0.6, 0.7), 0.62), (0.4, (0.2, 0.21, 0.22), 0.3)):
        for seed, sim in enumerate(sims):
            params = {"c_pt": 0.01, "lambda_pt": 0.0, "gamma_ft": 1.0, "alpha": alpha, "D": 200}
            trials.append(
                make_trial(
                    session,
                    alpha=alpha,
                    seed=seed,
                    params=params,
                    gen_error_sim=sim,
                    gen_error_asymptotic=theory,
                    regime_theory="II",
                    regime_empirical="II" if seed else "IV",
                    classifier_version="regimes-v1",
                )
            )
    spec = {"name": "hand-made", "workload": "dln_finetune"}
    sweep = make_sweep(session, trials, name="hand-made", spec=spec)
    empty = make_sweep(session, [], name="empty", spec=spec | {"name": "empty"})
    session.commit()
    session.close()

    body = app_client.get(f"/v1/sweeps/{sweep.id}/report?classifier=regimes-v1").json()
    assert body["sweep_name"] == "hand-made" and body["configs"] == 2
    assert body["counts"] == {"agree": 1, "disagree": 1}
    assert body["fraction_inside"] == pytest.approx(0.5)
    assert body["regime_agreement_rate"] == pytest.approx(4 / 6)
    worst = body["worst"][0]
    assert worst["alpha"] == 0.4 and worst["z"] == pytest.approx(-0.09 / (0.01 / math.sqrt(3)))

    missing = app_client.get("/v1/sweeps/nope/report")
    assert missing.status_code == 404 and missing.json()["error"] == "SweepNotFound"
    none_yet = app_client.get(f"/v1/sweeps/{empty.id}/report")
    assert none_yet.status_code == 409 and "no results yet" in none_yet.json()["detail"]
    bad = app_client.get(f"/v1/sweeps/{sweep.id}/report", params={"floor": -1})
    assert bad.status_code == 422


def test_a_simulation_config_matches_its_theory_curve_across_finite_d_options() -> None:
    """Every dln_finetune parameter the replica problem leaves out (THEORY_FIELDS) is left
    out of the theory key, so a ``teacher_norm: exact`` simulation at D = 5000 draws its
    lines from a default dln_theory sweep of the same task and init."""
    from api_schemas.workloads import DLNFinetuneParams
    from service.report import NOT_CONFIG, NOT_THEORY, theory_key
    from workers.workloads import THEORY_FIELDS

    finite_only = set(DLNFinetuneParams.model_fields) - set(THEORY_FIELDS)
    assert finite_only <= set(NOT_THEORY + NOT_CONFIG), finite_only
    theory = {"rho_pt": 0.1, "rho_ft": 0.1, "omega": 0.5, "c_pt": 1e-3, "lambda_pt": 0.0}
    theory |= {"gamma_ft": 0.0, "teacher_norm": "sampled", "alpha": 0.3}
    simulated = theory | {"teacher_norm": "exact", "D": 5000, "n_test": 10000, "alpha": 0.01}
    assert theory_key(simulated) == theory_key(theory)
    assert theory_key(simulated | {"omega": 1.0}) != theory_key(theory)
