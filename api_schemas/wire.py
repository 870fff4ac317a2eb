"""Response shapes of the HTTP API, shared by the server, the CLI and clients."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from api_schemas.auth import WaitInfo
from api_schemas.refine import RefineProgress
from api_schemas.result_columns import PAGE_COLUMNS, ResultColumn
from api_schemas.spec import SweepSpec
from api_schemas.statuses import SweepStatus, TrialStatus

TRIAL_STATUSES: tuple[str, ...] = tuple(status.value for status in TrialStatus)
REGIMES: tuple[str, ...] = ("I", "II", "III", "IV")


class ReadModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class ErrorBody(BaseModel):
    """Every error response: a machine-readable name and a human sentence."""

    error: str = Field(examples=["SweepNotFound"])
    detail: Any = Field(examples=["no sweep with id 3f2a…"])


class SweepCounts(ReadModel):
    pending: int = 0
    running: int = 0
    succeeded: int = 0
    failed: int = 0
    cancelled: int = 0


# Progress phases of a trial that a worker is computing now (``SweepRead.executing``).
# Every batch first reports ``started``; nonlinear workloads then report pretrain |
# waiting_for_pretraining | finetune | done, ``dln_finetune`` preparing | pretrain |
# queued_in_batch | finetune | done (``workers.dln.progress``).
EXECUTING_PHASES = frozenset(
    {"started", "preparing", "pretrain", "waiting_for_pretraining", "finetune"}
)


class RunningTrial(BaseModel):
    """A running trial and the latest progress its worker reported: ``phase`` (every
    batch: started; nonlinear workloads: pretrain | waiting_for_pretraining | finetune |
    done; ``dln_finetune``: preparing | pretrain | queued_in_batch | finetune | done),
    ``step``, ``steps``, ``epoch``, ``loss``, ``stop_reason`` (done), ``elapsed_s``,
    ``started_at`` / ``updated_at`` as Unix times)."""

    trial_id: int
    progress: dict[str, Any] | None = None


class SkippedSettingRead(BaseModel):
    """A setting that ``on_invalid: skip`` left out of the sweep, and why."""

    params: dict[str, Any] = Field(description="the setting's parameters (fixed and varied)")
    reason: str = Field(description="why the workload refused it")
    loc: list[str | int] = Field(description="the spec field that set the value at fault")
    type: str = Field(description="the error's type, as in a 422")
    trials: int = Field(description="trials (seeds) the setting would have had")


class SweepRead(ReadModel):
    """A sweep with its derived status and progress."""

    id: str
    name: str
    workload: str
    submitter: str
    priority: int
    tags: list[str]
    status: SweepStatus
    created_at: datetime
    finished_at: datetime | None = None
    trial_count: int
    cached_count: int = Field(description="trials that already had a result at submission")
    counts: SweepCounts
    progress: float = Field(description="fraction of trials in a final state")
    throughput_per_s: float | None = Field(
        default=None, description="trials finished per second since the first one started"
    )
    eta_s: float | None = Field(
        default=None,
        description=(
            "estimated seconds to completion: remaining trials over an exponentially "
            "weighted rate of completions (time constant 300 s), counted down since the "
            "latest completion (service/scheduling/eta.py)"
        ),
    )
    executing: int | None = Field(
        default=None,
        description=(
            "running trials a worker computes now (their latest progress report is of "
            "an executing phase); GET of one sweep"
        ),
    )
    queued_in_batch: int | None = Field(
        default=None,
        description=(
            "running trials claimed but not computed now: waiting in Ray's queue, for "
            "their block inside a batch, or finished inside a batch that still runs "
            "(running = executing + queued_in_batch); GET of one sweep"
        ),
    )
    running: list[RunningTrial] = Field(
        default_factory=list,
        description="running trials with their latest progress (GET of one sweep; first 100)",
    )
    spec: SweepSpec | None = None
    priority_class: str = Field(default="interactive", description="ci | interactive | batch")
    waiting: WaitInfo | None = Field(
        default=None,
        description="why pending trials wait: fair share, queue position, quota (GET of one)",
    )
    refine: RefineProgress | None = Field(
        default=None,
        description="refine sweeps: the round, whether refinement goes on, why it stopped",
    )
    skipped: list[SkippedSettingRead] = Field(
        default_factory=list,
        description="settings left out at submit (on_invalid: skip), with why (GET of one)",
    )


class SweepPage(BaseModel):
    items: list[SweepRead]
    total: int = Field(description="sweeps matching the filters (all pages)")
    limit: int
    offset: int
    next_cursor: str | None = Field(default=None, description="pass as ?cursor= for more")


class PlanBasis(BaseModel):
    """What ``estimated_cost_s`` rests on.  ``dln_finetune``: ``seconds = c · steps · n · D``
    per trial with ``c`` fitted on this deployment's stored succeeded trials of the same
    workload and device type, and steps per sample fitted per setting
    (``service/scheduling/calibration.py``); other workloads, or no stored result:
    ``default constants``."""

    source: Literal["calibrated", "default constants"]
    calibrated_on: int = Field(description="stored results that fitted the time per step")
    seconds_per_step_dn: float | None = Field(
        default=None, description="fitted c: seconds per GD step per sample per coordinate"
    )
    trials_with_history: int = Field(
        default=0, description="new trials whose setting had stored results (their steps)"
    )
    estimated_steps: int | None = Field(default=None, description="GD steps of the new trials")


class SweepPlan(BaseModel):
    """A dry run: what submitting the spec would do."""

    workload: str
    trial_count: int
    cached_count: int
    new_count: int
    batch_count: int = Field(description="Ray tasks the new trials would be grouped into")
    estimated_cost_s: float = Field(description="single-core compute estimate for new trials")
    estimate_basis: PlanBasis | None = Field(
        default=None, description="what the estimate rests on (calibrated or defaults)"
    )
    sample_params: list[dict[str, Any]] = Field(description="the first few expanded trials")
    skipped: list[SkippedSettingRead] = Field(
        default_factory=list, description="settings left out (on_invalid: skip), with why"
    )


class TrialRead(ReadModel):
    id: int
    key: str
    workload: str
    status: TrialStatus
    params: dict[str, Any]
    seed: int | None
    attempts: int
    error: str | None = None
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None


class TrialPage(BaseModel):
    items: list[TrialRead]
    next_cursor: str | None


_WIRE_TYPES: dict[str, Any] = {
    "float": float | None,
    "int": int | None,
    "str": str | None,
    "bool": bool | None,
    "json": dict[str, Any],
    "datetime": datetime | None,
}


def _result_field(column: ResultColumn) -> tuple[Any, Any]:
    if column.kind == "json":
        return dict[str, Any], Field(default_factory=dict, description=column.description)
    return _WIRE_TYPES[column.kind], Field(default=None, description=column.description)


class _ResultIdentity(ReadModel):
    """One trial's result, beside its theory predictions and regime labels."""

    trial_id: int
    key: str
    workload: str
    status: TrialStatus
    params: dict[str, Any]
    seed: int | None


# The page's result fields come from the one column definition (result_columns).
ResultRead = create_model(
    "ResultRead",
    __base__=_ResultIdentity,
    __doc__="One trial's result, beside its theory predictions and regime labels.",
    **{column.name: _result_field(column) for column in PAGE_COLUMNS},
)


class ResultPage(BaseModel):
    items: list[ResultRead]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page")


class SummaryRow(BaseModel):
    """One group of results: mean, SEM and count over seeds, beside the theory."""

    group: dict[str, Any]
    count: int = Field(description="trials in the group")
    count_sim: int = Field(default=0, description="trials with a gen_error_sim (the n of the SEM)")
    gen_error_sim_mean: float | None
    gen_error_sim_sem: float | None = Field(description="sample std / sqrt(n); None for n < 2")
    gen_error_theory_mean: float | None = Field(description="mean finite-sample theory")
    gen_error_asymptotic: float | None = Field(description="mean replica theory of the group")
    regime_theory: str | None = Field(description="most common theory regime of the group")


class Summary(BaseModel):
    group_by: list[str]
    rows: list[SummaryRow]


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    database: str
    ray: str
    dispatcher: str
    version: str
