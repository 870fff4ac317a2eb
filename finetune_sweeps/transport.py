"""What the sync and async clients share about sending a request: headers, the retry
policy and turning an error response into a typed exception.

Retried: connection-level failures (refused, reset, dropped before an answer, timeouts)
and 502/503/504.  Submits stay safe to retry because the client always sends an
Idempotency-Key, so a replay returns the sweep the first attempt created.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import httpx

from finetune_sweeps import __version__
from finetune_sweeps.errors import ApiError, ConnectionFailed, api_error

RETRY_STATUSES = frozenset({502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """``attempts`` tries in all; the wait before try n+1 is ``backoff_s · 2^n`` (capped at
    ``max_backoff_s``, with jitter) unless the server sends ``Retry-After``."""

    attempts: int = 4
    backoff_s: float = 0.25
    max_backoff_s: float = 4.0

    def delay(self, attempt: int, response: httpx.Response | None = None) -> float:
        """Seconds to wait after the failed try number ``attempt`` (0-based)."""
        if response is not None:
            retry_after = response.headers.get("Retry-After", "")
            if retry_after.replace(".", "", 1).isdigit():
                return min(float(retry_after), self.max_backoff_s)
        base = min(self.backoff_s * 2**attempt, self.max_backoff_s)
        return base * (0.5 + random.random() / 2)

    def should_retry_status(self, attempt: int, status_code: int) -> bool:
        return status_code in RETRY_STATUSES and attempt + 1 < self.attempts

    def should_retry_error(self, attempt: int) -> bool:
        return attempt + 1 < self.attempts


def default_headers(api_key: str | None, submitter: str | None) -> dict[str, str]:
    """``Authorization: Bearer`` when a key is known, the submitter, a User-Agent."""
    headers = {"User-Agent": f"finetune-sweeps/{__version__}"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    if submitter:
        headers["X-Sweeps-Submitter"] = submitter
    return headers


def error_for(response: httpx.Response) -> ApiError:
    """The typed exception for an error response whose body has been read."""
    try:
        body = response.json()
    except ValueError:
        body = None
    return api_error(response.status_code, body, response.text)


def unreachable(base_url: str, exc: httpx.TransportError) -> ConnectionFailed:
    return ConnectionFailed(
        f"cannot reach the sweeps server at {base_url}: {type(exc).__name__}: {exc}"
    )
