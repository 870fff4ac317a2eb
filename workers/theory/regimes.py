"""The four fine-tuning regimes: l-order, pretraining dependence, labels (THEORY.md §4).

Per coordinate, with u = 2|beta_FT|/sqrt_k and h(u) = 1 - sqrt(1+u^2) + u arcsinh(u):

    l   = d ln q_k(beta_FT) / d ln|beta_FT| = u arcsinh(u) / h(u)          in [1, 2]
    PD  = d ln q_k(beta_FT) / d ln|beta_PT| = (1/2)(1 - l) eta,
    eta = 4 (1 + lambda_PT) beta_PT^2 / (sqrt(c_PT^2 + beta_PT^2) sqrt_k)   (PD in [-1, 0])

The label is a deterministic, versioned function of (l, PD).  THEORY.md's starting
thresholds put regime II at l > 1.75, PD < -0.6; but at the regime figure's own II
setting (c = 1e-3, lambda = 0, gamma = 0, beta_PT = 1, E|beta_FT| ~ 2.5) the formulas give
(l, PD) = (1.70, -0.70): with gamma = 0 and c << beta_PT, eta ~ 2 and every point lies on
the line l + PD = 1 from corner I (1, 0) to corner II (2, -1), so II vs IV is a cut along
that line.  We cut at l > 1.6 and PD < -0.5 (IV's setting, lambda = -0.99, sits at
(1.19, -0.19)); I and III keep the documented thresholds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import ndtr

from workers.config import InitParams, TaskStats
from workers.theory.potential import sqrt_k_finetune

CLASSIFIER_VERSION = "regimes-v1"

# Regime I (rich, PT-independent): l < I_L_MAX and PD > I_PD_MIN.
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


def classify(l_order: float, pd: float) -> str:
    """Regime label from (l, PD) with the module's thresholds (THEORY.md §4 table)."""
    if l_order < I_L_MAX and pd > I_PD_MIN:
        return "I"
    if l_order > II_L_MIN and pd < II_PD_MAX:
        return "II"
    if l_order > III_L_MIN and pd > III_PD_MIN:
        return "III"
    return "IV"


def _mean_abs_normal(mean: float, std: float) -> float:
    """E|N(m, s^2)| = s sqrt(2/pi) exp(-m^2/2s^2) + m (1 - 2 Phi(-m/s))."""
    if std == 0.0:
        return abs(mean)
    return std * math.sqrt(2.0 / math.pi) * math.exp(-0.5 * (mean / std) ** 2) + mean * (
        1.0 - 2.0 * float(ndtr(-mean / std))
    )


def theory_regime(task: TaskStats, init: InitParams) -> RegimePoint:
    """(l, PD) and label at the representative shared coordinate (THEORY.md §4).

    beta_PT = a_pt, beta_FT = E|beta*_FT| under the shared group's FT law (the new
    group's when no FT feature is shared), sqrt_k = sqrt_k_FT(a_pt) (§2).
    """
    groups = {grp.name: grp for grp in task.groups()}
    law = groups["shared"] if groups["shared"].probability > 0.0 else groups["new"]
    beta_ft = _mean_abs_normal(law.ft_mean, law.ft_std)
    sqrt_k = float(
        sqrt_k_finetune(
            task.a_pt, init.c_pt, init.lambda_pt, init.gamma_ft, init.readout_convention
        )
    )
    ell = float(l_order(beta_ft, sqrt_k))
    pd = float(pretraining_dependence(task.a_pt, init.c_pt, init.lambda_pt, sqrt_k, ell))
    return RegimePoint(classify(ell, pd), ell, pd + 0.0)  # + 0.0: no "-0.0" in output


def _support(beta: np.ndarray, threshold: float) -> np.ndarray:
    top = float(np.max(np.abs(beta))) if beta.size else 0.0
    return np.abs(beta) > threshold * top if top > 0.0 else np.zeros(beta.shape, dtype=bool)


def empirical_regime(
    *,
    beta_ft: np.ndarray,
    beta_pt: np.ndarray,
    sqrt_k: np.ndarray,
    init: InitParams,
) -> RegimePoint:
    """(l, PD) and label from a trained network's measured quantities (THEORY.md §4).

    The formulas are evaluated at a representative coordinate built the same way as in
    :func:`theory_regime`, so the two labels are comparable: over the coordinates the FT
    solution uses (|beta_ft| > 1e-3 max|beta_ft|), beta_FT = mean |beta_ft| (the plug-in
    estimate of E|beta*_FT|), and beta_PT, sqrt_k = beta_ft^2-weighted means of |beta_pt|
    and of ln sqrt_k (the PT value and potential scale where the FT function lives).
    Averaging l_i per coordinate instead would not be comparable: l is concave-ish in
    |beta|, so a beta^2-weighted mean sits systematically richer than l at E|beta|.
    Deterministic (no sampling, no ties).
    """
    beta_ft = np.asarray(beta_ft, dtype=float).ravel()
    beta_pt = np.broadcast_to(np.asarray(beta_pt, dtype=float), beta_ft.shape)
    sqrt_k = np.broadcast_to(np.asarray(sqrt_k, dtype=float), beta_ft.shape)
    used = _support(beta_ft, SUPPORT_REL_THRESHOLD)
    if not np.any(used):
        raise ValueError("beta_ft is identically zero: no coordinate to classify")
    weight = beta_ft[used] ** 2 / float(np.sum(beta_ft[used] ** 2))
    rep_ft = float(np.mean(np.abs(beta_ft[used])))
    rep_pt = float(weight @ np.abs(beta_pt[used]))
    rep_k = float(np.exp(weight @ np.log(sqrt_k[used])))
    ell = float(l_order(rep_ft, rep_k))
    pd = float(pretraining_dependence(rep_pt, init.c_pt, init.lambda_pt, rep_k, ell))
    return RegimePoint(classify(ell, pd), ell, pd + 0.0)


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
