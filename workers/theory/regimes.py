"""The four fine-tuning regimes: l-order, pretraining dependence, labels (THEORY.md §4).

Per coordinate, with u = 2|beta_FT|/sqrt_k and h(u) = 1 - sqrt(1+u^2) + u arcsinh(u):

    l   = d ln q_k(beta_FT) / d ln|beta_FT| = u arcsinh(u) / h(u)          in [1, 2]
    PD  = d ln q_k(beta_FT) / d ln|beta_PT| = (1/2)(1 - l) eta,
    eta = 4 (1 + lambda_PT) beta_PT^2 / (sqrt(c_PT^2 + beta_PT^2) sqrt_k)   (PD in [-1, 0])

The label is a deterministic, versioned function of (l, PD).  Two versions exist; every
stored result names the one that labelled it (``classifier_version``) and the report can
apply either to the stored (l, PD) (``classify(l, pd, version)``).

``regimes-v2`` (the default): thresholds derived from the corners of THEORY.md §4.

1. The feasible set is the triangle with the corners I (1, 0), III (2, 0), II (2, -1).
   Since sqrt_k >= 2 (1+lambda)(c + sqrt(c^2 + beta_PT^2)) (THEORY.md §2, gamma^2 >= 0),
   eta = 4(1+lambda) beta_PT^2 / (sqrt(c^2+beta_PT^2) sqrt_k) <= 2 beta_PT^2 /
   (sqrt(c^2+beta_PT^2)(c + sqrt(c^2+beta_PT^2))) < 2, so 1 - l <= PD <= 0: the edge
   I-III is PD = 0 and the edge I-II is PD = 1 - l (l + PD = 1).
2. The table of §4 is a 2 x 2 table: {rich, lazy} x {PT-independent, PT-dependent}
   gives I, IV (rich) and III, II (lazy).  Richness is l, whose corners are l = 1 (I) and
   l = 2 (II, III).  PT dependence at a given l runs from PD = 0 (edge I-III) to
   PD = 1 - l (edge I-II), so its normalized value is the reuse share
       p = PD / (1 - l) = eta / 2  in [0, 1],
   which is 0 at corner III and 1 at corner II.  (For c << beta_PT, p is the share of
   sqrt_k that pretraining sets: 2(1+lambda)|beta_PT| / sqrt_k, the rest being gamma^2.)
   In (l, p) the triangle is the square [1, 2] x [0, 1] and corner IV of the table
   ("l in (1, 2), PD in (-1, 0)", rich and PT-dependent) is its corner (1, 1), which
   the (l, PD) picture squeezes onto corner I.
3. Each threshold is the midpoint between the corner values of its axis:
       rich  <=>  l <= L_CUT = (1 + 2)/2 = 3/2
       PT-dependent  <=>  p > P_CUT = (0 + 1)/2 = 1/2   (in (l, PD): PD < (1 - l)/2)
   so I: l <= 3/2, p <= 1/2;  IV: l <= 3/2, p > 1/2;  II: l > 3/2, p > 1/2;
   III: l > 3/2, p <= 1/2.  No setting of any experiment entered this choice (the tests
   name the configurations used to check it and the ones held apart).
4. At l = 1 exactly (u -> inf) PD = 0 for every eta and p is 0/0: p is taken as 0 there
   (the l1 limit, where the potential does not depend on k).
5. The theory's p lies in [0, 1] (step 1).  A measured one can leave it: the empirical
   representative coordinate (:func:`empirical_regime`) averages |beta_PT| and ln sqrt_k
   with the same weights but not through the same formula, so over a mix of shared and
   new coordinates its eta can exceed 2.  p is clipped to [0, 1], the share's range; a
   clipped value is on the same side of P_CUT as the unclipped one, so no label moves.

With seeds, :func:`seed_interval` gives the label an uncertainty: the normal 95%
interval of the seed mean of l and of p (mean +- 1.96 SEM, ddof 1).  When that box
straddles a threshold the label is ``BOUNDARY``; :func:`clear_of_thresholds` says when a
(theory) point lies farther than those half-widths from every threshold.

``regimes-v1`` (kept readable): THEORY.md's starting thresholds for I (l < 1.25,
PD > -0.1) and III (l > 1.75, PD > -0.1), and for II l > 1.6, PD < -0.5 instead of
1.75 / -0.6, moved so that the regime figure's II setting (c = 1e-3, lambda = 0,
gamma = 0: (l, PD) = (1.70, -0.70)) is labelled II; IV otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import ndtr

from workers.config import CoordinateGroup, InitParams, TaskStats
from workers.theory.potential import sqrt_k_finetune

CLASSIFIER_V1 = "regimes-v1"
CLASSIFIER_V2 = "regimes-v2"
CLASSIFIER_VERSIONS = (CLASSIFIER_V1, CLASSIFIER_V2)
# What new results are labelled with, and what the report applies unless told otherwise.
CLASSIFIER_VERSION = CLASSIFIER_V2
# A v2 label whose seed interval straddles a threshold (module docstring).
BOUNDARY = "boundary"
REGIMES = ("I", "II", "III", "IV")

# regimes-v2: midpoints between the corners' values (module docstring, steps 2-3).
L_CUT = 1.5
P_CUT = 0.5
# Below this l - 1 the reuse share p = PD / (1 - l) is 0/0 and taken as 0 (step 4).
P_L_EPS = 1e-12
# Normal 95% interval of a seed mean.
Z_95 = 1.96

# regimes-v1: Regime I (rich, PT-independent): l < I_L_MAX and PD > I_PD_MIN.
I_L_MAX = 1.25
I_PD_MIN = -0.1
# Regime II (lazy, PT-dependent): l > II_L_MIN and PD < II_PD_MAX (see module docstring).
II_L_MIN = 1.6
II_PD_MAX = -0.5
# Regime III (lazy, PT-independent): l > III_L_MIN and PD > III_PD_MIN.
III_L_MIN = 1.75
III_PD_MIN = -0.1
# empirical_regime: coordinates with |beta_FT| below this fraction of the max are unused.
SUPPORT_REL_THRESHOLD = 1e-3


@dataclass(frozen=True)
class RegimePoint:
    """A regime label with the continuous diagnostics it was derived from."""

    label: str
    l_order: float
    pd: float


@dataclass(frozen=True)
class ReuseStats:
    """Measured feature reuse of a fine-tuned solution (THEORY.md §4, empirical label).

    ``reuse``: fraction of the FT support inside the PT support; ``sparsity``: fraction
    of coordinates in the FT support; supports use |beta| > threshold * max|beta|.
    """

    reuse: float
    sparsity: float
    ft_support: int
    pt_support: int


def l_order(beta_ft: ArrayLike, sqrt_k: ArrayLike) -> np.ndarray:
    """l = u arcsinh(u) / h(u), u = 2|beta_FT|/sqrt_k (THEORY.md §4); 2 at u = 0, -> 1 as u -> inf.

    Evaluated as r / (r - 1/(1 + sqrt(1+u^2))) with r = arcsinh(u)/u, which has no 0/0
    at u = 0 and no overflow for huge u.
    """
    with np.errstate(over="ignore"):
        u = 2.0 * np.abs(np.asarray(beta_ft, dtype=float)) / np.asarray(sqrt_k, dtype=float)
    finite = np.where(np.isfinite(u), u, 1.0)
    safe = np.where(finite > 0.0, finite, 1.0)
    r = np.where(finite > 0.0, np.arcsinh(safe) / safe, 1.0)
    ell = r / (r - 1.0 / (1.0 + np.hypot(1.0, finite)))
    return np.where(np.isfinite(u), ell, 1.0)


def pretraining_dependence(
    beta_pt: ArrayLike,
    c_pt: float,
    lambda_pt: float,
    sqrt_k: ArrayLike,
    l_order: ArrayLike,
) -> np.ndarray:
    """PD = (1/2)(1 - l) * 4 (1+lambda_PT) beta_PT^2 / (sqrt(c_PT^2 + beta_PT^2) sqrt_k) (§4)."""
    beta_pt = np.asarray(beta_pt, dtype=float)
    eta = 4.0 * (1.0 + lambda_pt) * beta_pt**2 / (np.hypot(c_pt, beta_pt) * np.asarray(sqrt_k))
    return 0.5 * (1.0 - np.asarray(l_order, dtype=float)) * eta


def classify_v1(l_order: float, pd: float) -> str:
    """``regimes-v1``: I if l < 1.25 and PD > -0.1; II if l > 1.6 and PD < -0.5; III if
    l > 1.75 and PD > -0.1; IV otherwise (module docstring)."""
    if l_order < I_L_MAX and pd > I_PD_MIN:
        return "I"
    if l_order > II_L_MIN and pd < II_PD_MAX:
        return "II"
    if l_order > III_L_MIN and pd > III_PD_MIN:
        return "III"
    return "IV"


def reuse_share(l_order: float, pd: float) -> float:
    """p = PD / (1 - l) = eta / 2, clipped to [0, 1] (module docstring, steps 2 and 5);
    0 when l - 1 is below ``P_L_EPS`` (step 4)."""
    rich = float(l_order) - 1.0
    if rich <= P_L_EPS:
        return 0.0
    return min(1.0, max(0.0, -float(pd) / rich)) + 0.0


def classify_share(l_order: float, share: float) -> str:
    """``regimes-v2`` from (l, p): rich iff l <= 3/2, PT-dependent iff p > 1/2."""
    lazy = l_order > L_CUT
    dependent = share > P_CUT
    if lazy:
        return "II" if dependent else "III"
    return "IV" if dependent else "I"


def classify_v2(l_order: float, pd: float) -> str:
    """``regimes-v2`` from (l, PD): :func:`classify_share` of (l, p = PD / (1 - l))."""
    return classify_share(l_order, reuse_share(l_order, pd))


_CLASSIFIERS = {CLASSIFIER_V1: classify_v1, CLASSIFIER_V2: classify_v2}


def check_version(version: str) -> str:
    """``version`` itself; ValueError unless it is one of ``CLASSIFIER_VERSIONS``."""
    if version not in _CLASSIFIERS:
        raise ValueError(f"unknown regime classifier {version!r}; known: {CLASSIFIER_VERSIONS}")
    return version


def classify(l_order: float, pd: float, version: str = CLASSIFIER_VERSION) -> str:
    """Regime label from (l, PD) under classifier ``version`` (the module docstring)."""
    return _CLASSIFIERS[check_version(version)](l_order, pd)


def _cut_candidates(low: float, high: float, cuts: tuple[float, ...]) -> set[float]:
    out = {low, high}
    for cut in cuts:
        if low <= cut <= high:
            step = 1e-9 * max(1.0, abs(cut))
            out |= {v for v in (cut - step, cut, cut + step) if low <= v <= high}
    return out


def labels_in_box(
    l_range: tuple[float, float], second_range: tuple[float, float], version: str
) -> set[str]:
    """Every label ``version`` gives somewhere in a closed box of its own coordinates:
    (l, PD) for v1, (l, p) for v2 (p = :func:`reuse_share`)."""
    check_version(version)
    (l_lo, l_hi), (y_lo, y_hi) = sorted(l_range), sorted(second_range)
    if version == CLASSIFIER_V2:
        ells, ys, label = (L_CUT,), (P_CUT,), classify_share
    else:
        ells = (I_L_MAX, II_L_MIN, III_L_MIN)
        ys = (II_PD_MAX, I_PD_MIN)
        label = classify_v1
    return {
        label(ell, y)
        for ell in _cut_candidates(l_lo, l_hi, ells)
        for y in _cut_candidates(y_lo, y_hi, ys)
    }


def possible_labels(
    l_orders: list[float], pds: list[float], version: str = CLASSIFIER_VERSION
) -> set[str]:
    """Labels ``version`` gives in the box spanned by the points (l_i, PD_i), in the
    classifier's own coordinates (:func:`labels_in_box`)."""
    if not l_orders or not pds:
        return set()
    second = list(pds)
    if version == CLASSIFIER_V2:
        second = [reuse_share(ell, pd) for ell, pd in zip(l_orders, pds, strict=True)]
    return labels_in_box((min(l_orders), max(l_orders)), (min(second), max(second)), version)


