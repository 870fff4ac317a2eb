"""Per-workload parameter and execution schemas, and the registry that names them.

A workload is registered once here (its parameter model, its execution-option model,
whether it takes seeds); the server, the CLI and any client read the same registry.  The
science behind each workload lives in ``workers/``; this module only describes its
inputs, so it imports pydantic and the standard library and nothing else.
"""

from __future__ import annotations

import math
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
    teacher_norm: Literal["sampled", "exact"] = Field(
        default="sampled",
        description="finite-D teacher: as drawn, or each Gaussian group rescaled to its "
        "expected second moment (variance reduction; the theory is unchanged)",
    )

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
    leg_steps: int | None = Field(
        default=None,
        ge=1,
        # Unset, it is left out of the trial's execution: trials without legs keep the
        # execution, batch key and key they had before legs existed.
        exclude_if=lambda value: value is None,
        description="run trials in legs: a batch trains a trial at most this many steps "
        "further; one still unfinished saves its state and continues in a later batch "
        "(max_steps stays the total budget). Not part of the trial key: the result equals "
        "one uninterrupted run. Unset: one batch runs a trial to its end",
    )
    lr_stability_fraction: float | None = Field(
        default=None,
        gt=0,
        le=1,
        # Unset, it is left out of the trial's execution (keys stay as they were).
        exclude_if=lambda value: value is None,
        description="set the fine-tuning step size per trial to this fraction of its "
        "instance's GD stability bound n / ((1 + sqrt(alpha))^2 max_i sqrt(k_i + 4 beta*_i^2)) "
        "instead of lr (workers/dln/step_size.py); the rich regime I needs it at the "
        "paper's size. In the trial key; the lr used is in each result's metrics",
    )
    pt_mode: Literal["oracle", "trained", "scratch"] = Field(
        default="oracle",
        description="oracle: exact post-PT weights; trained: GD pretraining; scratch: no "
        "pretraining, train on the FT task from the PT init (gamma_ft unused)",
    )


class TheoryExecution(StrictModel):
    """Execution options of the replica solver (THEORY.md §3)."""

    device: Literal["cpu", "auto"] = "cpu"
    gamma_ext: float = Field(default=1e-6, gt=0, le=1)


# -- nonlinear fine-tuning workloads (THEORY.md §5, last paragraph) ---------------------
class NetKnobParams(StrictModel):
    """The init knobs every nonlinear workload shares (same names → same typed columns).

    Earlier layers start at sqrt(c_pt (1+λ)) × their standard init and the head at
    sqrt(c_pt (1−λ)) ×, so the earlier/later scale ratio is r = sqrt((1+λ)/(1−λ)).
    """

    c_pt: float = Field(default=1.0, gt=0, le=1e4, description="absolute init scale")
    lambda_pt: float = Field(
        default=0.0,
        gt=-1,
        lt=1,
        description="relative scale λ ∈ (−1, 1): earlier/later layer ratio sqrt((1+λ)/(1−λ))",
    )
    gamma_ft: float = Field(
        default=1.0, ge=0, le=1e4, description="head re-init scale at fine-tuning (× standard)"
    )
    pt_rescale: float = Field(
        default=1.0, gt=0, le=1e4, description="multiplies the earlier layers after pretraining"
    )


class NetTrainingParams(StrictModel):
    """Optimizer knobs (parameters, not execution options, so that axes can sweep them)."""

    optimizer: Literal["sgd", "adam", "adamw"] = "sgd"
    lr: float = Field(default=0.1, gt=0, le=100, description="fine-tuning learning rate")
    steps: int = Field(default=300, ge=1, description="fine-tuning optimizer steps")
    pt_lr: float | None = Field(default=None, gt=0, le=100, description="PT lr (default: lr)")
    pt_steps: int = Field(default=500, ge=1, description="pretraining optimizer steps")
    momentum: float = Field(default=0.0, ge=0, lt=1)
    weight_decay: float = Field(default=0.0, ge=0)
    batch_size: int = Field(default=0, ge=0, description="FT minibatch size; 0 = full batch")
    pt_batch_size: int = Field(default=0, ge=0, description="PT minibatch size; 0 = full batch")
    loss_threshold: float = Field(
        default=0.0, ge=0, description="stop fine-tuning once the train loss is below this"
    )


class ReluFinetuneParams(NetKnobParams, NetTrainingParams):
    """One `relu_finetune` trial: a ReLU student on PT and FT teacher tasks."""

    D: int = Field(default=20, ge=1, le=100_000, description="input dimension")
    width: int = Field(default=50, ge=1, le=100_000, description="hidden units per layer")
    depth: int = Field(default=1, ge=1, le=16, description="hidden layers")
    k_pt: int = Field(default=4, ge=1, le=10_000, description="PT teacher units")
    k_ft: int = Field(default=2, ge=1, le=10_000, description="FT teacher units")
    ft_task: Literal["subset", "correlated", "new"] = Field(
        default="subset", description="FT teacher: a subset of PT units, correlated, or new"
    )
    q: float = Field(default=0.5, ge=-1, le=1, description="unit correlation (correlated)")
    n_pt: int = Field(default=500, ge=1, le=10_000_000, description="PT samples")
    n_ft: int = Field(default=50, ge=1, le=10_000_000, description="FT samples")
    n_test: int = Field(default=1000, ge=1, le=1_000_000, description="fresh FT test samples")
    sigma0: float = Field(default=0.0, ge=0, description="FT label-noise standard deviation")

    @model_validator(mode="after")
    def _teacher_units(self) -> ReluFinetuneParams:
        if self.ft_task != "new" and self.k_ft > self.k_pt:
            raise ValueError(
                f"ft_task={self.ft_task} reuses PT teacher units: k_ft ({self.k_ft}) must be "
                f"<= k_pt ({self.k_pt})"
            )
        return self


