"""Size limits of a sweep spec and the validators that enforce them while the request
is validated (pydantic + stdlib only, like the rest of ``api_schemas``).

Every list and mapping in a spec has a cap, checked before its items are validated, so a
two-million-element axis is refused at its length, not after it is parsed and expanded.
The numeric bounds follow the store's columns: a seed lands in a 32-bit ``INTEGER``.
Errors raised here carry the path *inside* the field (``["seeds", 3]``), and pydantic
prefixes the field, so a 422's ``loc`` names the exact value.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

MAX_AXIS_VALUES = 100_000
MAX_SEEDS = 10_000
MAX_PARAMETERS = 64
MAX_ZIP_GROUPS = 16
MAX_EXECUTION_OPTIONS = 32
MAX_TAGS = 32
MAX_STRING = 128
SEED_MAX = 2**31 - 1  # trials.seed is INTEGER (32-bit on PostgreSQL)
GENERATOR_SEED_MAX = 2**32 - 1
INT64 = (-(2**63), 2**63 - 1)
PARAM_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"

SEEDS_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "integer", "minimum": 1, "maximum": MAX_SEEDS},
        {
            "type": "array",
            "items": {"type": "integer", "minimum": 0, "maximum": SEED_MAX},
            "minItems": 1,
            "maxItems": MAX_SEEDS,
            "uniqueItems": True,
        },
    ],
    "default": 1,
    "description": f"a count 1..{MAX_SEEDS} (seeds 0..n-1) or a list of distinct seeds",
}


def spec_error(loc: tuple[str | int, ...], message: str, value: Any) -> Any:
    """One pydantic ``value_error`` at ``loc`` (relative to the model or field being
    validated)."""
    return {"type": "value_error", "loc": loc, "input": value, "ctx": {"error": message}}


def raise_errors(title: str, errors: list[Any]) -> None:
    if errors:
        raise ValidationError.from_exception_data(title, errors)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_seeds(value: Any) -> int | list[int]:
    """A count in [1, MAX_SEEDS] or a list of at most MAX_SEEDS distinct seeds in
    [0, SEED_MAX]; anything else is an error at the offending item."""
    if _is_int(value):
        if not 1 <= value <= MAX_SEEDS:
            raise ValueError(f"seeds as a count must lie in [1, {MAX_SEEDS}]")
        return value
    if not isinstance(value, list):
        raise ValueError("seeds must be a count or a list of integers")
    if not value:
        raise ValueError("seeds as a list must not be empty")
    if len(value) > MAX_SEEDS:
        raise ValueError(f"at most {MAX_SEEDS} seeds, got {len(value)}")
    errors, seen = [], set()
    for index, seed in enumerate(value):
        if not _is_int(seed) or not 0 <= seed <= SEED_MAX:
            message = f"a seed must be an integer in [0, {SEED_MAX}]"
            errors.append(spec_error((index,), message, seed))
        elif seed in seen:
            errors.append(spec_error((index,), "seeds must be distinct", seed))
        else:
            seen.add(seed)
    raise_errors("seeds", errors)
    return list(value)


def check_axis_length(value: Any) -> Any:
    """An explicit list axis holds 1..MAX_AXIS_VALUES values (checked before its items)."""
    if isinstance(value, list):
        if not value:
            raise ValueError("an axis needs at least one value")
        if len(value) > MAX_AXIS_VALUES:
            raise ValueError(f"an axis holds at most {MAX_AXIS_VALUES} values, got {len(value)}")
    return value


def closed_key_patterns(schema: dict[str, Any], *_: Any) -> None:
    """JSON-schema hook: pydantic writes a dict with a key pattern as
    ``patternProperties`` (other keys stay allowed); the server refuses other keys, so
    say so: ``propertyNames`` + ``additionalProperties``."""
    if isinstance(schema, dict):
        patterns = schema.get("patternProperties")
        if isinstance(patterns, dict) and len(patterns) == 1:
            [(pattern, values)] = patterns.items()
            del schema["patternProperties"]
            schema["propertyNames"] = {"pattern": pattern}
            schema["additionalProperties"] = values
        for value in schema.values():
            if isinstance(value, dict):
                closed_key_patterns(value)
            elif isinstance(value, list):
                for item in value:
                    closed_key_patterns(item)
