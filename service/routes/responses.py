"""What the OpenAPI document says about errors and links, in one place.

Every error the server can send has the body ``{"error", "detail"}`` (``ErrorBody``);
``errors(...)`` documents the statuses an operation can answer with, and every
operation gets the ones any request can meet (422 for a malformed query or header, 500
for a bug, 503 when the database is away).  ``SWEEP_LINKS`` are the OpenAPI links from
a sweep's ``id`` to the operations that take it, so a client — or a stateful fuzzer —
can walk from a created sweep to its status, trials, results, report and cancel.
"""

from __future__ import annotations

from typing import Any

from api_schemas.wire import ErrorBody

_DESCRIPTIONS = {
    400: "Malformed request: an unreadable body or a cursor not issued by this endpoint",
    401: "No valid API key (missing, malformed, unknown, revoked, expired); auth on only",
    403: "The key lacks a scope, or the resource belongs to another user",
    404: "No such sweep (or figure)",
    409: "Conflict: the Idempotency-Key was used for another spec, the sweep already "
    "finished, or it has no results of the kind asked for",
    413: "Request body larger than SWEEPS_LIMITS__MAX_BODY_BYTES",
    429: "Over a quota that frees up with time; see Retry-After",
    422: "Invalid input; `detail` lists `{loc, msg, type}` with the field's path",
    500: "Unexpected server error (a bug; the server's log has the traceback)",
    503: "The database is unavailable; retry later",
}
ALWAYS = (422, 500, 503)
# Every /v1 operation can meet these with auth on (SWEEPS_AUTH__ENABLED).
AUTH = (401, 403)
BODY = (400, 413)


def errors(*statuses: int, auth: bool = True) -> dict[int | str, dict[str, Any]]:
    """FastAPI ``responses=`` for ``statuses`` plus the ones every operation can return
    (and, unless ``auth=False``, the authentication ones)."""
    codes = sorted(set(statuses) | set(ALWAYS) | (set(AUTH) if auth else set()))
    return {code: {"model": ErrorBody, "description": _DESCRIPTIONS[code]} for code in codes}


def _link(operation_id: str, description: str) -> dict[str, Any]:
    return {
        "operationId": operation_id,
        "parameters": {"sweep_id": "$response.body#/id"},
        "description": description,
    }


SWEEP_LINKS: dict[str, dict[str, Any]] = {
    "GetSweep": _link("get_sweep", "status, counts and progress of this sweep"),
    "ListSweepTrials": _link("list_sweep_trials", "this sweep's trials"),
    "ListResults": _link("list_results", "this sweep's results"),
    "SummarizeResults": _link("summarize_results", "this sweep's results, grouped"),
    "ExportResults": _link("export_results", "this sweep's results as a file"),
    "GetReport": _link("get_report", "theory vs simulation for this sweep"),
    "CancelSweep": _link("cancel_sweep", "cancel this sweep"),
}
