"""The ``regimes-v2`` classifier (workers/theory/regimes.py): thresholds against the
corners of THEORY.md §4, the reuse share, the seed interval and its ``boundary`` label,
and ``regimes-v1`` kept readable.  Held-apart validation on trained networks lives in
``tests/workers/dln/test_regimes_v2_heldout.py``."""

from __future__ import annotations

import math
import typing

import numpy as np
import pytest

from api_schemas.report import DEFAULT_CLASSIFIER, ClassifierVersion
from workers.config import InitParams, TaskStats
from workers.theory import regimes
from workers.theory.potential import sqrt_k_finetune
from workers.theory.regimes import (
    BOUNDARY,
    CLASSIFIER_V1,
    CLASSIFIER_V2,
    classify,
    classify_share,
    clear_of_thresholds,
    l_order,
    labels_in_box,
    possible_labels,
    pretraining_dependence,
    reuse_share,
    seed_interval,
    theory_regime,
)

# THEORY.md §4's table: the (l, PD) corners.  IV has no corner in (l, PD) ("l in (1, 2),
# PD in (-1, 0)"); in (l, p) it is the corner (1, 1) (module docstring, step 2).
CORNERS = {"I": (1.0, 0.0), "II": (2.0, -1.0), "III": (2.0, 0.0)}
EPS = 1e-6


def test_thresholds_are_the_midpoints_of_the_corner_values() -> None:
    ell = {name: point[0] for name, point in CORNERS.items()}
    # Richness: rich corner I at l = 1, lazy corners II and III at l = 2.
    assert regimes.L_CUT == (ell["I"] + ell["II"]) / 2 == (ell["I"] + ell["III"]) / 2
    # PT dependence at l = 2: p = 0 at III, p = 1 at II.
    p = {name: reuse_share(*CORNERS[name]) for name in ("II", "III")}
    assert p == {"II": 1.0, "III": 0.0}
    assert regimes.P_CUT == (p["II"] + p["III"]) / 2


# Into the triangle from each corner: II and III towards the centroid (5/3, -1/3); I
# along a direction with p = 0.2.  (From I the centroid direction has p = 1/2 exactly:
# I and IV share the corner (1, 0) in (l, PD), only p tells them apart.)
TOWARDS = {"I": (1.5, -0.1), "II": (5 / 3, -1 / 3), "III": (5 / 3, -1 / 3)}


@pytest.mark.parametrize("name", list(CORNERS))
def test_each_corner_and_its_neighbourhood_is_its_regime(name: str) -> None:
    ell, pd = CORNERS[name]
    assert classify(ell, pd, CLASSIFIER_V2) == name
    target = TOWARDS[name]
    for t in (1e-3, 0.05, 0.2, 0.45):
        inside = (ell + t * (target[0] - ell), pd + t * (target[1] - pd))
        assert classify(*inside, CLASSIFIER_V2) == name, (t, inside)


def test_regime_iv_is_rich_and_pt_dependent() -> None:
    # Near the I-II edge (l + PD = 1, p = 1) and rich: IV; the same l on the I-III edge: I.
    for ell in (1.05, 1.2, 1.45):
        assert classify(ell, 1.0 - ell, CLASSIFIER_V2) == "IV"
        assert classify(ell, 0.0, CLASSIFIER_V2) == "I"
    assert classify_share(1.0 + EPS, 1.0 - EPS) == "IV"  # IV's corner in (l, p)
    # The threshold PD = (1 - l)/2 in (l, PD) is p = 1/2.
    for ell in (1.1, 1.3, 1.7, 1.9):
        below, above = (1 - ell) / 2 - EPS, (1 - ell) / 2 + EPS
        assert reuse_share(ell, below) > 0.5 > reuse_share(ell, above)


def test_four_quadrants_and_ties() -> None:
    assert classify_share(1.4, 0.4) == "I"
    assert classify_share(1.4, 0.6) == "IV"
    assert classify_share(1.6, 0.6) == "II"
    assert classify_share(1.6, 0.4) == "III"
    # On a threshold: rich (l <= 3/2) and PT-independent (p <= 1/2).
    assert classify_share(1.5, 0.5) == "I"