@dataclass(frozen=True)
class SeedInterval:
    """A ``regimes-v2`` label with its uncertainty over the seeds of one config.

    ``l_order``, ``pd``, ``share`` are seed means of l, PD and p; the half-widths are
    ``z`` SEM (ddof 1) of l and of p (NaN for fewer than two seeds).  ``label`` is the
    label of the mean, or ``BOUNDARY`` when the box mean +- half-width holds more than
    one label (it straddles a threshold).  With fewer than two seeds the label is the
    mean's, and no point is ever clear of it (:func:`clear_of_thresholds`).
    """

    label: str
    n: int
    l_order: float
    pd: float
    share: float
    l_half_width: float
    share_half_width: float


def _mean_and_half_width(values: list[float], z: float) -> tuple[float, float]:
    n = len(values)
    mean = math.fsum(values) / n
    if n < 2:
        return mean, math.nan
    variance = math.fsum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, z * math.sqrt(variance / n)


def seed_interval(l_orders: list[float], pds: list[float], *, z: float = Z_95) -> SeedInterval:
    """The v2 label of one config from its seeds' (l, PD) (see :class:`SeedInterval`)."""
    if len(l_orders) != len(pds) or not l_orders:
        raise ValueError("need one (l, PD) per seed, at least one seed")
    shares = [reuse_share(ell, pd) for ell, pd in zip(l_orders, pds, strict=True)]
    l_mean, l_hw = _mean_and_half_width([float(v) for v in l_orders], z)
    p_mean, p_hw = _mean_and_half_width(shares, z)
    pd_mean = math.fsum(float(v) for v in pds) / len(pds)
    label = classify_share(l_mean, p_mean)
    if math.isfinite(l_hw) and math.isfinite(p_hw):
        found = labels_in_box(
            (l_mean - l_hw, l_mean + l_hw), (p_mean - p_hw, p_mean + p_hw), CLASSIFIER_V2
        )
        if len(found) > 1:
            label = BOUNDARY
    return SeedInterval(label, len(l_orders), l_mean, pd_mean + 0.0, p_mean, l_hw, p_hw)


