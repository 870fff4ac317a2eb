"""Per-workload parameter and execution schemas, and the registry that names them.

A workload is registered once here (its parameter model, its execution-option model,
whether it takes seeds); the server, the CLI and any client read the same registry.  The
science behind each workload lives in ``workers/``; this module only describes its
inputs, so it imports pydantic and the standard library and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

FEASIBILITY_TOL = 1e-12


class StrictModel(BaseModel):
    """Base for wire models: unknown fields are errors, NaN/inf are rejected."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)


class TaskStatsParams(StrictModel):
    """Task statistics of THEORY.md §1 (either omega or the paper's shared/new pair)."""

    rho_pt: float = Field(gt=0, le=1, description="PT sparsity: fraction of PT-active coords")
    rho_ft: float | None = Field(default=None, gt=0, le=1, description="FT sparsity")
    omega: float | None = Field(
        default=None, ge=0, le=1, description="fraction of FT features that are PT features"
    )
    rho_ft_shared: float | None = Field(
        default=None, ge=0, le=1, description="paper's parameterization: omega*rho_ft/rho_pt"
    )
    rho_ft_new: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="paper's parameterization: (1-omega)*rho_ft/(1-rho_pt)",
    )
    a_pt: float = Field(default=1.0, gt=0, description="PT teacher value on its support")
    ft_norm: Literal["unit_total_var", "unit_nonzero_var", "aligned", "opposite", "correlated"] = (
        "unit_total_var"
    )
    q: float = Field(default=0.0, ge=-1, le=1, description="correlation for ft_norm=correlated")
    sigma0: float = Field(default=0.0, ge=0, description="FT label-noise standard deviation")

    @model_validator(mode="after")
    def _one_parameterization_and_feasible(self) -> TaskStatsParams:
        paper = self.rho_ft_shared is not None or self.rho_ft_new is not None
        direct = self.rho_ft is not None or self.omega is not None
        if paper and direct:
            raise ValueError("give either (rho_ft, omega) or (rho_ft_shared, rho_ft_new), not both")
        if paper:
            if self.rho_ft_shared is None or self.rho_ft_new is None:
                raise ValueError("rho_ft_shared and rho_ft_new must be given together")
            return self
        if self.rho_ft is None or self.omega is None:
            raise ValueError("rho_ft and omega are required (or rho_ft_shared and rho_ft_new)")
        if self.omega * self.rho_ft > self.rho_pt + FEASIBILITY_TOL:
            raise ValueError(
                "infeasible task statistics: omega*rho_ft <= rho_pt is violated "
                f"({self.omega}*{self.rho_ft} > {self.rho_pt})"
            )
        if self.rho_pt + (1 - self.omega) * self.rho_ft > 1 + FEASIBILITY_TOL:
            raise ValueError(
                "infeasible task statistics: rho_pt + (1-omega)*rho_ft <= 1 is violated"
            )
        return self

    def resolved_rho_ft_omega(self) -> tuple[float, float]:
        """(rho_ft, omega) whichever parameterization was given (THEORY.md §1)."""
        if self.rho_ft is not None and self.omega is not None:
            return self.rho_ft, self.omega
        shared, new = self.rho_ft_shared or 0.0, self.rho_ft_new or 0.0
        rho_ft = shared * self.rho_pt + new * (1 - self.rho_pt)
        omega = min(1.0, shared * self.rho_pt / rho_ft) if rho_ft > 0 else 0.0
        return rho_ft, omega


class InitScaleParams(StrictModel):
    """Initialization knobs of THEORY.md §1."""

    c_pt: float = Field(gt=0, description="absolute PT init scale c_PT")
    lambda_pt: float = Field(ge=-1, le=1, description="relative layer scale λ_PT (first − second)")
    gamma_ft: float = Field(ge=0, description="readout re-init scale γ_FT at fine-tuning")
    readout_convention: Literal["per_path_sqrt2", "per_path"] = "per_path_sqrt2"

    @model_validator(mode="after")
    def _not_stuck_at_zero(self) -> InitScaleParams:
        if self.lambda_pt == -1 and self.gamma_ft == 0:
            raise ValueError(
                "lambda_pt = -1 with gamma_ft = 0 makes every fine-tuning weight zero, a "
                "stationary point gradient descent cannot leave; use gamma_ft > 0"
            )
        return self


class DLNTheoryParams(TaskStatsParams, InitScaleParams):
    """One `dln_theory` trial: the replica prediction at one sample ratio alpha."""

    alpha: float = Field(gt=0, description="FT sample ratio n_FT / D")


class DLNFinetuneParams(DLNTheoryParams):
    """One `dln_finetune` trial: GD on a finite instance plus its finite-sample theory."""

    D: int = Field(ge=2, description="input dimension")
    alpha_pt: float = Field(default=1.0, gt=0, description="PT sample ratio (pt_mode=trained)")
    n_test: int = Field(default=1000, ge=1, le=100_000, description="fresh test-set size")


class DLNExecution(StrictModel):
    """Execution options of the diagonal-network simulator (THEORY.md §5 defaults)."""

    device: Literal["cpu", "cuda", "auto"] = "cpu"
    dtype: Literal["float64", "float32"] = "float64"
    lr: float = Field(default=0.5, gt=0, le=100)
    max_steps: int = Field(default=20_000, ge=1)
    loss_threshold: float = Field(default=1e-4, gt=0)
    pt_mode: Literal["oracle", "trained"] = "oracle"


class TheoryExecution(StrictModel):
    """Execution options of the replica solver (THEORY.md §3)."""

    device: Literal["cpu", "auto"] = "cpu"
    gamma_ext: float = Field(default=1e-6, gt=0, le=1)


@dataclass(frozen=True)
class WorkloadSchema:
    """What the wire knows of a workload: its parameter and execution models."""

    name: str
    params_model: type[StrictModel]
    execution_model: type[StrictModel]
    uses_seeds: bool
    description: str


WORKLOAD_SCHEMAS: dict[str, WorkloadSchema] = {
    schema.name: schema
    for schema in (
        WorkloadSchema(
            "dln_finetune",
            DLNFinetuneParams,
            DLNExecution,
            uses_seeds=True,
            description="diagonal network: PT→FT gradient descent + finite-sample theory",
        ),
        WorkloadSchema(
            "dln_theory",
            DLNTheoryParams,
            TheoryExecution,
            uses_seeds=False,
            description="replica (D→∞) generalization error, one trial per alpha",
        ),
    )
}

# Numeric parameters that every workload maps to typed, indexed result columns.
TYPED_PARAMETERS = (
    "c_pt",
    "lambda_pt",
    "gamma_ft",
    "rho_pt",
    "rho_ft",
    "omega",
    "alpha",
    "a_pt",
    "sigma0",
    "D",
    "seed",
)
