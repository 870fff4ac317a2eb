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

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import ndtr

# Gaussian range covered in z, in standard deviations (tail mass ~1e-19).
_Z_RANGE = 9.0
_SQRT_2PI = float(np.sqrt(2.0 * np.pi))


def prox_u(z: ArrayLike, g: ArrayLike, sqrt_k: ArrayLike, *, iters: int = 60) -> np.ndarray:
    """u with (sqrt_k/2) sinh(u) + (g/2) u = z, i.e. the prox in the variable u = arcsinh(2x/sqrt_k).

    Vectorized Newton/bisection hybrid on |z| (the map is odd): the function is increasing
    and convex on u >= 0, the root lies in [0, min(2|z|/g, arcsinh(2|z|/sqrt_k))] (each
    term alone is a lower bound of the left side), and Newton from the upper end
    decreases monotonically; a step leaving the bracket is replaced by bisection.
    """
    z, g, sk = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in (z, g, sqrt_k)))
    a = np.abs(z)
    hi = np.minimum(2.0 * a / g, np.arcsinh(2.0 * a / sk))
    lo = np.zeros_like(hi)
    u = hi.copy()
    for _ in range(iters):
        f = 0.5 * sk * np.sinh(u) + 0.5 * g * u - a
        fp = 0.5 * sk * np.cosh(u) + 0.5 * g
        hi = np.where(f > 0.0, u, hi)
        lo = np.where(f <= 0.0, u, lo)
        step = f / fp
        u_new = u - step
        outside = (u_new <= lo) | (u_new >= hi)
        u_new = np.where(outside, 0.5 * (lo + hi), u_new)
        if np.all(np.abs(u_new - u) <= 4e-16 * np.maximum(np.abs(u), 1e-300)):
            u = u_new
            break
        u = u_new
    return np.sign(z) * u


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
    """E[(beta_hat - beta*)^2], E[sigma^2(beta_hat)] and P(|beta_hat| > threshold)."""

    error: float
    sigma2: float
    active: float


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
    s2: float, g: float, mix: Mixture, quad: Quadrature, active_threshold: float
) -> ChannelMoments:
    """Mixture expectations of the scalar channel at (s^2, g) (THEORY.md §3, module docstring)."""
    sk = mix.sqrt_k[:, None]
    var_z = mix.std**2 + s2
    sd_z = np.sqrt(var_z)
    ends = np.stack([mix.mean - _Z_RANGE * sd_z, mix.mean + _Z_RANGE * sd_z], axis=1)
    u_ends = prox_u(ends, g, mix.sqrt_k[:, None])
    u_mid = 0.5 * (u_ends[:, 1] + u_ends[:, 0])
    u_half = 0.5 * (u_ends[:, 1] - u_ends[:, 0])
    u = u_mid[:, None] + u_half[:, None] * quad.nodes[None, :]
    sinh_u, cosh_u = np.sinh(u), np.cosh(u)
    x = 0.5 * sk * sinh_u
    z = x + 0.5 * g * u
    dz = 0.5 * sk * cosh_u + 0.5 * g
    std_z = ((z - mix.mean[:, None]) / sd_z[:, None]) ** 2
    density = np.exp(-0.5 * std_z) / (_SQRT_2PI * sd_z[:, None]) * dz
    w = density * (u_half[:, None] * quad.weights[None, :])
    # Posterior of beta* given z (Gaussian prior N(m, sd^2), channel noise s^2).
    # x - E[beta*|z] written as -(g/2) u + (s^2/v)(z - m): no cancellation when the
    # estimate is near perfect (x ~ z ~ beta*).
    err = (-0.5 * g * u + (s2 / var_z)[:, None] * (z - mix.mean[:, None])) ** 2
    post_var = mix.std**2 * s2 / var_z
    sig2 = 1.0 / (1.0 / g + 1.0 / (sk * cosh_u))
    mass = np.sum(w, axis=1)
    # Normalizing by the computed mass removes the (tiny) quadrature error of the
    # Gaussian measure itself, so constants come out exact.
    err_g = np.sum(w * err, axis=1) / mass + post_var
    sig_g = np.sum(w * sig2, axis=1) / mass
    z_thr = active_threshold + 0.5 * g * np.arcsinh(2.0 * active_threshold / mix.sqrt_k)
    act_g = ndtr((-z_thr - mix.mean) / sd_z) + ndtr((mix.mean - z_thr) / sd_z)
    return ChannelMoments(
        error=float(mix.prob @ err_g),
        sigma2=float(mix.prob @ sig_g),
        active=float(mix.prob @ act_g),
    )


def channel_moments_monte_carlo(
    s2: float, g: float, mix: Mixture, n_samples: int, rng: np.random.Generator
) -> tuple[float, float]:
    """Brute Monte-Carlo (E_err, E_sigma^2) with the root-solved prox: an independent check."""
    group = rng.choice(len(mix.prob), size=n_samples, p=mix.prob / mix.prob.sum())
    beta = mix.mean[group] + mix.std[group] * rng.standard_normal(n_samples)
    z = beta + np.sqrt(s2) * rng.standard_normal(n_samples)
    sk = mix.sqrt_k[group]
    x = prox(z, g, sk)
    sig2 = 1.0 / (1.0 / g + 1.0 / np.hypot(sk, 2.0 * x))
    return float(np.mean((x - beta) ** 2)), float(np.mean(sig2))
