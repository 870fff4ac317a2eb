"""Wire shapes of users, API keys, the audit log and a pending sweep's wait reason."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from api_schemas.json_types import A_NUMBER, JsonBool

Scope = Literal["read", "submit", "admin"]
UserKind = Literal["user", "service", "local"]
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$"


TrialLimit = Annotated[int, Field(ge=1, le=10**9), A_NUMBER]
GpuSeconds = Annotated[float, Field(gt=0, le=1e12), A_NUMBER]
Share = Annotated[float, Field(gt=0, le=1e6, description="fair-share weight"), A_NUMBER]
KeyDays = Annotated[int, Field(ge=1, le=3650), A_NUMBER]


class _Strict(BaseModel):
    # Json* field types: a quota of true or a share of "2.5" is a client bug to report,
    # not a value to coerce (found by the fuzzer's negative-data check); 183.0 is an
    # integer, as JSON Schema says.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Quotas(_Strict):
    """Per-user quota overrides; ``None`` means the service default."""

    max_queued_trials: TrialLimit | None = None
    max_running_trials: TrialLimit | None = None
    gpu_seconds_per_window: GpuSeconds | None = None


class UserCreate(_Strict):
    name: str = Field(pattern=NAME_PATTERN, description="login name; sweeps record it")
    kind: Literal["user", "service"] = Field(
        default="user", description="a person, or a service account for CI"
    )
    admin: JsonBool = False
    share: Share = 1.0
    quotas: Quotas = Field(default_factory=Quotas)


class UserUpdate(_Strict):
    admin: JsonBool | None = None
    disabled: JsonBool | None = None
    share: Share | None = None
    quotas: Quotas | None = None


class UserRead(BaseModel):
    id: str
    name: str
    kind: UserKind
    admin: bool
    disabled: bool
    share: float
    usage: float = Field(description="claimed trials, decayed at the fair-share half-life")
    quotas: Quotas
    created_at: datetime


class KeyCreate(_Strict):
    user: str | None = Field(
        default=None, pattern=NAME_PATTERN, description="whose key (admins only; default: yours)"
    )
    scopes: list[Scope] = Field(default_factory=lambda: ["read", "submit"], min_length=1)
    label: str = Field(default="", max_length=128)
    expires_in_days: KeyDays | None = Field(
        default=None, description="default: the service's key lifetime"
    )


class KeyRead(BaseModel):
    id: str
    user: str
    prefix: str = Field(description="the visible part of the key")
    label: str
    scopes: list[Scope]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


class KeyCreated(KeyRead):
    key: str = Field(description="the key itself: shown once, never again")


class Me(BaseModel):
    """Who the caller is, with its quotas, usage and fair-share standing."""

    name: str
    kind: UserKind
    admin: bool
    scopes: list[Scope]
    auth: bool = Field(description="whether the service checks keys")
    share: float
    usage: float
    quotas: Quotas
    queued_trials: int
    running_trials: int


class AuditRead(BaseModel):
    id: int
    at: datetime
    actor: str | None
    actor_kind: str | None
    client_address: str | None
    action: str
    resource: str | None
    result_code: int
    detail: dict[str, Any] | None = None


class AuditPage(BaseModel):
    items: list[AuditRead]
    next_cursor: str | None


class WaitInfo(BaseModel):
    """Why a sweep's pending trials wait (Kueue shows the same for a job)."""

    owner: str
    share: float = Field(description="the owner's configured share weight")
    share_fraction: float = Field(description="the owner's share among users with work")
    usage_fraction: float = Field(description="the owner's decayed usage among them")
    fair_share_factor: float = Field(description="2^(-usage/share); higher claims first")
    rank: int = Field(description="1 = the owner whose trials the next claim serves first")
    queued_ahead: int = Field(description="the owner's own pending trials ahead in its queue")
    running: int
    quota_blocked: str | None = Field(
        default=None, description="the quota that stops more trials from starting, if any"
    )