def test_reuse_share_is_eta_over_two_and_in_the_unit_interval() -> None:
    rng = np.random.default_rng(7)
    for _ in range(300):
        c, lam = 10 ** rng.uniform(-6, 1), rng.uniform(-1, 1)
        gamma = 10 ** rng.uniform(-6, 1.5)
        beta_pt, beta_ft = 10 ** rng.uniform(-3, 1), 10 ** rng.uniform(-3, 2)
        sk = float(sqrt_k_finetune(beta_pt, c, lam, gamma))
        ell = float(l_order(beta_ft, sk))
        pd = float(pretraining_dependence(beta_pt, c, lam, sk, ell))
        eta = 4 * (1 + lam) * beta_pt**2 / (math.hypot(c, beta_pt) * sk)
        assert 0.0 <= eta / 2 < 1.0
        if ell - 1.0 > 1e-6:
            assert reuse_share(ell, pd) == pytest.approx(eta / 2, rel=1e-9, abs=1e-12)
    assert reuse_share(1.0, 0.0) == 0.0  # the l1 limit (step 4)
    assert reuse_share(1.5, -0.9) == 1.0  # a measured p above 1 is clipped (step 5)


def test_seed_interval_far_from_thresholds_keeps_the_label() -> None:
    ells = [1.80, 1.82, 1.81, 1.79]
    pds = [-0.79, -0.80, -0.80, -0.78]  # p ~ 0.99
    interval = seed_interval(ells, pds)
    assert interval.label == "II" and interval.n == 4
    sem = np.std(ells, ddof=1) / 2.0
    assert interval.l_half_width == pytest.approx(1.96 * sem)
    assert interval.l_order == pytest.approx(np.mean(ells))


def test_seed_interval_straddling_a_threshold_is_boundary() -> None:
    # l straddles 3/2 (means 1.5 +- 0.02, half-width ~ 0.03).
    assert seed_interval([1.47, 1.53, 1.49, 1.51], [-0.46, -0.52, -0.48, -0.50]).label == BOUNDARY
    # The same spread, all on one side of 3/2: IV.
    assert seed_interval([1.27, 1.33, 1.29, 1.31], [-0.26, -0.32, -0.28, -0.30]).label == "IV"
    # p straddles 1/2 at l ~ 1.8 (p = 0.45 .. 0.55).
    ells = [1.8, 1.8, 1.8, 1.8]
    pds = [-0.8 * p for p in (0.45, 0.55, 0.48, 0.52)]
    assert seed_interval(ells, pds).label == BOUNDARY
    assert seed_interval(ells, [-0.8 * p for p in (0.15, 0.25, 0.18, 0.22)]).label == "III"


def test_one_seed_has_no_interval_and_is_never_clear() -> None:
    interval = seed_interval([1.9], [-0.1])
    assert interval.label == "III" and math.isnan(interval.l_half_width)
    assert not clear_of_thresholds(1.9, -0.1, interval.l_half_width, interval.share_half_width)
    with pytest.raises(ValueError):
        seed_interval([], [])


def test_clear_of_thresholds() -> None:
    # (1.8, p = 0.9): 0.3 from l = 3/2, 0.4 from p = 1/2.
    pd = -0.8 * 0.9
    assert clear_of_thresholds(1.8, pd, 0.29, 0.39)
    assert not clear_of_thresholds(1.8, pd, 0.31, 0.1)
    assert not clear_of_thresholds(1.8, pd, 0.1, 0.41)


def test_labels_in_box_both_versions() -> None:
    assert labels_in_box((1.4, 1.6), (0.4, 0.6), CLASSIFIER_V2) == {"I", "II", "III", "IV"}
    assert labels_in_box((1.6, 1.9), (0.6, 1.0), CLASSIFIER_V2) == {"II"}
    assert labels_in_box((1.4, 1.5), (0.6, 1.0), CLASSIFIER_V2) == {"IV"}  # 1.5 is rich
    # v1 in (l, PD): the box around (1.7, -0.55) crosses II's PD < -0.5 and l > 1.6 cuts.
    assert labels_in_box((1.55, 1.7), (-0.6, -0.45), CLASSIFIER_V1) == {"II", "IV"}
    # possible_labels converts PD to p for v2: the I-II edge from l = 1.2 to 1.8.
    assert possible_labels([1.2, 1.8], [-0.2, -0.8], CLASSIFIER_V2) == {"IV", "II"}