class TransformerModularParams(NetKnobParams, NetTrainingParams):
    """One `transformer_modular_finetune` trial (modulus p need not be prime)."""

    optimizer: Literal["sgd", "adam", "adamw"] = "adamw"
    lr: float = Field(default=0.01, gt=0, le=100)
    steps: int = Field(default=200, ge=1)
    p: int = Field(default=23, ge=2, le=1000, description="modulus")
    width: int = Field(default=32, ge=1, le=8192, description="model width")
    n_layers: int = Field(default=1, ge=1, le=4, description="transformer blocks")
    n_heads: int = Field(default=4, ge=1, le=64, description="attention heads")
    pt_op: Literal["add", "sub", "mul"] = "add"
    ft_op: Literal["add", "sub", "mul"] = "sub"
    ft_split: Literal["all", "heldout"] = Field(
        default="all", description="all pairs, or FT on pairs whose first operand PT never saw"
    )
    heldout_frac: float = Field(default=0.5, gt=0, lt=1)
    n_pt: int = Field(default=0, ge=0, description="PT pairs; 0 = every PT pair")
    n_ft: int = Field(default=100, ge=1, description="FT training pairs")
    n_test: int = Field(default=2000, ge=1, le=1_000_000, description="most FT test pairs")
    scale_embed_attn: float = Field(default=1.0, gt=0, le=1e4, description="× embeddings/attn")
    scale_mlp: float = Field(default=1.0, gt=0, le=1e4, description="× MLP init")
    scale_head: float = Field(default=1.0, gt=0, le=1e4, description="× PT head init")

    @model_validator(mode="after")
    def _architecture_and_split(self) -> TransformerModularParams:
        if self.width % self.n_heads:
            raise ValueError(f"width ({self.width}) must be divisible by n_heads ({self.n_heads})")
        if self.ft_split == "heldout":
            boundary = max(1, min(self.p - 1, math.floor(self.p * (1 - self.heldout_frac))))
            pool = (self.p - boundary) * self.p
        else:
            pool = self.p * self.p
        if self.n_ft >= pool:
            raise ValueError(
                f"n_ft ({self.n_ft}) must be smaller than the {pool} fine-tuning pairs "
                f"(p={self.p}, ft_split={self.ft_split}) so that some are left for testing"
            )
        return self


class ResnetCifarParams(NetKnobParams, NetTrainingParams):
    """One `resnet_cifar_finetune` trial: PT on 98 classes, FT on the 2 held out."""

    lr: float = Field(default=0.05, gt=0, le=100)
    steps: int = Field(default=50, ge=1)
    pt_steps: int = Field(default=200, ge=1)
    momentum: float = Field(default=0.9, ge=0, lt=1)
    pt_batch_size: int = Field(default=128, ge=0)
    width: int = Field(default=64, ge=1, le=1024, description="stem channels (ResNet-18: 64)")
    blocks_per_stage: int = Field(default=2, ge=1, le=8, description="ResNet-18: 2")
    ft_class_a: int = Field(default=98, ge=0, le=99, description="first held-out class")
    ft_class_b: int = Field(default=99, ge=0, le=99, description="second held-out class")
    n_pt: int = Field(default=0, ge=0, description="PT images; 0 = all of the 98 classes")
    n_ft: int = Field(default=100, ge=1, le=1000, description="FT images (balanced)")

    @model_validator(mode="after")
    def _distinct_classes(self) -> ResnetCifarParams:
        if self.ft_class_a == self.ft_class_b:
            raise ValueError("ft_class_a and ft_class_b must differ")
        return self


class NetExecution(StrictModel):
    """Execution options of the nonlinear workloads."""

    device: Literal["cpu", "cuda", "auto"] = "cpu"
    num_gpus: float = Field(
        default=1.0, gt=0, le=8, description="GPUs per trial on cuda (fractions share a GPU)"
    )
    amp: bool = Field(default=True, description="bf16 autocast on CUDA (CPU stays float32)")
    time_limit_s: float = Field(
        default=600.0, gt=0, le=7 * 86400, description="per-trial compute limit (flagged stop)"
    )


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
        WorkloadSchema(
            "relu_finetune",
            ReluFinetuneParams,
            NetExecution,
            uses_seeds=True,
            description="ReLU student networks on PT/FT teacher tasks (THEORY.md §5)",
        ),
        WorkloadSchema(
            "transformer_modular_finetune",
            TransformerModularParams,
            NetExecution,
            uses_seeds=True,
            description="small transformer: PT on one modular-arithmetic task, FT on another",
        ),
        WorkloadSchema(
            "resnet_cifar_finetune",
            ResnetCifarParams,
            NetExecution,
            uses_seeds=True,
            description="ResNet-18-style: PT on 98 CIFAR-100 classes, FT on the other two",
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