def clear_of_thresholds(
    l_order: float, pd: float, l_half_width: float, share_half_width: float
) -> bool:
    """Whether (l, PD) lies farther than the half-widths from every v2 threshold:
    |l - 3/2| > l_half_width and |p - 1/2| > share_half_width (False for NaN widths)."""
    share = reuse_share(l_order, pd)
    return bool(abs(l_order - L_CUT) > l_half_width and abs(share - P_CUT) > share_half_width)


def _mean_abs_normal(mean: float, std: float) -> float:
    """E|N(m, s^2)| = s sqrt(2/pi) exp(-m^2/2s^2) + m (1 - 2 Phi(-m/s))."""
    if std == 0.0:
        return abs(mean)
    return std * math.sqrt(2.0 / math.pi) * math.exp(-0.5 * (mean / std) ** 2) + mean * (
        1.0 - 2.0 * float(ndtr(-mean / std))
    )


def _abs_third_moment_normal(mean: float, std: float) -> float:
    """E|X|^3 for X ~ N(m, s^2): (m^3 + 3 m s^2)(1 - 2 Phi(-m/s))
    + sqrt(2/pi) s (m^2 + 2 s^2) exp(-m^2/2s^2)."""
    if std == 0.0:
        return abs(mean) ** 3
    ratio = mean / std
    return (mean**3 + 3.0 * mean * std**2) * (1.0 - 2.0 * float(ndtr(-ratio))) + math.sqrt(
        2.0 / math.pi
    ) * std * (mean**2 + 2.0 * std**2) * math.exp(-0.5 * ratio**2)


