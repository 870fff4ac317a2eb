"""Frozen, validated parameter records shared by the simulator and the theory.

Everything here is pure Python: a :class:`TaskStats` says how the coordinates of the
pretraining (PT) and fine-tuning (FT) teachers are distributed (THEORY.md §1, "Tasks"),
an :class:`InitParams` says how the diagonal network is initialized (THEORY.md §1,
"Initialization" and "Fine-tuning start").  Both validate on construction and raise
``ValueError`` naming the offending parameter, so every entry point (CLI, API, Ray
worker) rejects bad input the same way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

FT_NORMS = ("unit_total_var", "unit_nonzero_var", "aligned", "opposite", "correlated")
READOUT_CONVENTIONS = ("per_path_sqrt2", "per_path")
TEACHER_NORMS = ("sampled", "exact")
# Tolerance for the feasibility inequalities: specs written with decimal fractions
# (0.1 + 0.9) must not fail on the last bit of a float.
_FEASIBILITY_TOL = 1e-12


def require_finite(name: str, value: float) -> float:
    """Return ``float(value)`` or raise ``ValueError`` naming ``name`` if it is NaN/inf."""
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a number, got {value!r}") from exc
    if not math.isfinite(number):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return number


def _require_range(name: str, value: float, low: float, high: float) -> float:
    number = require_finite(name, value)
    if not low <= number <= high:
        raise ValueError(f"{name} must lie in [{low}, {high}], got {number}")
    return number


@dataclass(frozen=True)
class CoordinateGroup:
    """One of the four coordinate groups of THEORY.md §1 ("Tasks").

    A coordinate of this group has ``beta_pt`` (a constant) in the PT teacher and
    ``beta_ft ~ N(ft_mean, ft_std**2)`` in the FT teacher (``ft_std == 0`` means the
    constant ``ft_mean``).  ``probability`` is the fraction of the D coordinates.
    """

    name: str
    probability: float
    beta_pt: float
    ft_mean: float
    ft_std: float

    @property
    def ft_second_moment(self) -> float:
        return self.ft_mean**2 + self.ft_std**2


@dataclass(frozen=True)
class TaskStats:
    """Task statistics: sparsities, overlap and the FT normalization (THEORY.md §1).

    ``rho_pt``: fraction of coordinates active in the PT teacher; ``rho_ft``: in the FT
    teacher; ``omega``: fraction of FT features that are PT features.  Feasibility:
    ``omega*rho_ft <= rho_pt`` and ``rho_pt + (1-omega)*rho_ft <= 1``.

    ``ft_norm`` chooses the law of the FT non-zeros (``sigma_ft = 1/sqrt(rho_ft)``):

    - ``unit_total_var`` (default): every FT non-zero ~ N(0, 1/rho_ft), so E[beta_ft^2] = 1;
    - ``unit_nonzero_var``: every FT non-zero ~ N(0, 1);
    - ``aligned`` / ``opposite``: on shared coordinates beta_ft = +a_pt / -a_pt, new
      coordinates ~ N(0, 1/rho_ft);
    - ``correlated``: on shared coordinates beta_ft = q*sigma_ft*sign(a_pt) +
      sqrt(1-q^2)*sigma_ft*xi, so the shared parts of the two teachers have cosine
      similarity ``q`` in expectation and the same scale as the default.

    ``sigma0`` is the standard deviation of label noise on FT labels.

    ``teacher_norm`` matters only for finite-D simulation: ``sampled`` (default) draws
    the FT non-zeros as above; ``exact`` rescales each Gaussian group's draws so their
    empirical second moment equals its expectation.  Like the exact support sizes, this
    removes a fluctuation that vanishes as D → ∞ (so the theory is unchanged) but at
    D ~ 1000 shifts every config that shares a seed's teacher together.
    """

    rho_pt: float
    rho_ft: float
    omega: float
    a_pt: float = 1.0
    ft_norm: str = "unit_total_var"
    q: float = 0.0
    sigma0: float = 0.0
    teacher_norm: str = "sampled"

    def __post_init__(self) -> None:
        rho_pt = require_finite("rho_pt", self.rho_pt)
        rho_ft = require_finite("rho_ft", self.rho_ft)
        if not 0.0 < rho_pt <= 1.0:
            raise ValueError(f"rho_pt must lie in (0, 1], got {rho_pt}")
        if not 0.0 < rho_ft <= 1.0:
            raise ValueError(f"rho_ft must lie in (0, 1], got {rho_ft}")
        omega = _require_range("omega", self.omega, 0.0, 1.0)
        a_pt = require_finite("a_pt", self.a_pt)
        if a_pt <= 0.0:
            raise ValueError(f"a_pt must be > 0, got {a_pt}")
        if self.ft_norm not in FT_NORMS:
            raise ValueError(f"ft_norm must be one of {', '.join(FT_NORMS)}, got {self.ft_norm!r}")
        _require_range("q", self.q, -1.0, 1.0)
        if self.teacher_norm not in TEACHER_NORMS:
            raise ValueError(
                f"teacher_norm must be one of {', '.join(TEACHER_NORMS)}, got {self.teacher_norm!r}"
            )
        sigma0 = require_finite("sigma0", self.sigma0)
        if sigma0 < 0.0:
            raise ValueError(f"sigma0 must be >= 0, got {sigma0}")
        if omega * rho_ft > rho_pt + _FEASIBILITY_TOL:
            raise ValueError(
                "infeasible task statistics: omega*rho_ft <= rho_pt is violated "
                f"({omega}*{rho_ft} = {omega * rho_ft:.6g} > rho_pt = {rho_pt})"
            )
        if rho_pt + (1.0 - omega) * rho_ft > 1.0 + _FEASIBILITY_TOL:
            raise ValueError(
                "infeasible task statistics: rho_pt + (1-omega)*rho_ft <= 1 is violated "
                f"({rho_pt} + {1.0 - omega:.6g}*{rho_ft} = "
                f"{rho_pt + (1.0 - omega) * rho_ft:.6g} > 1)"
            )

    @classmethod
    def from_paper_parameterization(
        cls, rho_pt: float, rho_ft_shared: float, rho_ft_new: float, **kwargs: float | str
    ) -> TaskStats:
        """Build from the paper's alternative parameters (THEORY.md §1).

        ``rho_ft_shared = omega*rho_ft/rho_pt`` (fraction of PT features reused) and
        ``rho_ft_new = (1-omega)*rho_ft/(1-rho_pt)`` (fraction of non-PT coordinates that
        become FT features).  Inverting: ``rho_ft = rho_ft_shared*rho_pt +
        rho_ft_new*(1-rho_pt)`` and ``omega = rho_ft_shared*rho_pt/rho_ft``.
        """
        shared = _require_range("rho_ft_shared", rho_ft_shared, 0.0, 1.0)
        new = _require_range("rho_ft_new", rho_ft_new, 0.0, 1.0)
        rho_pt_f = require_finite("rho_pt", rho_pt)
        rho_ft = shared * rho_pt_f + new * (1.0 - rho_pt_f)
        if rho_ft <= 0.0:
            raise ValueError("rho_ft_shared and rho_ft_new cannot both be 0 (empty FT teacher)")
        omega = min(1.0, shared * rho_pt_f / rho_ft)
        return cls(rho_pt=rho_pt_f, rho_ft=rho_ft, omega=omega, **kwargs)  # type: ignore[arg-type]

    @property
    def sigma_ft(self) -> float:
        """Scale of the FT non-zeros under the chosen normalization."""
        return 1.0 if self.ft_norm == "unit_nonzero_var" else 1.0 / math.sqrt(self.rho_ft)

    def groups(self) -> tuple[CoordinateGroup, ...]:
        """The four-group mixture of THEORY.md §1 (shared, new, PT-only, inactive).

        Probabilities are clipped at 0 (a boundary case such as omega*rho_ft == rho_pt
        gives an empty PT-only group) and sum to 1.
        """
        sigma = self.sigma_ft
        if self.ft_norm == "aligned":
            shared_mean, shared_std = self.a_pt, 0.0
        elif self.ft_norm == "opposite":
            shared_mean, shared_std = -self.a_pt, 0.0
        elif self.ft_norm == "correlated":
            shared_mean, shared_std = self.q * sigma, math.sqrt(1.0 - self.q**2) * sigma
        else:
            shared_mean, shared_std = 0.0, sigma
        p_shared = self.omega * self.rho_ft
        p_new = (1.0 - self.omega) * self.rho_ft
        p_pt_only = max(0.0, self.rho_pt - p_shared)
        p_inactive = max(0.0, 1.0 - p_shared - p_new - p_pt_only)
        return (
            CoordinateGroup("shared", p_shared, self.a_pt, shared_mean, shared_std),
            CoordinateGroup("new", p_new, 0.0, 0.0, sigma),
            CoordinateGroup("pt_only", p_pt_only, self.a_pt, 0.0, 0.0),
            CoordinateGroup("inactive", p_inactive, 0.0, 0.0, 0.0),
        )

    def group_sizes(self, D: int) -> tuple[int, int, int, int]:
        """Exact support sizes for a finite dimension D (THEORY.md §1: round(rho*D)).

        The shared and new sizes are ``round(p*D)``; the PT-only size is
        ``round(rho_pt*D) - shared`` so that the PT support has exactly
        ``round(rho_pt*D)`` coordinates; the inactive group takes the rest.
        """
        if D < 1:
            raise ValueError(f"D must be >= 1, got {D}")
        shared = round(self.omega * self.rho_ft * D)
        new = round((1.0 - self.omega) * self.rho_ft * D)
        pt_total = max(round(self.rho_pt * D), shared)
        pt_only = pt_total - shared
        inactive = D - shared - new - pt_only
        if inactive < 0:
            # Rounding pushed the supports past D; take the excess from the new group.
            new += inactive
            inactive = 0
        return shared, new, pt_only, inactive


@dataclass(frozen=True)
class InitParams:
    """Initialization knobs (THEORY.md §1).

    ``c_pt > 0``: absolute PT scale; ``lambda_pt`` in [-1, 1]: normalized relative scale
    (first minus second layer; -1 means w(0) = 0); ``gamma_ft >= 0``: readout re-init
    scale at fine-tuning; ``readout_convention``: ``per_path_sqrt2`` re-initializes each
    readout to gamma_ft/sqrt(2) (default), ``per_path`` to gamma_ft (doubling the gamma
    term of the FT potential).

    ``lambda_pt == -1`` with ``gamma_ft == 0`` is rejected: every fine-tuning weight is
    then zero, a stationary point gradient descent cannot leave.
    """

    c_pt: float
    lambda_pt: float
    gamma_ft: float
    readout_convention: str = "per_path_sqrt2"

    def __post_init__(self) -> None:
        c_pt = require_finite("c_pt", self.c_pt)
        if c_pt <= 0.0:
            raise ValueError(f"c_pt must be > 0, got {c_pt}")
        lam = require_finite("lambda_pt", self.lambda_pt)
        if not -1.0 <= lam <= 1.0:
            raise ValueError(f"lambda_pt must lie in [-1, 1], got {lam}")
        gamma = require_finite("gamma_ft", self.gamma_ft)
        if gamma < 0.0:
            raise ValueError(f"gamma_ft must be >= 0, got {gamma}")
        if self.readout_convention not in READOUT_CONVENTIONS:
            raise ValueError(
                f"readout_convention must be one of {', '.join(READOUT_CONVENTIONS)}, "
                f"got {self.readout_convention!r}"
            )
        if lam == -1.0 and gamma == 0.0:
            raise ValueError(
                "lambda_pt = -1 with gamma_ft = 0 makes every fine-tuning weight zero, a "
                "stationary point gradient descent cannot leave; use gamma_ft > 0 "
                "(e.g. 1e-6) or lambda_pt > -1"
            )

    @property
    def readout_scale(self) -> float:
        """Per-pathway readout value at the FT start: gamma/sqrt(2) or gamma."""
        if self.readout_convention == "per_path_sqrt2":
            return self.gamma_ft / math.sqrt(2.0)
        return self.gamma_ft


def validate_alpha(alpha: float, name: str = "alpha") -> float:
    """Sample ratio n/D: finite and > 0."""
    value = require_finite(name, alpha)
    if value <= 0.0:
        raise ValueError(f"{name} must be > 0, got {value}")
    return value
