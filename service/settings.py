"""Typed settings, read from the environment with the prefix ``SWEEPS_``.

Nested groups use a double underscore: ``SWEEPS_LIMITS__MAX_TRIALS=50000``.  The
defaults run embedded (SQLite file in the working directory, local Ray started
in-process, dispatcher inside the API process).
"""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache

from pydantic import BaseModel, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class LimitSettings(BaseModel):
    """Admission limits: a spec that exceeds them is rejected with 422."""

    max_trials: int = Field(default=100_000, ge=1, description="trials per sweep")
    max_dimension: int = Field(default=20_000, ge=2, description="largest D")
    max_d_times_n: int = Field(default=50_000_000, ge=1, description="largest D·n_FT")
    max_steps: int = Field(default=1_000_000, ge=1, description="largest GD step count")
    page_limit: int = Field(default=1000, ge=1, description="hard cap on a result page")
    max_body_bytes: int = Field(
        default=4 * 1024 * 1024,
        ge=1024,
        description="largest request body; larger is 413 (from Content-Length or while read)",
    )


class DispatchSettings(BaseModel):
    """How the dispatcher claims, batches and retries trials."""

    enabled: bool = Field(default=True, description="run a dispatcher inside the API process")
    batch_size: int = Field(
        default=512,
        ge=1,
        description="most trials in one Ray task (whole groups: a larger group is a batch alone)",
    )
    target_batch_seconds: float = Field(
        default=45.0,
        ge=0,
        description="estimated single-core seconds one batch should last (cost model, "
        "service/scheduling/cost_model.py); 0: size batches by batch_size alone",
    )
    claim_size: int = Field(default=4096, ge=1, description="most trials claimed per round")
    max_inflight_batches: int = Field(default=8, ge=1)
    lease_seconds: float = Field(default=120.0, gt=0, description="lease on a claimed trial")
    poll_seconds: float = Field(default=0.2, gt=0, description="idle sleep between rounds")
    max_attempts: int = Field(default=3, ge=1, description="tries before a trial fails")
    progress_poll_seconds: float = Field(
        default=1.0, gt=0, description="how often running trials' progress is stored"
    )
    hard_limit_factor: float = Field(
        default=1.5,
        ge=1,
        description="a batch running past factor × its trials' time_limit_s (+ grace) is killed",
    )
    hard_limit_grace_seconds: float = Field(
        default=60.0, ge=0, description="added to the hard time limit of a batch"
    )
    persist_max_tries: int = Field(
        default=8, ge=1, description="tries of a result write before it is dropped (leases expire)"
    )
    persist_backoff_seconds: float = Field(
        default=0.2, gt=0, description="first wait before retrying a failed result write"
    )
    persist_max_backoff_seconds: float = Field(
        default=5.0, gt=0, description="longest wait between retries of a result write"
    )
    theory_reconcile_seconds: float = Field(
        default=2.0, gt=0, description="how often replica values finished trials lack are sought"
    )


class RaySettings(BaseModel):
    """Where Ray runs: empty address = start a local Ray in-process."""

    address: str = Field(default="", description="e.g. ray://head:10001 or auto")
    num_cpus: int | None = Field(default=None, ge=1, description="local Ray only")
    namespace: str = "finetune-sweeps"
    health_timeout_seconds: float = Field(
        default=2.0, gt=0, le=60, description="how long /healthz waits for Ray to answer"
    )


class DataSettings(BaseModel):
    """Local datasets; never downloaded at run time."""

    cifar100_dir: str | None = Field(
        default=None,
        description="CIFAR-100 python-format directory (cifar-100-python or its parent)",
    )


class CheckpointSettings(BaseModel):
    """Content-addressed pretraining checkpoints shared by fine-tuning trials."""

    enabled: bool = Field(default=True, description="share pretraining across trials")
    dir: str = Field(
        default="checkpoints",
        description="directory for checkpoints; shared storage when workers span hosts",
    )


class AuthSettings(BaseModel):
    """API keys (``Authorization: Bearer <key>``).  Off only in the embedded default."""

    enabled: bool = Field(default=False, description="require an API key on every request")
    restrict_reads: bool = Field(
        default=False,
        description="only owners (and admins) read a sweep, its trials and its results",
    )
    key_days: int = Field(default=90, ge=1, le=3650, description="default lifetime of a new key")
    cache_seconds: float = Field(
        default=5.0,
        ge=0,
        le=300,
        description="how long a process trusts a checked key before asking the database again",
    )