def energy_magnitude_factor(law: CoordinateGroup) -> float:
    """``c = E|b| E[b^2] / E|b|^3`` for the group's FT law ``b ~ N(ft_mean, ft_std^2)``:
    then ``c * E|b|^3 / E[b^2] = E|b|`` (:func:`empirical_regime`).  1/2 for a centred
    Gaussian (``E|b|^3 = 2 sqrt(2/pi) s^3``), 1 for a constant."""
    second = law.ft_mean**2 + law.ft_std**2
    third = _abs_third_moment_normal(law.ft_mean, law.ft_std)
    if third <= 0.0:
        raise ValueError(f"the {law.name} group has no FT signal to represent")
    return _mean_abs_normal(law.ft_mean, law.ft_std) * second / third


def representative_law(task: TaskStats) -> CoordinateGroup:
    """The coordinate group of :func:`representative_group`, with its FT law."""
    name = representative_group(task)
    return next(grp for grp in task.groups() if grp.name == name)


def representative_group(task: TaskStats) -> str:
    """The task group whose coordinate represents it (THEORY.md §4): ``"shared"`` when
    some FT feature is a PT feature, else ``"new"``."""
    shared = next(grp for grp in task.groups() if grp.name == "shared")
    return "shared" if shared.probability > 0.0 else "new"


