"""Typed failures of the client.

Every error the server sends has the body ``{"error": <name>, "detail": <detail>}``; a
422's detail is a list of ``{"loc", "msg", "type"}`` items whose ``loc`` is the field path
(``["body", "axes", "lambda_pt"]``).  ``api_error`` turns such a response into the
matching ``ApiError`` subclass, keeping the name, the status and every field path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class SweepsError(Exception):
    """Base of every error this package raises."""


class ConnectionFailed(SweepsError):
    """The server could not be reached (after the retries)."""


class WaitTimeout(SweepsError):
    """A sweep did not reach a final state within the time given to ``wait``."""


class SpecFileError(SweepsError, ValueError):
    """A local spec file that is not a YAML/JSON mapping."""


@dataclass(frozen=True)
class FieldError:
    """One item of a 422 detail: where (``loc``), why (``msg``) and the pydantic type."""

    loc: tuple[str | int, ...]
    msg: str
    type: str | None = None

    @property
    def path(self) -> str:
        return ".".join(str(part) for part in self.loc)


class ApiError(SweepsError):
    """The server answered with an error status.

    ``error`` is the server's name for it (``SweepNotFound``, ``ValidationError``…),
    ``status_code`` the HTTP status, ``detail`` the raw detail, ``field_errors`` the
    parsed 422 items and ``field_path`` the first of their paths (``None`` otherwise).
    """

    def __init__(self, status_code: int, error: str, detail: Any) -> None:
        self.status_code = status_code
        self.error = error
        self.detail = detail
        self.field_errors = tuple(_field_errors(detail))
        super().__init__(self.describe())

    @property
    def field_path(self) -> str | None:
        return self.field_errors[0].path if self.field_errors else None

    @property
    def field_paths(self) -> list[str]:
        return [item.path for item in self.field_errors]

    def describe(self) -> str:
        """One line: ``HTTP 422 ValidationError: body.axes.lambda_pt: Input should be …``."""
        if self.field_errors:
            text = "; ".join(f"{item.path}: {item.msg}" for item in self.field_errors)
        else:
            text = str(self.detail)
        return f"HTTP {self.status_code} {self.error}: {text}"


class BadRequest(ApiError):
    """400: a malformed request, e.g. a garbled cursor."""


class NotFound(ApiError):
    """404: no such sweep, figure kind or path."""


class Conflict(ApiError):
    """409: an Idempotency-Key reused with another spec, a finished sweep, no results yet."""


class ValidationFailed(ApiError):
    """422: a spec or query the server rejected; ``field_path`` names the field."""


class ServerUnavailable(ApiError):
    """502/503/504 that outlasted the retries."""


_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest,
    404: NotFound,
    409: Conflict,
    422: ValidationFailed,
    502: ServerUnavailable,
    503: ServerUnavailable,
    504: ServerUnavailable,
}


def api_error(status_code: int, body: Any, text: str = "") -> ApiError:
    """The typed error for an error response (``body`` is the decoded JSON or ``None``)."""
    cls = _BY_STATUS.get(status_code, ApiError)
    if isinstance(body, dict) and "error" in body:
        return cls(status_code, str(body["error"]), body.get("detail"))
    if isinstance(body, dict) and "detail" in body:
        return cls(status_code, "HTTPError", body["detail"])
    return cls(status_code, "HTTPError", text[:300])


def _field_errors(detail: Any) -> list[FieldError]:
    if not isinstance(detail, list):
        return []
    items = []
    for item in detail:
        if isinstance(item, dict) and "loc" in item:
            loc = tuple(item.get("loc") or ())
            items.append(FieldError(loc=loc, msg=str(item.get("msg", "")), type=item.get("type")))
    return items
