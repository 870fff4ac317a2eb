"""Query-string grammar of ``GET /v1/results`` (and its summary and export), parsed into
typed, frozen objects.  Pure: no SQL, no FastAPI; the store turns these into WHERE
clauses.

Grammar (every name is checked; an unknown one is a 422 that names it):

- ``regime_theory`` / ``regime_empirical``: one or more of I, II, III, IV, repeated
  (``?regime_theory=II&regime_theory=IV``) or comma-separated (``?regime_theory=II,IV``).
- ``<column>_<op>`` with op in gt, ge, lt, le, eq on every column of ``RANGE_COLUMNS``:
  ``?lambda_pt_lt=-0.5&c_pt_ge=1e-3``.  Integer columns (D, seed) take integers.
  ``eq`` on a real column matches to 12 significant digits (``eq_window``), so
  ``alpha_eq=0.059`` finds the 0.059000000000000004 that ``linspace(0.01, 0.5, 11)``
  stores; on an integer column it is exact.
- ``status``: trial statuses (comma or repeated) or ``any``; default ``succeeded``.
- ``workload`` (comma or repeated), ``sweep_id`` (one).
- ``since``: an event sequence number (``GET /v1/sweeps/{id}/events`` ids): only trials
  whose latest change was recorded after it (``trials.updated_seq > since``).  Trials
  never changed since they were submitted have no sequence number and never match.
- list only: ``sort`` (a column, ``-`` prefix for descending; default ``id``),
  ``limit`` (default 100, at most ``settings.limits.page_limit``), ``cursor``.
- summary only: ``group_by`` (comma list of ``GROUP_COLUMNS``; required).
- export only: ``format`` (csv or parquet; default csv) and ``sort``.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from api_schemas.result_columns import FILTER_COLUMNS
from api_schemas.statuses import TrialStatus
from api_schemas.wire import REGIMES, TRIAL_STATUSES
from api_schemas.workloads import TYPED_PARAMETERS
from service.errors import BadCursor, BadQuery
from service.store import query_bounds as bounds

# Query name -> ORM attribute of ``Trial`` (the column "D" is the attribute ``dim``).
PARAM_COLUMNS: dict[str, str] = {name: "dim" if name == "D" else name for name in TYPED_PARAMETERS}
# Numeric result columns are range filters and sort keys (api_schemas.result_columns).
RESULT_COLUMNS: tuple[str, ...] = FILTER_COLUMNS
RANGE_COLUMNS: dict[str, str] = {**PARAM_COLUMNS, **{name: name for name in RESULT_COLUMNS}}
INTEGER_COLUMNS = frozenset({"D", "seed"})
OPERATORS: tuple[str, ...] = ("gt", "ge", "lt", "le", "eq")
SORT_COLUMNS: tuple[str, ...] = ("id", *RANGE_COLUMNS)
GROUP_COLUMNS: tuple[str, ...] = (*PARAM_COLUMNS, "workload")
EXPORT_FORMATS: tuple[str, ...] = ("csv", "parquet")
DEFAULT_LIMIT = 100
DEFAULT_STATUSES: tuple[str, ...] = (TrialStatus.SUCCEEDED.value,)

# ``eq`` on a real column: |x − value| ≤ EQ_RELATIVE_TOLERANCE·|value|.  Axis values are
# stored as computed (linspace, logspace: a few ulps, ~1e-16 relative, from the decimal a
# person types) and rounding them would change trial keys; 12 digits is also how
# benchmarks/paper_scale.py keys α.  Distinct settings closer than that are not a sweep.
EQ_RELATIVE_TOLERANCE = 1e-12

_FILTER_NAMES = ("regime_theory", "regime_empirical", "status", "workload", "sweep_id", "since")
_RANGE_NAMES = tuple(f"{column}_{op}" for column in RANGE_COLUMNS for op in OPERATORS)


@dataclass(frozen=True)
class Range:
    """``<column> <op> value``; ``column`` is the query name (``D``, not ``dim``)."""

    column: str
    op: str
    value: float | int


def eq_window(value: float) -> tuple[float, float]:
    """The closed interval an ``eq`` filter on a real column matches: ``value`` ± 1e-12 of
    its magnitude (exactly ``value`` at 0), kept inside the finite floats."""
    spread = abs(value) * EQ_RELATIVE_TOLERANCE
    return max(value - spread, -bounds.FLOAT_MAX), min(value + spread, bounds.FLOAT_MAX)


@dataclass(frozen=True)
class ResultFilter:
    """Which trials a results query covers.  ``statuses=None`` means any status."""

    regime_theory: tuple[str, ...] = ()
    regime_empirical: tuple[str, ...] = ()
    statuses: tuple[str, ...] | None = DEFAULT_STATUSES
    workloads: tuple[str, ...] = ()
    sweep_id: str | None = None
    ranges: tuple[Range, ...] = ()
    # Only trials of this owner's sweeps (set by the route when reads are restricted).
    visible_to: str | None = None
    since: int | None = None

    def fingerprint(self) -> str:
        """A short digest that ties a cursor to the filters it was issued for."""
        text = json.dumps(
            [
                sorted(self.regime_theory),
                sorted(self.regime_empirical),
                sorted(self.statuses) if self.statuses is not None else None,
                sorted(self.workloads),
                self.sweep_id,
                sorted([r.column, r.op, r.value] for r in self.ranges),
                self.visible_to,
            ]
            + ([self.since] if self.since is not None else [])
        )
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Sort:
    column: str = "id"
    descending: bool = False

    @property
    def token(self) -> str:
        return f"-{self.column}" if self.descending else self.column


@dataclass(frozen=True)
class Cursor:
    """Position after the last row of a page: its sort value and its id."""

    value: Any
    last_id: int


@dataclass(frozen=True)
class ListQuery:
    filter: ResultFilter
    sort: Sort = field(default_factory=Sort)
    limit: int = DEFAULT_LIMIT
    cursor: Cursor | None = None


@dataclass(frozen=True)
class SummaryQuery:
    filter: ResultFilter
    group_by: tuple[str, ...]


@dataclass(frozen=True)
class ExportQuery:
    filter: ResultFilter
    sort: Sort = field(default_factory=Sort)
    format: str = "csv"


# -- cursors -------------------------------------------------------------------------
def encode_cursor(query: ListQuery, value: Any, last_id: int) -> str:
    """Opaque cursor: base64url of ``{"s": sort, "f": filter digest, "v": value, "i": id}``."""
    payload = {"s": query.sort.token, "f": query.filter.fingerprint(), "v": value, "i": last_id}
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(text: str, sort: Sort, flt: ResultFilter) -> Cursor:
    """The cursor's position, or ``BadCursor`` if it is garbled or from another query."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        payload = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise BadCursor(
            "cursor is not valid: pass the next_cursor of a previous page unchanged"
        ) from None
    if (
        not isinstance(payload, dict)
        or set(payload) != {"s", "f", "v", "i"}
        or not isinstance(payload["i"], int)
        or isinstance(payload["i"], bool)
        or not (payload["v"] is None or isinstance(payload["v"], int | float))
        or isinstance(payload["v"], bool)
    ):
        raise BadCursor("cursor is not valid: pass the next_cursor of a previous page unchanged")
    value_bounds = bounds.INTEGER_COLUMN_BOUNDS.get(sort.column, bounds.INT64)
    if not bounds.integer_fits(payload["i"], bounds.ID_BOUNDS) or (
        isinstance(payload["v"], int) and not bounds.integer_fits(payload["v"], value_bounds)
    ):
        raise BadCursor("cursor is not valid: its position lies outside what the columns hold")
    if payload["s"] != sort.token:
        raise BadCursor(
            f"cursor was issued for sort={payload['s']}, not sort={sort.token}: "
            "keep the sort of the first page, or start again without a cursor"
        )
    if payload["f"] != flt.fingerprint():
        raise BadCursor(
            "cursor was issued for different filters: keep the filters of the first page, "
            "or start again without a cursor"
        )
    return Cursor(value=payload["v"], last_id=payload["i"])


