"""Every endpoint the client calls, as a frozen ``Call``: method, path, query, body and
how to decode the answer.  The sync and async clients differ only in how they send a
``Call`` (``finetune_sweeps.transport``), so each endpoint is described once, here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import httpx

from api_schemas.report import AgreementReport
from api_schemas.wire import (
    Health,
    ResultPage,
    Summary,
    SweepPage,
    SweepPlan,
    SweepRead,
    TrialPage,
)

T = TypeVar("T")
Query = list[tuple[str, str]]
FIGURE_KINDS = ("gen_error", "regimes", "l_order", "pd", "phase", "scatter")
EXPORT_FORMATS = ("csv", "parquet")


@dataclass(frozen=True)
class Call(Generic[T]):
    """One HTTP request and the decoder of its successful response."""

    method: str
    path: str
    decode: Callable[[httpx.Response], T]
    params: Query = field(default_factory=list)
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)


def _model(model: type[Any]) -> Callable[[httpx.Response], Any]:
    return lambda response: model.model_validate(response.json())


def _raw(response: httpx.Response) -> bytes:
    return response.content


def query_value(value: Any) -> str:
    """A filter value as the server reads it: lists comma-joined, numbers as ``repr``."""
    if isinstance(value, SweepRead):
        return value.id
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    if isinstance(value, Sequence):
        return ",".join(query_value(item) for item in value)
    raise TypeError(f"cannot send {type(value).__name__} as a query value")


def filter_query(filters: Mapping[str, Any]) -> Query:
    """Result filters (``regime_theory="IV"``, ``lambda_pt_lt=-0.5``…) as a query list;
    ``None`` values are left out."""
    return [(name, query_value(value)) for name, value in filters.items() if value is not None]


def health() -> Call[Health]:
    return Call("GET", "/healthz", _model(Health))


def submit(body: dict[str, Any], idempotency_key: str) -> Call[SweepRead]:
    headers = {"Idempotency-Key": idempotency_key}
    return Call("POST", "/v1/sweeps", _model(SweepRead), body=body, headers=headers)


def plan(body: dict[str, Any]) -> Call[SweepPlan]:
    return Call("POST", "/v1/sweeps/plan", _model(SweepPlan), body=body)


def sweep(sweep_id: str) -> Call[SweepRead]:
    return Call("GET", f"/v1/sweeps/{sweep_id}", _model(SweepRead))


def events(sweep_id: str, after: int) -> Call[None]:
    """The sweep's event stream after event ``after`` (read as a stream, not decoded)."""
    headers = {"Accept": "text/event-stream", "Last-Event-ID": str(after)}
    return Call("GET", f"/v1/sweeps/{sweep_id}/events", lambda _: None, headers=headers)


def sweeps(limit: int, offset: int, **filters: Any) -> Call[SweepPage]:
    params = filter_query({"limit": limit, "offset": offset, **filters})
    return Call("GET", "/v1/sweeps", _model(SweepPage), params=params)


def cancel(sweep_id: str) -> Call[SweepRead]:
    return Call("POST", f"/v1/sweeps/{sweep_id}/cancel", _model(SweepRead))


def trials(sweep_id: str, limit: int, cursor: str | None, status: str | None) -> Call[TrialPage]:
    params = filter_query({"limit": limit, "cursor": cursor, "status": status})
    return Call("GET", f"/v1/sweeps/{sweep_id}/trials", _model(TrialPage), params=params)


def result_page(filters: Mapping[str, Any], limit: int, cursor: str | None) -> Call[ResultPage]:
    params = filter_query({**filters, "limit": limit, "cursor": cursor})
    return Call("GET", "/v1/results", _model(ResultPage), params=params)


def summary(group_by: str | Sequence[str], filters: Mapping[str, Any]) -> Call[Summary]:
    params = filter_query({**filters, "group_by": group_by})
    return Call("GET", "/v1/results/summary", _model(Summary), params=params)


def export(filters: Mapping[str, Any], format: str) -> Call[bytes]:
    if format not in EXPORT_FORMATS:
        raise ValueError(f"format must be one of {EXPORT_FORMATS}, not {format!r}")
    params = filter_query({**filters, "format": format})
    return Call("GET", "/v1/results/export", _raw, params=params)


def figure(sweep_id: str, kind: str, format: str, options: Mapping[str, Any]) -> Call[bytes]:
    path = f"/v1/sweeps/{sweep_id}/figures/{kind}.{format}"
    return Call("GET", path, _raw, params=filter_query(options))


def report(
    sweep_id: str, floor: float, worst: int, classifier: str = "regimes-v2"
) -> Call[AgreementReport]:
    params = filter_query({"floor": floor, "worst": worst, "classifier": classifier})
    return Call("GET", f"/v1/sweeps/{sweep_id}/report", _model(AgreementReport), params=params)