class QuotaSettings(BaseModel):
    """Per-user defaults (admins override them per user); checked at submit and claim."""

    max_queued_trials: int = Field(
        default=500_000, ge=1, description="pending trials a user may have queued"
    )
    max_running_trials: int | None = Field(
        default=None, ge=1, description="trials of one user running at once (None: no cap)"
    )
    gpu_seconds_per_window: float | None = Field(
        default=None, gt=0, description="GPU-seconds a user may request per window (None: no cap)"
    )
    window_seconds: float = Field(
        default=86_400.0, gt=0, description="the rolling window of the GPU-seconds quota"
    )


class FairShareSettings(BaseModel):
    """Claim order across users (Slurm-style: usage decayed at a half-life vs share)."""

    enabled: bool = Field(default=True, description="order claims by fair share")
    half_life_seconds: float = Field(
        default=7 * 86_400.0, gt=0, description="half-life of a user's recorded usage"
    )
    default_share: float = Field(default=1.0, gt=0, description="share weight of a new user")
    weight_ci: float = Field(default=2.0, ge=1, le=4, description="share boost of ci sweeps")
    weight_interactive: float = Field(
        default=1.5, ge=1, le=4, description="share boost of interactive sweeps"
    )
    weight_batch: float = Field(default=1.0, ge=1, le=4, description="share boost of batch sweeps")

    def weight(self, priority_class: str) -> float:
        return {
            "ci": self.weight_ci,
            "interactive": self.weight_interactive,
            "batch": self.weight_batch,
        }.get(priority_class, 1.0)


class Environment(StrEnum):
    """Where the service runs; an unknown value (``prod``, ``Production``) refuses to start."""

    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class BenchmarkSettings(BaseModel):
    """CI benchmark runs: where suites are read and which branch is the default."""

    suites_dir: str = Field(
        default="", description="folder of suite YAML files (empty: the repo's benchmarks/suites)"
    )
    default_branch: str = Field(default="main", description="branch whose runs form the history")


class LiveSettings(BaseModel):
    """The live view: event stream, web page and metrics."""

    heartbeat_seconds: float = Field(
        default=15.0, gt=0, description="SSE comment sent on an idle event stream"
    )
    poll_seconds: float = Field(
        default=0.5, gt=0, description="how often an event stream looks for new events"
    )
    page: bool = Field(default=True, description="serve the web page at /")
    metrics: bool = Field(default=True, description="serve Prometheus metrics at /metrics")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SWEEPS_", env_nested_delimiter="__", extra="ignore"
    )

    database_url: str = Field(
        default="sqlite:///sweeps.db",
        description="SQLAlchemy URL; postgresql+psycopg://… for a shared deployment",
    )
    environment: Environment = Field(
        default=Environment.DEVELOPMENT, description="development | test | production"
    )
    default_submitter: str = Field(
        default="anonymous", description="submitter when no X-Sweeps-Submitter header is sent"
    )
    ray_address: str = Field(default="", description="shortcut for ray.address")
    limits: LimitSettings = Field(default_factory=LimitSettings)
    dispatch: DispatchSettings = Field(default_factory=DispatchSettings)
    ray: RaySettings = Field(default_factory=RaySettings)
    data: DataSettings = Field(default_factory=DataSettings)
    checkpoints: CheckpointSettings = Field(default_factory=CheckpointSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    quotas: QuotaSettings = Field(default_factory=QuotaSettings)
    fair_share: FairShareSettings = Field(default_factory=FairShareSettings)
    benchmarks: BenchmarkSettings = Field(default_factory=BenchmarkSettings)
    live: LiveSettings = Field(default_factory=LiveSettings)

    @model_validator(mode="after")
    def _shortcuts(self) -> Settings:
        if self.ray_address and not self.ray.address:
            self.ray = self.ray.model_copy(update={"address": self.ray_address})
        if self.environment is Environment.PRODUCTION and self.database_url.startswith("sqlite"):
            raise ValueError(
                "SWEEPS_ENVIRONMENT=production needs a shared database: set "
                "SWEEPS_DATABASE_URL=postgresql+psycopg://…"
            )
        if self.environment == "production" and not self.auth.enabled:
            raise ValueError(
                "SWEEPS_ENVIRONMENT=production needs authentication: set "
                "SWEEPS_AUTH__ENABLED=true (and create the first admin with "
                "`sweeps admin create-user NAME --admin`)"
            )
        return self


@lru_cache
def get_settings() -> Settings:
    return Settings()
