"""Who a request acts as."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Principal:
    """An authenticated user (or, with auth off, the one local user).

    ``name`` is what sweeps record as their submitter (their owner); ``scopes`` is the
    key's expanded scopes; ``key_prefix`` is None when auth is off.
    """

    user_id: str | None
    name: str
    kind: str
    is_admin: bool
    scopes: frozenset[str]
    key_prefix: str | None = None

    def can(self, scope: str) -> bool:
        return scope in self.scopes

    def owns(self, owner_name: str) -> bool:
        return self.name == owner_name


ALL_SCOPES = frozenset({"read", "submit", "admin"})
