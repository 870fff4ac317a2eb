"""Domain errors.  Each carries its HTTP status; one handler in ``service/app.py``
renders them as ``{"error": <class name>, "detail": <message>}``.  Services never raise
``HTTPException``.
"""

from __future__ import annotations

from typing import Any


class SweepsError(Exception):
    status_code = 400

    def __init__(self, detail: Any) -> None:
        super().__init__(detail)
        self.detail = detail


class SweepNotFound(SweepsError):
    status_code = 404


class IdempotencyConflict(SweepsError):
    status_code = 409


class SweepAlreadyFinished(SweepsError):
    status_code = 409


class SpecRejected(SweepsError):
    """The spec parsed but cannot be run: limits, infeasible expanded trials.

    ``detail`` is a list of pydantic-style errors (``loc``, ``msg``, ``type``) so a
    client sees the same shape as for a schema error.
    """

    status_code = 422


class BadCursor(SweepsError):
    status_code = 400


class BadQuery(SweepsError):
    status_code = 422


class NoResultsYet(SweepsError):
    """A figure or report asked of a sweep with nothing (of the right kind) to show."""

    status_code = 409


class UnknownFigure(SweepsError):
    status_code = 404


class NotFound(SweepsError):
    status_code = 404


class Conflict(SweepsError):
    status_code = 409


class Unauthorized(SweepsError):
    """No valid API key (missing, malformed, unknown, revoked, expired)."""

    status_code = 401


class Forbidden(SweepsError):
    """Authenticated, but not allowed: a missing scope, another user's sweep, or a quota
    that waiting will not lift."""

    status_code = 403


class QuotaExceeded(SweepsError):
    """Over a quota that frees up with time: 429 with ``Retry-After``."""

    status_code = 429

    def __init__(self, detail: str, retry_after_s: float | None = None) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s


class NotRefined(SweepsError):
    """The sweep exists but has no ``refine`` block, so it has no boundary to report:
    a conflict with the sweep's kind (409), not a missing resource."""

    status_code = 409


class ResultsIncomplete(SweepsError):
    """Bring-your-own benchmark results that leave out (or add) suite configs or metrics;
    ``detail`` is a list of pydantic-style errors naming each one."""

    status_code = 422