# -- parsing -------------------------------------------------------------------------
class _Errors:
    """Collects every problem so one 422 lists them all (pydantic's error shape)."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def add(self, name: str, msg: str, kind: str = "value_error") -> None:
        self.items.append({"loc": ["query", name], "msg": msg, "type": kind})

    def raise_if_any(self) -> None:
        if self.items:
            raise BadQuery(self.items)


def _split(values: list[str]) -> list[str]:
    # No stripping: the documented pattern is ``T(,T)*`` and the parser reads the same.
    return [part for value in values for part in value.split(",")]


def _choices(name: str, values: list[str], allowed: Iterable[str], errors: _Errors) -> list[str]:
    allowed = tuple(allowed)
    parts = _split(values)
    if not parts:
        errors.add(name, f"{name} needs a value: one or more of {', '.join(allowed)}")
    bad = [part for part in parts if part not in allowed]
    if bad:
        errors.add(name, f"{name} {', '.join(map(repr, bad))} not in {', '.join(allowed)}")
    return list(dict.fromkeys(part for part in parts if part in allowed))


def _number(
    name: str, text: str, column: str, integer: bool, errors: _Errors
) -> float | int | None:
    if integer:
        column_bounds = bounds.INTEGER_COLUMN_BOUNDS.get(column, bounds.INT64)
        value: float | int | str = bounds.parse_integer(name, text, column_bounds)
    else:
        value = bounds.parse_number(name, text)
    if isinstance(value, str):
        errors.add(name, value, "type_error")
        return None
    return value


def _single(name: str, values: list[str], errors: _Errors) -> str | None:
    if len(values) > 1:
        errors.add(name, f"{name} given {len(values)} times; give it once")
    return values[-1] if values else None


def _group(params: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for name, value in params:
        grouped.setdefault(name, []).append(value)
    return grouped


def _check_unknown(grouped: dict[str, list[str]], extra: tuple[str, ...], errors: _Errors) -> None:
    known = (*_FILTER_NAMES, *_RANGE_NAMES, *extra)
    for name in grouped:
        if name in known:
            continue
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.75)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        errors.add(
            name,
            f"unknown query parameter {name!r}{hint}. Known: {', '.join(extra)}, "
            "regime_theory, regime_empirical, status, workload, sweep_id and "
            f"<column>_<gt|ge|lt|le|eq> for columns {', '.join(RANGE_COLUMNS)}",
            "unknown_parameter",
        )


def _parse_filter(grouped: dict[str, list[str]], errors: _Errors) -> ResultFilter:
    regime_theory = regime_empirical = workloads = ()
    statuses: tuple[str, ...] | None = DEFAULT_STATUSES
    if "regime_theory" in grouped:
        regime_theory = tuple(_choices("regime_theory", grouped["regime_theory"], REGIMES, errors))
    if "regime_empirical" in grouped:
        regime_empirical = tuple(
            _choices("regime_empirical", grouped["regime_empirical"], REGIMES, errors)
        )
    if "status" in grouped:
        chosen = _choices("status", grouped["status"], (*TRIAL_STATUSES, "any"), errors)
        statuses = None if "any" in chosen else tuple(chosen)
    if "workload" in grouped:
        workloads = tuple(dict.fromkeys(_split(grouped["workload"])))
        bad = [w for w in workloads if not re.fullmatch(bounds.WORKLOAD_TOKEN, w)]
        if bad:
            errors.add("workload", f"workload {', '.join(map(repr, bad))}: not a workload name")
    sweep_id = _single("sweep_id", grouped.get("sweep_id", []), errors)
    if sweep_id is not None and not re.fullmatch(bounds.SWEEP_ID_PATTERN, sweep_id):
        errors.add("sweep_id", f"sweep_id {sweep_id[:80]!r} is not a sweep id")
    if "sweep_id" in grouped and not sweep_id:
        errors.add("sweep_id", "sweep_id needs a value")
    since = None
    since_text = _single("since", grouped.get("since", []), errors)
    if since_text is not None:
        since = _number("since", since_text, "since", True, errors)
        if since is not None and since < 0:
            errors.add("since", "since must be a sequence number (0 or more)")
    ranges = []
    for name in _RANGE_NAMES:
        column, op = name.rsplit("_", 1)
        text = _single(name, grouped.get(name, []), errors)
        if text is not None:
            value = _number(name, text, column, column in INTEGER_COLUMNS, errors)
            if value is not None:
                ranges.append(Range(column, op, value))
    return ResultFilter(
        regime_theory=regime_theory,
        regime_empirical=regime_empirical,
        statuses=statuses,
        workloads=workloads,
        sweep_id=sweep_id or None,
        ranges=tuple(ranges),
        since=since,
    )


def _parse_sort(grouped: dict[str, list[str]], errors: _Errors) -> Sort:
    text = _single("sort", grouped.get("sort", []), errors)
    if text is None:
        return Sort()
    descending = text.startswith("-")
    column = text[1:] if descending else text
    if column not in SORT_COLUMNS:
        errors.add("sort", f"sort {text!r}: pick one of {', '.join(SORT_COLUMNS)} ('-' = desc)")
        return Sort()
    return Sort(column, descending)


def parse_list_query(params: Iterable[tuple[str, str]], page_limit: int) -> ListQuery:
    """``GET /v1/results``: filters, sort, limit (≤ ``page_limit``) and cursor."""
    grouped = _group(params)
    errors = _Errors()
    _check_unknown(grouped, ("sort", "limit", "cursor"), errors)
    flt = _parse_filter(grouped, errors)
    sort = _parse_sort(grouped, errors)
    limit = DEFAULT_LIMIT
    limit_text = _single("limit", grouped.get("limit", []), errors)
    if limit_text is not None:
        parsed = bounds.parse_integer("limit", limit_text)
        if isinstance(parsed, str):
            errors.add("limit", parsed, "type_error")
        else:
            limit = parsed
            if limit < 1:
                errors.add("limit", "limit must be at least 1")
            elif limit > page_limit:
                errors.add(
                    "limit",
                    f"limit {limit} exceeds the page cap of {page_limit} "
                    "(SWEEPS_LIMITS__PAGE_LIMIT); follow next_cursor for more, or use "
                    "/v1/results/export for everything",
                )
    cursor_text = _single("cursor", grouped.get("cursor", []), errors)
    if cursor_text is not None and not re.fullmatch(bounds.CURSOR_PATTERN, cursor_text):
        errors.add("cursor", "cursor must be the next_cursor of a previous page")
    errors.raise_if_any()
    cursor = decode_cursor(cursor_text, sort, flt) if cursor_text else None
    return ListQuery(filter=flt, sort=sort, limit=limit, cursor=cursor)


def parse_summary_query(params: Iterable[tuple[str, str]]) -> SummaryQuery:
    """``GET /v1/results/summary``: filters and the required ``group_by`` list."""
    grouped = _group(params)
    errors = _Errors()
    _check_unknown(grouped, ("group_by",), errors)
    flt = _parse_filter(grouped, errors)
    group_by: list[str] = []
    if "group_by" not in grouped:
        errors.add(
            "group_by",
            f"group_by is required: a comma list of {', '.join(GROUP_COLUMNS)}",
            "missing",
        )
    else:
        group_by = _choices("group_by", grouped["group_by"], GROUP_COLUMNS, errors)
    errors.raise_if_any()
    return SummaryQuery(filter=flt, group_by=tuple(group_by))


def parse_export_query(params: Iterable[tuple[str, str]]) -> ExportQuery:
    """``GET /v1/results/export``: filters, sort and ``format`` (csv or parquet)."""
    grouped = _group(params)
    errors = _Errors()
    _check_unknown(grouped, ("format", "sort"), errors)
    flt = _parse_filter(grouped, errors)
    sort = _parse_sort(grouped, errors)
    fmt = _single("format", grouped.get("format", []), errors)
    fmt = "csv" if fmt is None else fmt
    if fmt not in EXPORT_FORMATS:
        errors.add("format", f"format {fmt!r}: pick one of {', '.join(EXPORT_FORMATS)}")
    errors.raise_if_any()
    return ExportQuery(filter=flt, sort=sort, format=fmt)


# -- documentation -------------------------------------------------------------------
def _token_list(tokens: Iterable[str]) -> dict[str, Any]:
    """A repeatable parameter whose every value is a comma list of ``tokens``."""
    pattern = bounds.token_list_pattern(bounds.choice_token(tuple(tokens)))
    return {"type": "array", "items": {"type": "string", "pattern": pattern}, "minItems": 1}


def openapi_parameters(endpoint: str, page_limit: int | None = None) -> list[dict[str, Any]]:
    """OpenAPI ``parameters`` for an endpoint ("list", "summary" or "export").

    The handlers read the raw query string (so unknown names can be refused); this
    documents exactly what the parser accepts: the patterns, enums and numeric bounds
    (``query_bounds``), and which parameters may repeat (arrays, ``explode``).
    ``page_limit`` is the ``limit`` maximum (the app fills in its setting).
    """

    def param(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
        entry = {
            "name": name,
            "in": "query",
            "required": False,
            "description": description,
            "schema": schema,
        }
        if schema.get("type") == "array":
            entry |= {"style": "form", "explode": True}
        return entry

    workload = bounds.token_list_pattern(bounds.WORKLOAD_TOKEN)
    params = [
        param(
            "regime_theory",
            "theory regime(s): I, II, III, IV; repeat or comma-separate",
            _token_list(REGIMES),
        ),
        param("regime_empirical", "measured regime(s), same syntax", _token_list(REGIMES)),
        param(
            "status",
            "trial status(es) or 'any' (default succeeded)",
            _token_list((*TRIAL_STATUSES, "any")),
        ),
        param(
            "workload",
            "workload name(s); repeat or comma-separate",
            {"type": "array", "items": {"type": "string", "pattern": workload}, "minItems": 1},
        ),
        param(
            "sweep_id",
            "only trials of this sweep (404 if unknown)",
            {"type": "string", "pattern": bounds.SWEEP_ID_PATTERN},
        ),
        param(
            "since",
            "only trials changed after this event sequence number (the SSE id)",
            {"type": "integer", "minimum": 0, "maximum": bounds.INT64[1]},
        ),
    ]
    for column in RANGE_COLUMNS:
        if column in INTEGER_COLUMNS:
            low, high = bounds.INTEGER_COLUMN_BOUNDS.get(column, bounds.INT64)
            schema = {"type": "integer", "minimum": low, "maximum": high}
        else:
            schema = {"type": "number", "minimum": -bounds.FLOAT_MAX, "maximum": bounds.FLOAT_MAX}
        for op in OPERATORS:
            text = f"{column} {op} value"
            if op == "eq" and column not in INTEGER_COLUMNS:
                text += " (to 12 significant digits: |x − value| ≤ 1e-12·|value|)"
            params.append(param(f"{column}_{op}", text, schema))
    if endpoint in ("list", "export"):
        sort_tokens = [token for column in SORT_COLUMNS for token in (column, f"-{column}")]
        params.append(
            param(
                "sort",
                f"one of {', '.join(SORT_COLUMNS)}; '-' prefix = desc",
                {"type": "string", "enum": sort_tokens, "default": "id"},
            )
        )
    if endpoint == "list":
        limit = {"type": "integer", "default": DEFAULT_LIMIT, "minimum": 1}
        if page_limit is not None:
            limit["maximum"] = page_limit
        params.append(param("limit", "page size (at most SWEEPS_LIMITS__PAGE_LIMIT)", limit))
        params.append(
            param(
                "cursor",
                "next_cursor of the previous page (same sort and filters)",
                {"type": "string", "pattern": bounds.CURSOR_PATTERN},
            )
        )
    if endpoint == "summary":
        params.append(
            param(
                "group_by",
                f"comma list of {', '.join(GROUP_COLUMNS)}",
                _token_list(GROUP_COLUMNS),
            )
            | {"required": True}
        )
    if endpoint == "export":
        params.append(
            param(
                "format",
                "csv or parquet",
                {"type": "string", "enum": list(EXPORT_FORMATS), "default": "csv"},
            )
        )
    return params