def theory_regime(
    task: TaskStats, init: InitParams, version: str = CLASSIFIER_VERSION
) -> RegimePoint:
    """(l, PD) and label at the representative shared coordinate (THEORY.md §4).

    beta_PT = a_pt, beta_FT = E|beta*_FT| under the shared group's FT law (the new
    group's when no FT feature is shared), sqrt_k = sqrt_k_FT(a_pt) (§2).
    """
    groups = {grp.name: grp for grp in task.groups()}
    law = groups[representative_group(task)]
    beta_ft = _mean_abs_normal(law.ft_mean, law.ft_std)
    sqrt_k = float(
        sqrt_k_finetune(
            task.a_pt, init.c_pt, init.lambda_pt, init.gamma_ft, init.readout_convention
        )
    )
    ell = float(l_order(beta_ft, sqrt_k))
    pd = float(pretraining_dependence(task.a_pt, init.c_pt, init.lambda_pt, sqrt_k, ell))
    return RegimePoint(classify(ell, pd, version), ell, pd + 0.0)  # + 0.0: no "-0.0" in output


def _support(beta: np.ndarray, threshold: float) -> np.ndarray:
    top = float(np.max(np.abs(beta))) if beta.size else 0.0
    return np.abs(beta) > threshold * top if top > 0.0 else np.zeros(beta.shape, dtype=bool)


