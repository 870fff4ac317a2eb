"""Scalar channel of the replica theory: proximal map and its Gaussian expectations.

THEORY.md §3.  The denoiser is the proximal map of g q_k,

    beta_hat(z):  x - z + (g/2) arcsinh(2x/sqrt_k) = 0,

and the fixed point needs E[(beta_hat - beta*)^2] and E[sigma^2(beta_hat)] over
z = beta* + s xi within each coordinate group (beta* ~ N(m, sd^2), constant sqrt_k).

Quadrature.  In the rich regime the prox is a near soft-threshold: Gauss-Hermite nodes in
z see a kink that moves with (s^2, g), which makes the fixed-point map jumpy at the level
of the quadrature error.  We integrate in the prox's natural variable instead,
x = (sqrt_k/2) sinh(u), where the map is explicit and analytic:

    z(u) = (sqrt_k/2) sinh(u) + (g/2) u,   dz/du = (sqrt_k/2) cosh(u) + g/2,
    sigma^2(u) = 1 / (1/g + 1/(sqrt_k cosh u)),

so E_z[f(x(z))] = int f(x(u)) N(z(u); m, v) z'(u) du is done with composite
Gauss-Legendre over the u-interval that covers z in m +- R sqrt(v).  Only the two
interval ends need a root solve.  Given z, beta* is Gaussian, so the error term is
integrated exactly in beta*: E[(x - beta*)^2 | z] = (x - E[beta*|z])^2 + Var(beta*|z).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import ndtr

# Gaussian range covered in z, in standard deviations (tail mass ~1e-19).
_Z_RANGE = 9.0


def prox_u(z: ArrayLike, g: ArrayLike, sqrt_k: ArrayLike, *, iters: int = 60) -> np.ndarray:
    """u solving (sqrt_k/2) sinh(u) + (g/2) u = z: the prox in the variable u = arcsinh(2x/sqrt_k).

    Vectorized Newton/bisection hybrid on |z| (the map is odd).  Newton runs on
    phi(u) = ln z(u) - ln|z|, which is increasing and concave on u > 0 (near-linear where
    the sinh term dominates, ~ln u where the linear term does), started from the lower
    bound arcsinh(2|z|/(sqrt_k + g)) (sinh u >= u): from the left it increases
    monotonically to the root in a handful of steps in both regimes.  The bracket
    [lower bound, min(2|z|/(g + sqrt_k), arcsinh(2|z|/sqrt_k))] guards the steps; one
    that leaves it is replaced by bisection.
    """
    z, g, sk = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in (z, g, sqrt_k)))
    a = np.abs(z)
    zero = a == 0.0
    a = np.where(zero, 1.0, a)
    lo = np.arcsinh(2.0 * a / (sk + g))
    hi = np.minimum(2.0 * a / (g + sk), np.arcsinh(2.0 * a / sk))
    hi = np.maximum(hi, lo)
    log_a = np.log(a)
    u = lo.copy()
    for _ in range(iters):
        zu = 0.5 * sk * np.sinh(u) + 0.5 * g * u
        dz = 0.5 * sk * np.cosh(u) + 0.5 * g
        phi = np.log(zu) - log_a
        lo = np.where(phi <= 0.0, u, lo)
        hi = np.where(phi > 0.0, u, hi)
        u_new = u - phi * zu / dz
        outside = (u_new < lo) | (u_new > hi)
        u_new = np.where(outside, 0.5 * (lo + hi), u_new)
        done = np.all(np.abs(u_new - u) <= 1e-15 * u_new)
        u = u_new
        if done:
            break
    return np.where(zero, 0.0, np.sign(z) * u)


def prox_u_tabulated(a: np.ndarray, g: float, sqrt_k: float, *, grid: int = 2049) -> np.ndarray:
    """:func:`prox_u` for many ``|z| = a >= 0`` sharing one scalar (g, sqrt_k): fast path.

    The inverse map z(u) = (sqrt_k/2) sinh(u) + (g/2) u is explicit, so it is tabulated on
    a uniform u-grid up to the largest root, linear interpolation gives a start within
    ~(du)^2 of the root, and Newton on z(u) - a (increasing and convex for u >= 0, so the
    iterates approach from above after one step) polishes it to rounding in a few steps.
    Used by the Monte-Carlo expectation, where ~10^5 samples share each (g, sqrt_k).
    """
    a = np.asarray(a, dtype=float)
    if a.size == 0:
        return a.copy()
    u_max = float(prox_u(float(a.max()), g, sqrt_k))
    u_grid = np.linspace(0.0, u_max, grid)
    z_grid = 0.5 * sqrt_k * np.sinh(u_grid) + 0.5 * g * u_grid
    u = np.interp(a, z_grid, u_grid)
    for _ in range(8):
        step = (0.5 * sqrt_k * np.sinh(u) + 0.5 * g * u - a) / (0.5 * sqrt_k * np.cosh(u) + 0.5 * g)
        u -= step
        if np.max(np.abs(step)) <= 1e-14 * max(u_max, 1.0):
            break
    return np.maximum(u, 0.0)


def prox(z: ArrayLike, g: ArrayLike, sqrt_k: ArrayLike) -> np.ndarray:
    """beta_hat(z; g, k): the root x of x - z + (g/2) arcsinh(2x/sqrt_k) = 0 (THEORY.md §3)."""
    return 0.5 * np.asarray(sqrt_k, dtype=float) * np.sinh(prox_u(z, g, sqrt_k))


@dataclass(frozen=True)
class Mixture:
    """Coordinate groups of the scalar channel: beta* ~ N(mean, std^2) w.p. prob, with sqrt_k."""

    prob: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    sqrt_k: np.ndarray

    @property
    def second_moment(self) -> float:
        return float(np.sum(self.prob * (self.mean**2 + self.std**2)))


@dataclass(frozen=True)
class ChannelMoments:
    """E[(beta_hat - beta*)^2], E[sigma^2(beta_hat)] and P(|beta_hat| > threshold), batched."""

    error: np.ndarray
    sigma2: np.ndarray
    active: np.ndarray


class Quadrature:
    """Composite Gauss-Legendre rule on [-1, 1]: ``panels`` panels of ``order`` nodes."""

    def __init__(self, order: int, panels: int) -> None:
        nodes, weights = np.polynomial.legendre.leggauss(order)
        edges = np.linspace(-1.0, 1.0, panels + 1)
        half = 0.5 * (edges[1:] - edges[:-1])
        mid = 0.5 * (edges[1:] + edges[:-1])
        self.nodes = (mid[:, None] + half[:, None] * nodes[None, :]).ravel()
        self.weights = (half[:, None] * weights[None, :]).ravel()


def channel_moments(
    s2: ArrayLike, g: ArrayLike, mix: Mixture, quad: Quadrature, active_threshold: float
) -> ChannelMoments:
    """Mixture expectations of the scalar channel at a batch of (s^2, g) (THEORY.md §3).

    ``s2`` and ``g`` have shape (B,); arrays inside are (B, groups, nodes), so a Newton
    step's finite differences and line-search candidates cost one call.
    """
    s2 = np.asarray(s2, dtype=float)[:, None]
    g = np.asarray(g, dtype=float)[:, None]
    mean, std, sk_g = mix.mean[None, :], mix.std[None, :], mix.sqrt_k[None, :]
    var_z = std**2 + s2
    sd_z = np.sqrt(var_z)
    ends = np.stack([mean - _Z_RANGE * sd_z, mean + _Z_RANGE * sd_z], axis=-1)
    u_ends = prox_u(ends, g[..., None], sk_g[..., None])
    u_mid = 0.5 * (u_ends[..., 1] + u_ends[..., 0])
    u_half = 0.5 * (u_ends[..., 1] - u_ends[..., 0])
    u = u_mid[..., None] + u_half[..., None] * quad.nodes
    sk = sk_g[..., None]
    gg = g[..., None]
    sinh_u, cosh_u = np.sinh(u), np.cosh(u)
    x = 0.5 * sk * sinh_u
    centered = x + 0.5 * gg * u - mean[..., None]
    dz = 0.5 * sk * cosh_u + 0.5 * gg
    sd = sd_z[..., None]
    density = np.exp(-0.5 * (centered / sd) ** 2) * dz
    w = density * quad.weights
    # x - E[beta*|z] written as -(g/2) u + (s^2/v)(z - m): no cancellation when the
    # estimate is near perfect (x ~ z ~ beta*).
    err = (-0.5 * gg * u + (s2 / var_z)[..., None] * centered) ** 2
    sig2 = 1.0 / (1.0 / gg + 1.0 / (sk * cosh_u))
    mass = np.sum(w, axis=-1)
    # Normalizing by the computed mass removes the (tiny) quadrature error of the
    # Gaussian measure itself, so constants come out exact.
    err_g = np.sum(w * err, axis=-1) / mass + std**2 * s2 / var_z
    sig_g = np.sum(w * sig2, axis=-1) / mass
    z_thr = active_threshold + 0.5 * g * np.arcsinh(2.0 * active_threshold / sk_g)
    act_g = ndtr((-z_thr - mean) / sd_z) + ndtr((mean - z_thr) / sd_z)
    return ChannelMoments(error=err_g @ mix.prob, sigma2=sig_g @ mix.prob, active=act_g @ mix.prob)


class Expectation(Protocol):
    """How the fixed-point map gets its mixture expectations at a batch of (s^2, g)."""

    def moments(self, s2: ArrayLike, g: ArrayLike, active_threshold: float) -> ChannelMoments:
        """Moments at points ``(s2[i], g[i])``; arrays of shape (B,)."""
        ...


class QuadratureExpectation:
    """Deterministic mixture expectations: :func:`channel_moments` with a fixed rule."""

    def __init__(self, mix: Mixture, quad: Quadrature) -> None:
        self.mix = mix
        self.quad = quad

    def moments(self, s2: ArrayLike, g: ArrayLike, active_threshold: float) -> ChannelMoments:
        return channel_moments(s2, g, self.mix, self.quad, active_threshold)


class MonteCarloExpectation:
    """Mixture expectations as averages over one fixed draw of (group, beta*, xi).

    This is the estimator of the original replica code (THEORY.md §3: "80,000
    Monte-Carlo samples, seed 0"), so its reference numbers are reproduced draw for draw:
    with ``rng = numpy.random.default_rng(seed)``, group labels come from
    ``rng.choice(groups, size=n, p=prob)`` (groups in the order shared, new, PT-only,
    inactive), then one ``rng.standard_normal`` per sample whose group has a Gaussian
    beta* (in index order), then the channel noise ``rng.standard_normal(n)``.  The draw
    is fixed, so the map (s^2, g) -> moments is smooth and the Newton solver applies.
    Its statistical error (~0.02 on E_gen at 80k samples) is why the quadrature is the
    default.

    ``root_solved=True`` solves every sample's prox with :func:`prox_u`, as the original
    did, instead of the tabulated fast path (same values to ~1e-10): the independent
    check in the tests and the baseline in ``benchmarks/bench_replica.py``.
    """

    def __init__(
        self, mix: Mixture, n_samples: int, seed: int, *, root_solved: bool = False
    ) -> None:
        if isinstance(n_samples, bool) or not isinstance(n_samples, int | np.integer):
            raise ValueError(f"mc_samples must be an integer, got {n_samples!r}")
        if n_samples < 100:
            raise ValueError(f"mc_samples must be >= 100, got {n_samples}")
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
            raise ValueError(f"mc_seed must be a non-negative integer, got {seed!r}")
        self.root_solved = root_solved
        rng = np.random.default_rng(seed)
        prob = mix.prob / mix.prob.sum()
        group = rng.choice(prob.size, size=n_samples, p=prob)
        beta = mix.mean[group].astype(float)
        gaussian = mix.std[group] > 0.0
        beta[gaussian] += mix.std[group][gaussian] * rng.standard_normal(int(gaussian.sum()))
        xi = rng.standard_normal(n_samples)
        # Samples split by group: sqrt_k is constant within one, as the tabulated prox needs.
        self.groups = [
            (float(mix.sqrt_k[j]), beta[group == j], xi[group == j])
            for j in range(prob.size)
            if np.any(group == j)
        ]
        self.n_samples = n_samples

    def moments(self, s2: ArrayLike, g: ArrayLike, active_threshold: float) -> ChannelMoments:
        s2 = np.atleast_1d(np.asarray(s2, dtype=float))
        g = np.atleast_1d(np.asarray(g, dtype=float))
        out = np.zeros((3, s2.size))
        for i, (s2_i, g_i) in enumerate(zip(s2, g, strict=True)):
            for sqrt_k, beta, xi in self.groups:
                z = beta + np.sqrt(s2_i) * xi
                solve = prox_u if self.root_solved else prox_u_tabulated
                x = np.sign(z) * (0.5 * sqrt_k) * np.sinh(solve(np.abs(z), g_i, sqrt_k))
                out[0, i] += np.sum((x - beta) ** 2)
                out[1, i] += np.sum(1.0 / (1.0 / g_i + 1.0 / np.hypot(sqrt_k, 2.0 * x)))
                out[2, i] += np.count_nonzero(np.abs(x) > active_threshold)
        out /= self.n_samples
        return ChannelMoments(error=out[0], sigma2=out[1], active=out[2])
