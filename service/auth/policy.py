"""Ownership: who may read and who may change a sweep (or a benchmark run).

A sweep belongs to its submitter (MLflow's creator-gets-MANAGE).  Cancelling needs the
owner or an admin.  Reading is open to every authenticated user (shared science) unless
``SWEEPS_AUTH__RESTRICT_READS`` limits it to owners and admins.  The 403 names no other
user's data.
"""

from __future__ import annotations

from service.auth.principal import Principal
from service.errors import Forbidden
from service.settings import Settings


def restricted_to(principal: Principal, settings: Settings) -> str | None:
    """The owner a read is limited to (None: everything is readable)."""
    if settings.auth.enabled and settings.auth.restrict_reads and not principal.is_admin:
        return principal.name
    return None


def check_read(principal: Principal, settings: Settings, owner: str, what: str = "sweep") -> None:
    limited = restricted_to(principal, settings)
    if limited is not None and limited != owner:
        raise Forbidden(f"this {what} belongs to another user (reads are restricted to owners)")


def check_change(principal: Principal, owner: str) -> None:
    if not (principal.is_admin or principal.owns(owner)):
        raise Forbidden("only the sweep's owner or an admin may change it")
