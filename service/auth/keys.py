"""API keys: ``fts_<8 visible characters>_<40 random characters>``.

The visible prefix (``fts_ab12cd34``) identifies a key in listings and logs; the 40
random URL-safe characters (240 bits from ``secrets``) are the secret.  Only the SHA-256
of the whole key is stored, so a database leak reveals no usable key; the key itself is
shown once, when it is created.  SHA-256 (not a slow password hash) is right here: the
secret has 240 bits of entropy, nothing to brute-force, and it is checked on every request.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

SCHEME = "fts"
_PATTERN = re.compile(rf"^{SCHEME}_([a-z0-9]{{8}})_([A-Za-z0-9_-]{{40}})$")
SCOPES = ("read", "submit", "admin")


@dataclass(frozen=True)
class NewKey:
    """A freshly generated key: ``secret`` is shown once and never stored."""

    secret: str
    prefix: str
    secret_hash: str


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def generate_key() -> NewKey:
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    visible = "".join(secrets.choice(alphabet) for _ in range(8))
    secret = secrets.token_urlsafe(30)  # 40 characters
    key = f"{SCHEME}_{visible}_{secret}"
    return NewKey(secret=key, prefix=f"{SCHEME}_{visible}", secret_hash=hash_key(key))


def parse_prefix(key: str) -> str | None:
    """The visible prefix of a well-formed key, else None (not worth a database look-up)."""
    match = _PATTERN.match(key)
    return f"{SCHEME}_{match.group(1)}" if match else None


def matches(key: str, stored_hash: str) -> bool:
    """Constant-time comparison of a presented key with a stored hash."""
    return hmac.compare_digest(hash_key(key), stored_hash)


def expand_scopes(scopes: list[str] | tuple[str, ...]) -> frozenset[str]:
    """``admin`` implies ``submit``, which implies ``read``."""
    granted = set(scopes)
    if "admin" in granted:
        granted |= {"submit", "read"}
    if "submit" in granted:
        granted.add("read")
    return frozenset(granted)
