"""Submit-time admission against a user's quotas (they are checked again at claim time,
where the running-trials cap bounds each user's allocation).

Quotas count *requested* resources, as Kueue and Volcano do: the trials a sweep adds to
the owner's queue, and the GPU-seconds its new trials are estimated to need, per rolling
window.  Over a quota that frees up with time the answer is 429 with ``Retry-After``; a
request that could never fit (bigger than the quota itself) is 403.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from service.errors import Forbidden, QuotaExceeded
from service.settings import Settings
from service.store import users as user_store

# Queued trials drain as the cluster works; this is the wait suggested before a retry.
QUEUE_RETRY_AFTER_S = 60.0


def admit(
    session: Session, owner: str, settings: Settings, new_trials: int, gpu_seconds: float
) -> None:
    """Raise ``Forbidden`` or ``QuotaExceeded`` when the sweep does not fit."""
    user = user_store.user_row_facts(session, owner)
    overrides = user.quotas if user is not None else None
    max_queued = (overrides and overrides.max_queued_trials) or settings.quotas.max_queued_trials
    if new_trials > max_queued:
        raise Forbidden(
            f"the sweep adds {new_trials} trials to your queue; your queued-trials quota is "
            f"{max_queued} (split the sweep, or ask an admin to raise the quota)"
        )
    if new_trials:
        queued = user_store.queued_trials(session, owner)
        if queued + new_trials > max_queued:
            raise QuotaExceeded(
                f"{queued} of your trials are queued and the sweep adds {new_trials}: over your "
                f"queued-trials quota of {max_queued}; retry when some have run",
                retry_after_s=QUEUE_RETRY_AFTER_S,
            )
    budget = (
        overrides and overrides.gpu_seconds_per_window
    ) or settings.quotas.gpu_seconds_per_window
    if budget is None or gpu_seconds <= 0:
        return
    window = timedelta(seconds=settings.quotas.window_seconds)
    if gpu_seconds > budget:
        raise Forbidden(
            f"the sweep requests {gpu_seconds:.3g} GPU-seconds; your quota is {budget:.3g} "
            f"per {window.total_seconds():.0f} s window"
        )
    now = datetime.now(UTC)
    requests = user_store.requested_gpu_seconds(session, owner, now - window)
    used = sum(seconds for _, seconds in requests)
    if used + gpu_seconds <= budget:
        return
    # Wait until enough of the oldest requests leave the window.
    freed, wait = 0.0, window.total_seconds()
    for at, seconds in requests:
        freed += seconds
        if used - freed + gpu_seconds <= budget:
            wait = max(1.0, (at + window - now).total_seconds())
            break
    raise QuotaExceeded(
        f"{used:.3g} of your {budget:.3g} GPU-seconds in this window are requested; the sweep "
        f"asks {gpu_seconds:.3g} more",
        retry_after_s=wait,
    )