def empirical_regime(
    *,
    beta_ft: np.ndarray,
    beta_pt: np.ndarray,
    sqrt_k: np.ndarray,
    init: InitParams,
    version: str = CLASSIFIER_VERSION,
    group: str | None = None,
    law: CoordinateGroup | None = None,
) -> RegimePoint:
    """(l, PD) and label from a trained network's measured quantities (THEORY.md §4).

    ``group`` (``regimes-v2`` results pass :func:`representative_group` of the task):
    each quantity is read where :func:`theory_regime` takes it from.  The theory puts
    beta_FT = E|beta*_FT| of the shared (else the new) group at a PT coordinate
    (beta_PT = a_pt, sqrt_k(a_pt)).  ``"shared"`` keeps only the used coordinates inside
    the PT support (|beta_pt| > 1e-3 max|beta_pt|) for all three; ``"new"`` takes
    beta_FT over the used coordinates outside it and beta_PT, sqrt_k as the plain mean
    of |beta_pt| and of ln sqrt_k over the PT support.  None, or an empty selection,
    keeps every used coordinate for all three (the ``regimes-v1`` results' estimator).
    Without it, with omega in (0, 1) the new coordinates' small
    sqrt_k = 4 c (1+lambda) + gamma^2 pulled the geometric mean of sqrt_k far below the
    shared group's and |beta_PT| towards 0, so the measured (l, PD) sat richer and less
    PT-dependent than the theory's (c = 1e-4, lambda = -0.18, omega = 0.5: l 1.2 measured vs 1.65).

    The formulas are evaluated at a representative coordinate built the same way as in
    :func:`theory_regime`, so the two labels are comparable: over the coordinates the FT
    solution uses (|beta_ft| > 1e-3 max|beta_ft|), beta_FT = mean |beta_ft| (the plug-in
    estimate of E|beta*_FT|), and beta_PT, sqrt_k = beta_ft^2-weighted means of |beta_pt|
    and of ln sqrt_k (the PT value and potential scale where the FT function lives).
    Averaging l_i per coordinate instead would not be comparable: l is concave-ish in
    |beta|, so a beta^2-weighted mean sits systematically richer than l at E|beta|.
    Deterministic (no sampling, no ties).

    ``law`` (``dln-finetune-3`` results pass :func:`representative_law`; it implies
    ``group = law.name``): beta_FT is
    read from the energy of the FT function instead of from a count of coordinates,
    with the same beta_ft^2 weights as beta_PT and sqrt_k: the weighted mean magnitude
    sum|beta|^3 / sum beta^2 over the selection, times :func:`energy_magnitude_factor`
    of the group's law, so that on the teacher itself (beta_ft = beta*) it estimates
    E|beta*_FT|, the theory's representative value.  The plain mean counts every
    coordinate above 1e-3 max|beta_ft| once, so the small values GD leaves on
    coordinates the FT task does not use (an l2-like spread over the PT support in the
    lazy regimes) pulled it down and the measured l towards lazy: a solution with 99%
    of its energy on the 10 teacher coordinates read as 97 coordinates of mean 0.94
    instead of 10 of mean 7 (regime figure, II knobs on the sparse subset, D = 1000).
    Here a value eps enters as eps^3 against eps.
    """
    beta_ft = np.asarray(beta_ft, dtype=float).ravel()
    beta_pt = np.broadcast_to(np.asarray(beta_pt, dtype=float), beta_ft.shape)
    sqrt_k = np.broadcast_to(np.asarray(sqrt_k, dtype=float), beta_ft.shape)
    if law is not None:
        if group not in (None, law.name):
            raise ValueError(f"group {group!r} and law {law.name!r} disagree")
        group = law.name
    used = _support(beta_ft, SUPPORT_REL_THRESHOLD)
    if not np.any(used):
        raise ValueError("beta_ft is identically zero: no coordinate to classify")
    at_pt: np.ndarray | None = None  # where beta_PT and sqrt_k are read, if not `used`
    if group is not None:
        if group not in ("shared", "new"):
            raise ValueError(f"group must be 'shared', 'new' or None, not {group!r}")
        in_pt = _support(beta_pt, SUPPORT_REL_THRESHOLD)
        selected = used & (in_pt if group == "shared" else ~in_pt)
        if np.any(selected):
            used = selected
        if group == "new" and np.any(in_pt):
            at_pt = in_pt
    energy = beta_ft[used] ** 2
    weight = energy / float(np.sum(energy))
    if law is None:
        rep_ft = float(np.mean(np.abs(beta_ft[used])))
    else:
        rep_ft = energy_magnitude_factor(law) * float(weight @ np.abs(beta_ft[used]))
    if at_pt is None:
        rep_pt = float(weight @ np.abs(beta_pt[used]))
        rep_k = float(np.exp(weight @ np.log(sqrt_k[used])))
    else:
        rep_pt = float(np.mean(np.abs(beta_pt[at_pt])))
        rep_k = float(np.exp(np.mean(np.log(sqrt_k[at_pt]))))
    ell = float(l_order(rep_ft, rep_k))
    pd = float(pretraining_dependence(rep_pt, init.c_pt, init.lambda_pt, rep_k, ell))
    return RegimePoint(classify(ell, pd, version), ell, pd + 0.0)


def measured_reuse(
    beta_ft: np.ndarray, beta_pt: np.ndarray, *, threshold: float = SUPPORT_REL_THRESHOLD
) -> ReuseStats:
    """Overlap of the FT solution's support with the PT support, and FT sparsity (§4)."""
    beta_ft = np.asarray(beta_ft, dtype=float).ravel()
    beta_pt = np.asarray(beta_pt, dtype=float).ravel()
    ft, pt = _support(beta_ft, threshold), _support(beta_pt, threshold)
    n_ft = int(np.sum(ft))
    reuse = float(np.sum(ft & pt) / n_ft) if n_ft else float("nan")
    return ReuseStats(reuse, n_ft / max(beta_ft.size, 1), n_ft, int(np.sum(pt)))