def test_v1_stays_readable_and_versions_are_checked() -> None:
    # regimes-v1's thresholds, unchanged: the figure's II setting (1.70, -0.70) is II,
    # (1.7, -0.55) is II for v1 (PD < -0.5) and II for v2 (p = 0.79).
    assert classify(1.70, -0.70, CLASSIFIER_V1) == "II"
    assert classify(1.55, -0.55, CLASSIFIER_V1) == "IV"  # l not above 1.6
    assert classify(1.55, -0.55, CLASSIFIER_V2) == "II"
    assert classify(1.2, -0.05, CLASSIFIER_V1) == "I"
    assert classify(1.8, -0.05, CLASSIFIER_V1) == "III"
    assert classify(1.8, -0.05) == classify(1.8, -0.05, CLASSIFIER_V2)  # the default
    with pytest.raises(ValueError, match="unknown regime classifier"):
        classify(1.5, -0.2, "regimes-v0")
    task = TaskStats(rho_pt=0.1, rho_ft=0.1, omega=0.5)
    init = InitParams(1e-3, 0.0, 0.0)
    v1, v2 = theory_regime(task, init, CLASSIFIER_V1), theory_regime(task, init)
    assert (v1.l_order, v1.pd) == (v2.l_order, v2.pd)


def test_wire_names_the_same_versions() -> None:
    assert typing.get_args(ClassifierVersion) == regimes.CLASSIFIER_VERSIONS
    assert DEFAULT_CLASSIFIER == regimes.CLASSIFIER_VERSION == CLASSIFIER_V2


def test_empirical_regime_at_the_representative_group() -> None:
    # 20 shared coordinates (PT and FT), 20 new ones (FT only), omega = 0.5.
    rng = np.random.default_rng(3)
    D = 100
    beta_pt = np.where(np.arange(D) < 20, 1.0, 0.0)
    beta_ft = np.zeros(D)
    beta_ft[:40] = rng.normal(0.0, 3.0, 40)
    init = InitParams(1e-4, -0.18, 0.0)
    sk = sqrt_k_finetune(beta_pt, init.c_pt, init.lambda_pt, init.gamma_ft)
    task = TaskStats(rho_pt=0.2, rho_ft=0.4, omega=0.5)
    assert regimes.representative_group(task) == "shared"
    assert regimes.representative_group(TaskStats(rho_pt=0.2, rho_ft=0.4, omega=0.0)) == "new"
    point = regimes.empirical_regime(
        beta_ft=beta_ft, beta_pt=beta_pt, sqrt_k=sk, init=init, group="shared"
    )
    shared_ell = float(l_order(np.mean(np.abs(beta_ft[:20])), sk[0]))
    assert point.l_order == pytest.approx(shared_ell, rel=1e-12)
    assert reuse_share(point.l_order, point.pd) == pytest.approx(
        reuse_share(*(lambda t: (t.l_order, t.pd))(theory_regime(task, init))), rel=1e-9
    )
    # Mixed over both groups (the v1 results' estimator) it sits far richer.
    mixed = regimes.empirical_regime(beta_ft=beta_ft, beta_pt=beta_pt, sqrt_k=sk, init=init)
    assert mixed.l_order < point.l_order - 0.2
    # "new": beta_FT from the new coordinates, beta_PT and sqrt_k from the PT support.
    new = regimes.empirical_regime(
        beta_ft=beta_ft, beta_pt=beta_pt, sqrt_k=sk, init=init, group="new"
    )
    new_ell = float(l_order(np.mean(np.abs(beta_ft[20:40])), sk[0]))
    assert new.l_order == pytest.approx(new_ell, rel=1e-12)
    assert reuse_share(new.l_order, new.pd) == pytest.approx(
        reuse_share(point.l_order, point.pd), rel=1e-9
    )
    with pytest.raises(ValueError):
        regimes.empirical_regime(
            beta_ft=beta_ft, beta_pt=beta_pt, sqrt_k=sk, init=init, group="both"
        )


@pytest.mark.parametrize(
    ("mean", "std"), [(0.0, 1.0), (0.0, math.sqrt(10.0)), (1.0, 0.0), (0.6, 2.4), (-2.0, 0.7)]
)
def test_energy_magnitude_factor_against_quadrature(mean: float, std: float) -> None:
    """c = E|b| E[b^2] / E|b|^3, the moments by adaptive quadrature (scipy.integrate):
    1/2 for a centred Gaussian, 1 for a constant."""
    from scipy import integrate

    from workers.config import CoordinateGroup

    law = CoordinateGroup("shared", 0.1, 1.0, mean, std)
    if std == 0.0:
        moments = [abs(mean) ** p for p in (1, 2, 3)]
    else:

        def density(x: float) -> float:
            return math.exp(-0.5 * ((x - mean) / std) ** 2) / (std * math.sqrt(2 * math.pi))

        span = (mean - 12 * std, mean + 12 * std)
        moments = [
            integrate.quad(lambda x, p=p: abs(x) ** p * density(x), *span, points=[0.0])[0]
            for p in (1, 2, 3)
        ]
    expected = moments[0] * moments[1] / moments[2]
    assert regimes.energy_magnitude_factor(law) == pytest.approx(expected, rel=1e-9)
    if mean == 0.0:
        assert regimes.energy_magnitude_factor(law) == pytest.approx(0.5, rel=1e-12)
    with pytest.raises(ValueError, match="no FT signal"):
        regimes.energy_magnitude_factor(CoordinateGroup("pt_only", 0.1, 1.0, 0.0, 0.0))


