"""Finite-D teacher tasks and datasets for the diagonal-network simulator (THEORY.md §1).

A :class:`~workers.config.TaskStats` describes the four-group mixture of coordinates
(shared, new, PT-only, inactive).  :func:`make_dataset` draws one finite instance of it:
exact group sizes ``task.group_sizes(D)``, a random assignment of coordinates to groups,
the two teachers, Gaussian inputs ``x ~ N(0, I/D)`` and noiseless test labels.

Randomness: one ``numpy.random.SeedSequence(seed)`` is split into independent streams
for the teachers, the FT training set, the test set and the PT set, so the FT data of a
seed do not change when ``n_test`` or ``with_pt_data`` change.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from workers.config import TaskStats, require_finite, validate_alpha

GROUP_NAMES = ("shared", "new", "pt_only", "inactive")
GROUP_SHARED, GROUP_NEW, GROUP_PT_ONLY, GROUP_INACTIVE = range(4)


@dataclass(frozen=True, eq=False)
class Dataset:
    """One drawn instance of a task (all arrays float64, rows are samples).

    ``group[i]`` is the index into :data:`GROUP_NAMES` of coordinate ``i``.  ``y_ft``
    carries label noise ``sigma0``; ``y_test`` and ``y_pt`` are noiseless, so the test MSE
    estimates ``||beta_hat - beta_ft_star||^2 / D``.  ``X_pt``/``y_pt`` are ``None``
    unless PT data were requested.
    """

    X_ft: np.ndarray
    y_ft: np.ndarray
    beta_pt_star: np.ndarray
    beta_ft_star: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    group: np.ndarray
    X_pt: np.ndarray | None = None
    y_pt: np.ndarray | None = None

    @property
    def D(self) -> int:
        return int(self.beta_ft_star.shape[0])

    @property
    def n_ft(self) -> int:
        return int(self.X_ft.shape[0])


def sample_count(alpha: float, D: int, name: str = "alpha") -> int:
    """Number of samples ``n = max(1, round(alpha * D))`` for a sample ratio ``alpha``."""
    return max(1, round(validate_alpha(alpha, name) * D))


def _validate_dimension(D: int) -> int:
    if isinstance(D, bool) or not isinstance(D, int | np.integer):
        raise ValueError(f"D must be an integer, got {D!r}")
    if D < 1:
        raise ValueError(f"D must be >= 1, got {D}")
    return int(D)


def _gaussian_inputs(rng: np.random.Generator, n: int, D: int) -> np.ndarray:
    """Rows ``x ~ N(0, I/D)`` so that ``||x|| ~ 1`` (THEORY.md notation)."""
    return rng.standard_normal((n, D)) / math.sqrt(D)


def draw_teachers(
    task: TaskStats, D: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw ``(beta_pt_star, beta_ft_star, group)`` with exact group sizes (THEORY.md §1).

    Group sizes are ``task.group_sizes(D)``; coordinates are assigned to groups by a
    random permutation; within a group ``beta_pt = group.beta_pt`` and
    ``beta_ft ~ N(group.ft_mean, group.ft_std^2)``.  With ``task.teacher_norm ==
    "exact"`` each group's standard-normal draws are rescaled to an empirical second
    moment of exactly 1 (see :class:`~workers.config.TaskStats`).
    """
    sizes = task.group_sizes(D)
    group = np.repeat(np.arange(len(sizes)), sizes)
    group = group[rng.permutation(D)]
    beta_pt = np.zeros(D)
    beta_ft = np.zeros(D)
    for index, spec in enumerate(task.groups()):
        members = np.flatnonzero(group == index)
        beta_pt[members] = spec.beta_pt
        # Draw even when ft_std == 0 so that the stream does not depend on the norm.
        noise = rng.standard_normal(members.size)
        if task.teacher_norm == "exact" and members.size:
            noise /= np.sqrt(np.mean(noise**2))
        beta_ft[members] = spec.ft_mean + spec.ft_std * noise
    return beta_pt, beta_ft, group


def make_dataset(
    task: TaskStats,
    *,
    D: int,
    alpha: float,
    seed: int,
    n_test: int = 1000,
    alpha_pt: float = 1.0,
    with_pt_data: bool = False,
) -> Dataset:
    """Draw a finite instance of ``task`` (THEORY.md §1 "Tasks", §3 notation).

    ``n_ft = max(1, round(alpha*D))`` training rows ``x ~ N(0, I/D)`` with labels
    ``y = x . beta_ft_star + sigma0 * xi``; ``n_test`` noiseless test rows; with
    ``with_pt_data``, ``n_pt = max(1, round(alpha_pt*D))`` noiseless PT rows
    ``y = x . beta_pt_star``.  Deterministic in ``seed``.
    """
    D = _validate_dimension(D)
    n_ft = sample_count(alpha, D, "alpha")
    if isinstance(n_test, bool) or not isinstance(n_test, int | np.integer) or n_test < 1:
        raise ValueError(f"n_test must be an integer >= 1, got {n_test!r}")
    n_pt = sample_count(alpha_pt, D, "alpha_pt")
    seed_value = int(require_finite("seed", seed))
    if seed_value != seed or seed_value < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")

    teacher_ss, ft_ss, test_ss, pt_ss = np.random.SeedSequence(seed_value).spawn(4)
    beta_pt, beta_ft, group = draw_teachers(task, D, np.random.default_rng(teacher_ss))

    ft_rng = np.random.default_rng(ft_ss)
    X_ft = _gaussian_inputs(ft_rng, n_ft, D)
    y_ft = X_ft @ beta_ft
    if task.sigma0 > 0.0:
        y_ft = y_ft + task.sigma0 * ft_rng.standard_normal(n_ft)

    test_rng = np.random.default_rng(test_ss)
    X_test = _gaussian_inputs(test_rng, int(n_test), D)
    y_test = X_test @ beta_ft

    X_pt = y_pt = None
    if with_pt_data:
        X_pt = _gaussian_inputs(np.random.default_rng(pt_ss), n_pt, D)
        y_pt = X_pt @ beta_pt

    return Dataset(
        X_ft=X_ft,
        y_ft=y_ft,
        beta_pt_star=beta_pt,
        beta_ft_star=beta_ft,
        X_test=X_test,
        y_test=y_test,
        group=group,
        X_pt=X_pt,
        y_pt=y_pt,
    )
