"""Generalization error of fine-tuning in the high-dimensional limit (THEORY.md §3).

D -> inf with n_FT = alpha D.  The replica fixed point in (s^2, g) (see
:mod:`workers.theory._fixed_point`) is solved on an alpha grid over the four-group mixture
of THEORY.md §1, each group with its own fine-tuning potential scale sqrt_k_FT(beta_PT)
(THEORY.md §2), and E_gen(alpha) = E[(beta_hat - beta*)^2] is reported.

Reliability (THEORY.md §3, "A trap").  Every alpha is solved three ways: from a cold
start at the zero-estimator level s^2 = b (sigma0^2 + E[beta*^2]), g = 1, and by
continuation along the sorted grid forward and backward.  The cold start is the primary
answer (it cannot inherit a spurious perfect-recovery point from a neighbour); the
others are compared with it.  A point is ``reliable`` when the primary converged, is
stable (reduced multiplier |m| < 1, the linear response to a perturbation of s^2), and
no converged branch disagrees beyond ``1e-3`` relative; otherwise ``gen_error_alt``
carries the most different branch's value and ``branch_mismatch`` the gap, instead of
one being silently picked.

When none of the three converged to a stable point (the cold start can fail at small
alpha in the lazy regime: alpha = 0.01 with gamma_FT = 1 or c_PT = 1), the point is
solved once more by continuation along a geometric path from ``_RESCUE_ANCHOR`` to it,
and that solution is used if it converged and is stable.  So a point's value does not
depend on which other alphas were asked for with it: a batch of the service asks only
for the alphas of its own trials, often one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from workers.config import InitParams, TaskStats, require_finite, validate_alpha
from workers.theory._fixed_point import Channel, FixedPoint, solve_fixed_point
from workers.theory._prox import (
    Expectation,
    Mixture,
    MonteCarloExpectation,
    Quadrature,
    QuadratureExpectation,
)
from workers.theory.potential import sqrt_k_finetune

# Composite Gauss-Legendre panels over the u-interval (nodes per panel = quadrature_order);
# 16 x 12 matches 40 x 20 to ~1e-5 relative in the richest settings (sqrt_k = 1e-12).
_PANELS = 16
# A coordinate counts as active when |beta_hat| exceeds this fraction of the rms of beta*.
_ACTIVE_FRACTION_OF_RMS = 1e-3
_BRANCH_RTOL = 1e-3
# gamma_ext homotopy for cold starts that fail to converge directly.
_HOMOTOPY_START = 1e-2
_HOMOTOPY_FACTOR = 1e-2
# Continuation path for a point where no branch converged: from this alpha, in steps.
_RESCUE_ANCHOR = 0.5
_RESCUE_STEPS = 8
EXPECTATIONS = ("quadrature", "monte_carlo")
# The original code's Monte-Carlo estimator (THEORY.md §3).
DEFAULT_MC_SAMPLES = 80_000
DEFAULT_MC_SEED = 0


@dataclass(frozen=True)
class ReplicaCurve:
    """E_gen(alpha) and diagnostics, in the caller's alpha order (THEORY.md §3).

    ``reliable[i]`` is False when the primary (cold-start) solution did not converge, is
    unstable, or another branch converged elsewhere; then ``gen_error_alt[i]`` is that
    branch's value (NaN when branches agree) and ``branch_mismatch[i]`` the largest gap.
    """

    alpha: np.ndarray
    gen_error: np.ndarray
    active_fraction: np.ndarray
    s2: np.ndarray
    g: np.ndarray
    reliable: np.ndarray
    branch_mismatch: np.ndarray
    gen_error_alt: np.ndarray

    def point(self, i: int) -> dict[str, Any]:
        """Point i as plain Python scalars (NaN becomes None, so it serializes to JSON)."""

        def scalar(value: Any) -> Any:
            if isinstance(value, np.bool_ | bool):
                return bool(value)
            number = float(value)
            return None if np.isnan(number) else number

        return {
            name: scalar(getattr(self, name)[i])
            for name in (
                "alpha",
                "gen_error",
                "active_fraction",
                "s2",
                "g",
                "reliable",
                "branch_mismatch",
                "gen_error_alt",
            )
        }


def task_mixture(task: TaskStats, init: InitParams) -> Mixture:
    """The four-group mixture of (beta*_FT, sqrt_k_FT) for the scalar channel (THEORY.md §1-3)."""
    groups = [grp for grp in task.groups() if grp.probability > 0.0]
    sqrt_k = sqrt_k_finetune(
        np.array([grp.beta_pt for grp in groups]),
        init.c_pt,
        init.lambda_pt,
        init.gamma_ft,
        init.readout_convention,
    )
    return Mixture(
        prob=np.array([grp.probability for grp in groups]),
        mean=np.array([grp.ft_mean for grp in groups]),
        std=np.array([grp.ft_std for grp in groups]),
        sqrt_k=np.asarray(sqrt_k, dtype=float),
    )


def _validated_alphas(alphas: ArrayLike | float) -> np.ndarray:
    try:
        values = np.atleast_1d(np.asarray(alphas, dtype=float)).ravel()
    except (TypeError, ValueError) as exc:
        raise ValueError(f"alpha must be a number or a list of numbers, got {alphas!r}") from exc
    if values.size == 0:
        raise ValueError("alpha must contain at least one value")
    for value in values:
        validate_alpha(value)
    return values


def _cold_solve(alpha: float, ch: Channel, second_moment: float, **kw: Any) -> FixedPoint:
    start = (max((ch.sigma0**2 + second_moment) / alpha, 1e-300), 1.0)
    fp = solve_fixed_point(alpha, ch, start, **kw)
    if fp.converged or ch.gamma_ext >= _HOMOTOPY_START:
        return fp
    # Homotopy in gamma_ext: a larger explicit regularizer smooths the map; walk it down.
    gamma = _HOMOTOPY_START
    while True:
        fp = solve_fixed_point(alpha, replace(ch, gamma_ext=gamma), start, **kw)
        start = (fp.s2, fp.g)
        if gamma <= ch.gamma_ext:
            return fp
        gamma = max(gamma * _HOMOTOPY_FACTOR, ch.gamma_ext)


def _continued_from_anchor(
    alpha: float, ch: Channel, second_moment: float, **kw: Any
) -> FixedPoint:
    """The fixed point at ``alpha`` reached by continuation from a cold start at
    ``_RESCUE_ANCHOR`` along ``_RESCUE_STEPS`` geometrically spaced alphas."""
    path = np.geomspace(_RESCUE_ANCHOR, alpha, _RESCUE_STEPS)
    fp = _cold_solve(float(path[0]), ch, second_moment, **kw)
    for value in path[1:]:
        fp = solve_fixed_point(float(value), ch, (fp.s2, fp.g), **kw)
    return fp


def _disagree(a: float, b: float, scale: float) -> bool:
    return abs(a - b) > _BRANCH_RTOL * max(abs(a), abs(b)) + 1e-9 * scale


def select_branch(
    branches: list[FixedPoint], scale: float
) -> tuple[FixedPoint, bool, float, float]:
    """Primary solution, reliability, mismatch and alternative value at one alpha.

    ``branches`` = [cold start, forward, backward].  The primary is the first converged
    and stable one (cold first); every other converged branch is compared with it, and
    the most different one beyond 1e-3 relative is returned as the alternative (NaN when
    none differs).
    """
    good = [fp for fp in branches if fp.converged and fp.stable]
    primary = good[0] if good else branches[0]
    others = [fp for fp in branches if fp.converged and fp is not primary]
    mismatch = max((abs(fp.error - primary.error) for fp in others), default=0.0)
    differing = [fp for fp in others if _disagree(fp.error, primary.error, scale)]
    alt = (
        max(differing, key=lambda fp: abs(fp.error - primary.error)).error if differing else np.nan
    )
    reliable = primary.converged and primary.stable and not differing
    return primary, reliable, mismatch, alt


def solve_curve(
    mix: Mixture,
    alphas: ArrayLike | float,
    *,
    sigma0: float = 0.0,
    gamma_ext: float = 1e-6,
    quadrature_order: int = 12,
    tol: float = 1e-10,
    max_iter: int = 900,
    damping: float = 0.25,
    expectation: str = "quadrature",
    mc_samples: int = DEFAULT_MC_SAMPLES,
    mc_seed: int = DEFAULT_MC_SEED,
) -> ReplicaCurve:
    """Replica curve for an arbitrary mixture (THEORY.md §3); the public entry points wrap it.

    ``max_iter`` bounds map evaluations per solve; ``damping`` is the old-iterate weight
    of the damped fallback step.  ``expectation`` chooses how the mixture expectations
    are computed: ``"quadrature"`` (deterministic, default) or ``"monte_carlo"`` (the
    original code's estimator over ``mc_samples`` draws from ``default_rng(mc_seed)``,
    for reproducing its numbers; see :class:`MonteCarloExpectation`).
    """
    values = _validated_alphas(alphas)
    require_finite("sigma0", sigma0)
    if require_finite("gamma_ext", gamma_ext) < 0.0:
        raise ValueError(f"gamma_ext must be >= 0, got {gamma_ext}")
    if not 0.0 <= damping < 1.0:
        raise ValueError(f"damping must lie in [0, 1), got {damping}")
    if quadrature_order < 2:
        raise ValueError(f"quadrature_order must be >= 2, got {quadrature_order}")
    if expectation == "quadrature":
        moments: Expectation = QuadratureExpectation(mix, Quadrature(quadrature_order, _PANELS))
    elif expectation == "monte_carlo":
        moments = MonteCarloExpectation(mix, mc_samples, mc_seed)
    else:
        choices = ", ".join(EXPECTATIONS)
        raise ValueError(f"expectation must be one of {choices}, got {expectation!r}")
    second_moment = mix.second_moment
    ch = Channel(
        expectation=moments,
        sigma0=float(sigma0),
        gamma_ext=float(gamma_ext),
        active_threshold=_ACTIVE_FRACTION_OF_RMS * float(np.sqrt(max(second_moment, 1e-300))),
    )
    kw = {"tol": tol, "max_iter": max_iter, "damping": damping}
    order = np.argsort(values, kind="stable")
    grid = values[order]
    n = grid.size
    cold = [_cold_solve(float(a), ch, second_moment, **kw) for a in grid]
    forward: list[FixedPoint] = [cold[0]]
    for i in range(1, n):
        prev = forward[-1]
        forward.append(solve_fixed_point(float(grid[i]), ch, (prev.s2, prev.g), **kw))
    backward: list[FixedPoint] = [cold[-1]]
    for i in range(n - 2, -1, -1):
        prev = backward[-1]
        backward.append(solve_fixed_point(float(grid[i]), ch, (prev.s2, prev.g), **kw))
    backward.reverse()

    out = {
        name: np.full(n, np.nan)
        for name in ("gen_error", "active_fraction", "s2", "g", "mismatch", "alt")
    }
    reliable = np.zeros(n, dtype=bool)
    for i in range(n):
        branches = [cold[i], forward[i], backward[i]]
        if not any(fp.converged and fp.stable for fp in branches):
            rescued = _continued_from_anchor(float(grid[i]), ch, second_moment, **kw)
            if rescued.converged and rescued.stable:
                branches = [rescued, *branches]
        primary, reliable[i], mismatch, out["alt"][i] = select_branch(branches, second_moment)
        out["gen_error"][i] = primary.error
        out["active_fraction"][i] = primary.active
        out["s2"][i] = primary.s2
        out["g"][i] = primary.g
        out["mismatch"][i] = mismatch

    inverse = np.empty(n, dtype=int)
    inverse[order] = np.arange(n)
    return ReplicaCurve(
        alpha=values.copy(),
        gen_error=out["gen_error"][inverse],
        active_fraction=out["active_fraction"][inverse],
        s2=out["s2"][inverse],
        g=out["g"][inverse],
        reliable=reliable[inverse],
        branch_mismatch=out["mismatch"][inverse],
        gen_error_alt=out["alt"][inverse],
    )


def generalization_curve(
    task: TaskStats, init: InitParams, alphas: ArrayLike | float, **options: Any
) -> ReplicaCurve:
    """Fine-tuning E_gen(alpha) = E[(beta_hat - beta*_FT)^2] from the replica fixed point.

    THEORY.md §3: s^2 = b (sigma0^2 + E[(beta_hat - beta*)^2]), g = gamma_ext +
    b E[sigma^2(beta_hat)], b = 1/alpha, expectations over the four groups of
    ``task.groups()`` with per-group sqrt_k_FT = 2 c(1+lambda)(1+sqrt(1+(beta_PT/c)^2))
    + gamma^2 (§2).  Alphas may come in any order (output follows the input order) and
    must be > 0.  See the module docstring for the branch/reliability policy.
    ``options`` are :func:`solve_curve`'s solver keywords (``gamma_ext``, ``tol``,
    ``expectation``, ``mc_samples``, ...); sigma0 comes from ``task``.
    """
    return solve_curve(task_mixture(task, init), alphas, sigma0=task.sigma0, **options)


def single_task_curve(
    rho: float,
    c: float,
    alphas: ArrayLike | float,
    *,
    sigma0: float = 0.0,
    **kw: Any,
) -> ReplicaCurve:
    """Training from scratch (THEORY.md §3, single-task baseline).

    Bernoulli-Gaussian teacher: beta* = 0 w.p. 1 - rho, N(0, 1/rho) w.p. rho, and a
    constant sqrt_k = 2c on every coordinate (PT's potential, which does not depend on
    lambda, THEORY.md §2 -- hence no lambda argument).  ``kw`` as for
    :func:`solve_curve`.
    """
    rho = require_finite("rho", rho)
    if not 0.0 < rho <= 1.0:
        raise ValueError(f"rho must lie in (0, 1], got {rho}")
    if require_finite("c", c) <= 0.0:
        raise ValueError(f"c must be > 0, got {c}")
    probs = np.array([rho, 1.0 - rho]) if rho < 1.0 else np.array([1.0])
    mix = Mixture(
        prob=probs,
        mean=np.zeros(probs.size),
        std=np.array([1.0 / np.sqrt(rho), 0.0])[: probs.size],
        sqrt_k=np.full(probs.size, 2.0 * c),
    )
    return solve_curve(mix, alphas, sigma0=sigma0, **kw)


def as_alpha_list(alpha: float | Iterable[float]) -> list[float]:
    """Normalize a scalar-or-list alpha (CLI/API input) to a validated list."""
    return [float(a) for a in _validated_alphas(np.asarray(alpha, dtype=float))]