def _sparse_subset_solution(leak: float) -> tuple[np.ndarray, np.ndarray, TaskStats]:
    """A sparse-subset task (omega = 1, rho_FT = rho_PT / 10): a solution equal to the
    teacher (``teacher_norm: exact``) on its 40 coordinates, plus values of size ``leak``
    on the 360 PT-only ones."""
    task = TaskStats(rho_pt=0.1, rho_ft=0.01, omega=1.0)
    rng = np.random.default_rng(11)
    D = 4000
    beta_pt = np.zeros(D)
    beta_pt[:400] = 1.0
    beta_ft = np.zeros(D)
    teacher = rng.normal(0.0, 1.0, 40)
    # teacher_norm "exact", as the paper specs draw it: second moment sigma_FT^2.
    beta_ft[:40] = task.sigma_ft * teacher / np.sqrt(np.mean(teacher**2))
    beta_ft[40:400] = leak * rng.normal(0.0, 1.0, 360)
    return beta_ft, beta_pt, task


def test_empirical_magnitude_is_the_teacher_s_and_ignores_small_leakage() -> None:
    """On the teacher itself the energy estimate recovers E|beta*_FT| (the theory's
    representative value) to its sampling error; values GD leaves on PT-only coordinates
    move it by their energy share only, where the plain mean of ``dln-finetune-2`` (over
    every coordinate above 1e-3 of the max) dropped towards them."""
    init = InitParams(1e-3, 0.0, 0.0)  # the regime figure's II knobs: theory IV here
    law_task = TaskStats(rho_pt=0.1, rho_ft=0.01, omega=1.0)
    law = regimes.representative_law(law_task)
    assert law.name == "shared"
    expected = regimes._mean_abs_normal(law.ft_mean, law.ft_std)
    many = np.random.default_rng(5).normal(0.0, law.ft_std, 20000)
    ones = np.ones_like(many)
    sk = sqrt_k_finetune(ones, init.c_pt, init.lambda_pt, init.gamma_ft)
    on_teacher = regimes.empirical_regime(
        beta_ft=many, beta_pt=ones, sqrt_k=sk, init=init, group="shared", law=law
    )
    assert on_teacher.l_order == pytest.approx(float(l_order(expected, sk[0])), abs=0.005)
    theory = theory_regime(law_task, init)
    assert theory.label == "IV"
    labels = {}
    for leak in (0.0, 0.3):
        beta_ft, beta_pt, task = _sparse_subset_solution(leak)
        sk = sqrt_k_finetune(beta_pt, init.c_pt, init.lambda_pt, init.gamma_ft)
        common = dict(beta_ft=beta_ft, beta_pt=beta_pt, sqrt_k=sk, init=init, group="shared")
        labels[leak] = (
            regimes.empirical_regime(**common, law=regimes.representative_law(task)),
            regimes.empirical_regime(**common),
        )
    (clean, clean_plain), (leaky, leaky_plain) = labels[0.0], labels[0.3]
    assert clean.label == leaky.label == theory.label == clean_plain.label
    assert leaky.l_order == pytest.approx(clean.l_order, abs=0.01)
    assert leaky_plain.label == "II" and leaky_plain.l_order > clean_plain.l_order + 0.3


def test_law_names_the_group() -> None:
    beta_ft, beta_pt, task = _sparse_subset_solution(0.1)
    init = InitParams(1e-3, 0.0, 0.0)
    sk = sqrt_k_finetune(beta_pt, init.c_pt, init.lambda_pt, init.gamma_ft)
    common = dict(beta_ft=beta_ft, beta_pt=beta_pt, sqrt_k=sk, init=init)
    law = regimes.representative_law(task)
    implied = regimes.empirical_regime(**common, law=law)
    assert implied == regimes.empirical_regime(**common, law=law, group="shared")
    with pytest.raises(ValueError, match="disagree"):
        regimes.empirical_regime(**common, law=law, group="new")
