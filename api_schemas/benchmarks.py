"""Wire shapes of CI benchmark runs: the request (git context, machine, mode, results
brought by the caller), the verdict (status, baseline, per-metric judgement), history
and thresholds.  Pydantic + stdlib only (the CLI and clients use them without the server).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from api_schemas.json_types import A_NUMBER, JsonBool, JsonFloat, JsonInt

RunStatus = Literal["running", "pass", "fail", "error", "inconclusive"]
Outcome = Literal["regression", "improvement", "unchanged", "insufficient_data", "error"]
TestName = Literal[
    "theory_z", "golden", "minimum", "maximum", "lookback_z", "percentage", "mann_whitney"
]
# Default limit per test: |z| for the z tests (Conbench's lookback default z = 5), the
# change in percent, the p-value (asv's Mann-Whitney p < 0.002), the fraction floor.
DEFAULT_THRESHOLDS: dict[str, float] = {
    "theory_z": 5.0,
    "golden": 0.0,
    "minimum": 0.8,
    "maximum": 0.0,
    "lookback_z": 5.0,
    "percentage": 10.0,
    "mann_whitney": 0.002,
}


Tolerance = Annotated[float, Field(ge=0, description="golden: allowed |gap|"), A_NUMBER]


class MetricPolicy(BaseModel):
    """How one metric is judged.  ``threshold`` None means the test's default.

    Numbers are JSON numbers (``api_schemas.json_types``): a threshold of ``"5"`` is a
    client bug, answered with a 422, not read as 5."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    test: TestName = "lookback_z"
    threshold: JsonFloat | None = None
    tolerance: Tolerance | None = None
    direction: Literal["lower_is_better", "higher_is_better"] = "lower_is_better"
    min_runs: JsonInt = Field(default=2, ge=1, description="earlier baseline runs needed")
    window: JsonInt = Field(default=100, ge=1, le=1000, description="lookback: latest runs used")
    min_samples: JsonInt = Field(default=2, ge=1, description="samples needed per side")
    aggregate: Literal["median", "best", "mean"] = Field(
        default="median", description="how repetitions become one value (best = min or max)"
    )
    min_change_pct: JsonFloat = Field(
        default=0.0, ge=0, description="a regression also needs at least this change (%)"
    )
    confirm_on_rerun: JsonBool = Field(
        default=False, description="a regression fails only when a rerun on the commit repeats it"
    )

    def limit(self) -> float:
        return DEFAULT_THRESHOLDS[self.test] if self.threshold is None else self.threshold


class GitContext(BaseModel):
    repository: str | None = Field(default=None, max_length=200)
    commit: str | None = Field(default=None, max_length=64)
    branch: str | None = Field(default=None, max_length=200)
    base_commit: str | None = Field(default=None, max_length=64)
    pr_number: JsonInt | None = None


class Machine(BaseModel):
    """The hardware a run measured on; history only compares runs of one fingerprint."""

    fingerprint: str | None = Field(default=None, max_length=64, description="default: a hash")
    info: dict[str, Any] = Field(default_factory=dict, description="cpu, gpu, os, python …")


class ConfigResult(BaseModel):
    """The caller's measured values of one suite config (seeds as samples)."""

    gen_error: list[JsonFloat] = Field(min_length=1)
    regime_empirical: list[str] | None = None


class BroughtResults(BaseModel):
    """Bring-your-own results: per config label and per performance metric."""

    configs: dict[str, ConfigResult]
    metrics: dict[str, list[JsonFloat]] = Field(
        default_factory=dict, description="performance metric → repetitions"
    )


class BenchmarkRunCreate(BaseModel):
    mode: Literal["run_here", "byo"] = "run_here"
    git: GitContext = Field(default_factory=GitContext)
    machine: Machine = Field(default_factory=Machine)
    baseline: Literal["auto", "base_commit", "default_branch", "pinned"] = "auto"
    baseline_run_id: str | None = None
    source: str | None = Field(default=None, max_length=150, description="byo: whose code")
    results: BroughtResults | None = None


class Baseline(BaseModel):
    strategy: str
    runs: list[str]
    commits: list[str | None]
    window: int
    sample_counts: dict[str, int] = Field(default_factory=dict)
    note: str | None = None


class MetricVerdict(BaseModel):
    metric: str
    kind: Literal["scientific", "performance"]
    test: str
    outcome: Outcome
    contender: dict[str, Any]
    baseline: dict[str, Any]
    change: float | None = None
    change_pct: float | None = None
    statistic: float | None = None
    limits: dict[str, float | None] = Field(default_factory=dict)
    reason: str | None = None
    source: str | None = None
    acknowledged: dict[str, Any] | None = None


class BenchmarkRunRead(BaseModel):
    id: str
    suite: str
    suite_version: int
    mode: str
    status: RunStatus
    reason: str | None = None
    git: GitContext
    machine: str
    source: str | None = None
    sweep_ids: list[str]
    created_at: datetime
    finished_at: datetime | None = None
    baseline: Baseline | None = None
    policy: dict[str, MetricPolicy] = Field(default_factory=dict)
    metrics: list[MetricVerdict] = Field(default_factory=list)
    counts: dict[str, int] = Field(default_factory=dict)


class HistoryPoint(BaseModel):
    run_id: str
    commit: str | None
    branch: str | None
    created_at: datetime
    value: float | None
    outcome: str | None
    lower: float | None = None
    upper: float | None = None


class MetricHistory(BaseModel):
    suite: str
    metric: str
    machine: str | None
    points: list[HistoryPoint]


class ThresholdWrite(BaseModel):
    suite: str = Field(max_length=128)
    metric: str = Field(max_length=300)
    policy: MetricPolicy
    note: str | None = None


class ThresholdRead(ThresholdWrite):
    id: str
    created_by: str | None
    created_at: datetime
    updated_at: datetime


class Acknowledgement(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


class SuiteConfig(BaseModel):
    label: str
    sweep: str
    params: dict[str, Any]


class SuiteRead(BaseModel):
    name: str
    version: int
    description: str
    configs: list[SuiteConfig]
    metrics: list[dict[str, Any]]
