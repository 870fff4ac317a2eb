"""The lexical rules and numeric bounds of query values, shared by the parsers and the
OpenAPI document so that both say the same thing.

Pure (``re`` and ``sys`` only).  A value the database cannot hold is refused here with a
422 naming the parameter, never sent to the driver (SQLite raises ``OverflowError`` past
int64; PostgreSQL's ``integer`` columns stop at int32).
"""

from __future__ import annotations

import math
import re
import sys

INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
FLOAT_MAX = sys.float_info.max
# The typed integer result columns are INTEGER (32-bit on PostgreSQL); ids are BIGINT.
INTEGER_COLUMN_BOUNDS = {"D": INT32, "seed": INT32}
ID_BOUNDS = (0, INT64[1])

INTEGER_TEXT = re.compile(r"[+-]?[0-9]{1,400}")
NUMBER_TEXT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
WORKLOAD_TOKEN = r"[A-Za-z0-9_]{1,64}"
SWEEP_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
CURSOR_PATTERN = r"^[A-Za-z0-9_=-]{1,2048}$"


def token_list_pattern(token: str) -> str:
    """``^T(,T)*$``: one or more tokens, comma-separated, no spaces."""
    return f"^({token})(,({token}))*$"


def choice_token(choices: tuple[str, ...]) -> str:
    # Longest first, so that "III" is not read as "II" followed by garbage.
    return "|".join(re.escape(choice) for choice in sorted(choices, key=len, reverse=True))


def parse_integer(name: str, text: str, bounds: tuple[int, int] = INT64) -> int | str:
    """The integer ``text`` spells, or an error message naming ``name``."""
    if not INTEGER_TEXT.fullmatch(text):
        return f"{name} must be an integer, got {text[:40]!r}"
    value = int(text)
    low, high = bounds
    if not low <= value <= high:
        return f"{name} must lie in [{low}, {high}] (what its column holds), got {text[:40]}"
    return value


def parse_number(name: str, text: str) -> float | str:
    """The finite float ``text`` spells, or an error message naming ``name``."""
    if not NUMBER_TEXT.fullmatch(text):
        try:
            value = float(text)
        except ValueError:
            return f"{name} must be a number, got {text[:40]!r}"
        if not math.isfinite(value):
            return f"{name} must be a finite number, got {text[:40]!r}"
        return f"{name} must be a plain decimal number, got {text[:40]!r}"
    value = float(text)
    if not math.isfinite(value):
        return f"{name} must be a finite number, got {text[:40]!r}"
    return value


def integer_fits(value: object, bounds: tuple[int, int] = INT64) -> bool:
    """True for an int (not bool) inside ``bounds``."""
    return (
        isinstance(value, int) and not isinstance(value, bool) and bounds[0] <= value <= bounds[1]
    )
