"""The agreement report under ``regimes-v2`` (service/report.py): config labels from the
seeds' interval, ``boundary``, the clear-of-thresholds rate; ``regimes-v1`` results keep
their stored labels; the ``classifier`` option of the endpoint."""

from __future__ import annotations

import pytest

from service.report import agreement_report, config_stats
from tests.service.factories import make_sweep, make_trial


def rec(
    alpha: float,
    seed: int,
    *,
    lam: float = 0.0,
    theory: tuple[float, float] = (1.8, -0.78),
    measured: tuple[float, float] = (1.8, -0.78),
    stored: tuple[str, str] = ("II", "II"),
    version: str = "regimes-v2",
    stop: str = "loss_threshold",
) -> dict:
    params = {"c_pt": 1e-3, "lambda_pt": lam, "gamma_ft": 0.0, "alpha": alpha, "D": 100}
    return {
        "params": params,
        "seed": seed,
        "gen_error_sim": 0.5 + 0.01 * seed,
        "gen_error_asymptotic": 0.5,
        "gen_error_theory": 0.5,
        "l_order_theory": theory[0],
        "pd_theory": theory[1],
        "l_order_empirical": measured[0],
        "pd_empirical": measured[1],
        "regime_theory": stored[0],
        "regime_empirical": stored[1],
        "classifier_version": version,
        "stop_reason": stop,
        "diverged": False,
    }


def spread(centre: float, width: float, n: int) -> list[float]:
    return [centre + width * (i - (n - 1) / 2) / n for i in range(n)]


def records() -> list[dict]:
    out = []
    # A (α = 0.1): theory (1.8, p = 0.975) = II, measured l around 1.8, p ~ 0.97 → II, clear.
    out += [
        rec(0.1, i, measured=(ell, -0.78 * (ell - 1) / 0.8))
        for i, ell in enumerate(spread(1.8, 0.04, 4))
    ]
    # B (α = 0.2): theory l = 1.52 (II), measured l spans 1.46..1.54 → boundary, not clear.
    out += [
        rec(0.2, i, theory=(1.52, -0.50), measured=(ell, -(ell - 1) * 0.95))
        for i, ell in enumerate(spread(1.50, 0.08, 4))
    ]
    # C (α = 0.3): theory II, measured firmly IV (l ~ 1.3): clear and wrong.
    out += [
        rec(0.3, i, measured=(ell, -(ell - 1) * 0.95))
        for i, ell in enumerate(spread(1.30, 0.02, 4))
    ]
    # D (α = 0.4): a seed hit max_steps: not converged, not in the clear rate.
    out += [rec(0.4, i, stop="max_steps" if i == 0 else "loss_threshold") for i in range(3)]
    return out


def test_v2_labels_come_from_the_seed_interval() -> None:
    stats = {s.alpha: s for s in config_stats(records())}
    assert stats[0.1].regime_empirical == "II" and stats[0.1].clear is True
    assert stats[0.1].regime_matches == 4 and stats[0.1].l_half_width == pytest.approx(
        1.96 * 0.0129099 / 2, rel=1e-4
    )
    assert stats[0.2].regime_theory == "II" and stats[0.2].regime_empirical == "boundary"
    assert stats[0.2].clear is False
    assert stats[0.3].regime_empirical == "IV" and stats[0.3].clear is True
    assert stats[0.3].regime_matches == 0


def test_v2_report_counts_clear_boundary_and_wrong() -> None:
    report = agreement_report(records(), sweep_id="s", sweep_name="v2", workload="dln_finetune")
    assert report.classifier == "regimes-v2"
    assert report.regime_labelled_trials == 15
    # Clear and converged: A (4 trials, match) and C (4 trials, wrong); D is unconverged.
    assert report.regime_clear_trials == 8
    assert report.regime_clear_agreement_rate == pytest.approx(0.5)
    assert (report.regime_clear_boundary, report.regime_clear_wrong) == (0, 4)
    assert report.regime_boundary_trials == 4
    assert report.regime_unconverged_trials == 3
    ii = {row.regime: row for row in report.per_regime}["II"]
    assert ii.clear_trials == 8 and ii.boundary_trials == 4
    rows = {row.alpha: row for row in report.rows}
    assert rows[0.2].regime_clear is False and rows[0.2].regime_l_half_width is not None


def test_v1_keeps_stored_labels_and_recomputes_the_others() -> None:
    # A stored v1 trial whose (l, PD) v1 would label differently keeps its stored label
    # under v1; under v2 the stored (l, PD) decide.
    stored_v1 = [
        rec(
            0.1,
            i,
            theory=(1.55, -0.55),
            measured=(1.55, -0.55),
            stored=("X", "Y"),
            version="regimes-v1",
        )
        for i in range(3)
    ]
    v1 = config_stats(stored_v1, "regimes-v1")[0]
    assert (v1.regime_theory, v1.regime_empirical) == ("X", "Y")
    v2 = config_stats(stored_v1, "regimes-v2")[0]
    assert (v2.regime_theory, v2.regime_empirical) == ("II", "II")
    # A v2-stored trial reported under v1: v1 applied to its (l, PD) (l = 1.55 < 1.6: IV).
    v2_stored = [rec(0.1, i, theory=(1.55, -0.55), measured=(1.55, -0.55)) for i in range(3)]
    assert config_stats(v2_stored, "regimes-v1")[0].regime_theory == "IV"
    report = agreement_report(
        stored_v1,
        sweep_id="s",
        sweep_name="v1",
        workload="dln_finetune",
        classifier_version="regimes-v1",
    )
    assert report.regime_clear_trials is None and report.regime_boundary_trials is None
    with pytest.raises(ValueError):
        config_stats(stored_v1, "regimes-v9")


def test_report_endpoint_classifier_option(app_client) -> None:
    factory = app_client.app.state.session_factory
    session = factory()
    trials = []
    for seed in range(4):
        ell = 1.55 + 0.01 * seed
        trials.append(
            make_trial(
                session,
                alpha=0.2,
                seed=seed,
                params={"c_pt": 0.01, "lambda_pt": 0.0, "gamma_ft": 0.0, "alpha": 0.2, "D": 200},
                gen_error_sim=0.5 + 0.01 * seed,
                gen_error_asymptotic=0.5,
                l_order_theory=1.56,
                pd_theory=-0.55,
                l_order_empirical=ell,
                pd_empirical=-(ell - 1) * 0.99,
                regime_theory="IV",
                regime_empirical="IV",
                classifier_version="regimes-v1",
            )
        )
    spec = {"name": "v1-stored", "workload": "dln_finetune"}
    sweep = make_sweep(session, trials, name="v1-stored", spec=spec)
    session.commit()
    session.close()

    v2 = app_client.get(f"/v1/sweeps/{sweep.id}/report").json()
    assert v2["classifier"] == "regimes-v2"
    assert v2["rows"][0]["regime_theory"] == "II" and v2["rows"][0]["regime_empirical"] == "II"
    assert v2["regime_clear_trials"] == 4 and v2["regime_clear_agreement_rate"] == 1.0
    v1 = app_client.get(f"/v1/sweeps/{sweep.id}/report?classifier=regimes-v1").json()
    assert v1["classifier"] == "regimes-v1" and v1["rows"][0]["regime_theory"] == "IV"
    assert v1["regime_clear_trials"] is None
    bad = app_client.get(f"/v1/sweeps/{sweep.id}/report?classifier=regimes-v0")
    assert bad.status_code == 422 and "classifier" in str(bad.json()["detail"])
