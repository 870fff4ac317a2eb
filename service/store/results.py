"""Result queries: filtered, keyset-paginated pages, per-group summaries, and chunked
iteration for exports.  All SQL for ``/v1/results`` lives here; the query grammar is in
``result_filters`` (pure).

Ordering: ``sort`` column, then ``id`` in the same direction.  NULL sort values count
as larger than any value (PostgreSQL's native order, made explicit for SQLite): last
when ascending, first when descending.  A page is read as at most two index-friendly
ranges — the non-NULL values after the cursor by row comparison ``(col, id) > (v, i)``,
and the NULLs by ``id`` — so a deep page costs the same as the first one.  Sorting by
``id`` (the default) walks the primary key.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Row, Select, and_, exists, func, select, true, tuple_
from sqlalchemy.orm import Session, sessionmaker

from api_schemas.result_columns import PAGE_COLUMNS, RESULT_COLUMNS
from api_schemas.wire import ResultPage, ResultRead, Summary, SummaryRow
from service.errors import BadQuery, SweepNotFound
from service.store.clock import as_utc as _utc
from service.store.models import Sweep, SweepTrial, Trial
from service.store.result_filters import (
    INTEGER_COLUMNS,
    PARAM_COLUMNS,
    RANGE_COLUMNS,
    ExportQuery,
    ListQuery,
    ResultFilter,
    Sort,
    SummaryQuery,
    encode_cursor,
    eq_window,
)

MAX_SUMMARY_GROUPS = 10_000
EXPORT_COLUMNS = tuple(c for c in RESULT_COLUMNS if c.in_export)
EXPORT_CHUNK_ROWS = 5000

_OPS = {
    "gt": lambda c, v: c > v,
    "ge": lambda c, v: c >= v,
    "lt": lambda c, v: c < v,
    "le": lambda c, v: c <= v,
    "eq": lambda c, v: c == v,
}

# The page's columns and the export's, in order, from the one definition of the result
# (api_schemas.result_columns): identity, then the result beside its theory predictions.
READ_COLUMNS = (
    Trial.id.label("trial_id"),
    Trial.key,
    Trial.workload,
    Trial.status,
    Trial.params,
    Trial.seed,
    *(getattr(Trial, c.name) for c in PAGE_COLUMNS),
)


def column(name: str) -> Any:
    """The ``Trial`` column behind a query name (``D`` -> ``Trial.dim``)."""
    return getattr(Trial, RANGE_COLUMNS.get(name, name))


def ensure_sweep(session: Session, sweep_id: str | None) -> None:
    """``SweepNotFound`` unless ``sweep_id`` is empty or names a stored sweep."""
    if sweep_id is not None and session.get(Sweep, sweep_id) is None:
        raise SweepNotFound(f"no sweep with id {sweep_id!r}")


def filter_conditions(flt: ResultFilter) -> list[ColumnElement[bool]]:
    """The WHERE clause of a filter, as a list of conjuncts."""
    conditions: list[ColumnElement[bool]] = []
    if flt.statuses is not None:
        conditions.append(_in(Trial.status, flt.statuses))
    if flt.regime_theory:
        conditions.append(_in(Trial.regime_theory, flt.regime_theory))
    if flt.regime_empirical:
        conditions.append(_in(Trial.regime_empirical, flt.regime_empirical))
    if flt.workloads:
        conditions.append(_in(Trial.workload, flt.workloads))
    if flt.sweep_id is not None:
        conditions.append(
            exists().where(SweepTrial.sweep_id == flt.sweep_id, SweepTrial.trial_id == Trial.id)
        )
    for item in flt.ranges:
        if item.op == "eq" and item.column not in INTEGER_COLUMNS:
            low, high = eq_window(float(item.value))
            conditions.append(column(item.column).between(low, high))
        else:
            conditions.append(_OPS[item.op](column(item.column), item.value))
    if flt.visible_to is not None:
        conditions.append(
            exists().where(
                SweepTrial.trial_id == Trial.id,
                Sweep.id == SweepTrial.sweep_id,
                Sweep.submitter == flt.visible_to,
            )
        )
    if flt.since is not None:
        conditions.append(Trial.updated_seq > flt.since)
    return conditions


def _in(col: Any, values: Sequence[str]) -> ColumnElement[bool]:
    # "= v" rather than "IN (v)" for one value keeps the plan identical to a plain filter.
    return col == values[0] if len(values) == 1 else col.in_(values)


def _order_by(sort: Sort) -> list[Any]:
    """Order within one range (all NULL or all non-NULL): column, then id."""
    if sort.column == "id":
        return [Trial.id.desc() if sort.descending else Trial.id.asc()]
    col = column(sort.column)
    if sort.descending:
        return [col.desc(), Trial.id.desc()]
    return [col.asc(), Trial.id.asc()]


def _ranges(sort: Sort, position: tuple[Any, int] | None) -> list[ColumnElement[bool]]:
    """The ranges that follow ``position`` (sort value, id), in result order."""
    if sort.column == "id":
        if position is None:
            return [true()]
        return [Trial.id < position[1] if sort.descending else Trial.id > position[1]]
    col = column(sort.column)
    key = tuple_(col, Trial.id)
    values: ColumnElement[bool] | None = col.is_not(None)
    nulls: ColumnElement[bool] | None = col.is_(None)
    if position is not None:
        value, last_id = position
        if value is None:  # among the NULLs: later NULLs, then (descending) every value
            nulls = and_(
                col.is_(None), Trial.id < last_id if sort.descending else Trial.id > last_id
            )
            if not sort.descending:
                values = None
        elif sort.descending:  # the NULLs came first and are done
            values, nulls = and_(col <= value, key < tuple_(value, last_id)), None
        else:
            # ``col >= value`` repeats the row comparison for planners that want it plain.
            values = and_(col >= value, key > tuple_(value, last_id))
    ordered = [nulls, values] if sort.descending else [values, nulls]
    return [condition for condition in ordered if condition is not None]


def _batches(
    session: Session,
    statement: Select[Any],
    sort: Sort,
    position: tuple[Any, int] | None,
    size: int,
) -> Iterator[list[Row[Any]]]:
    """Successive batches of ``size`` rows (the last may be shorter) after ``position``.

    ``statement`` must select the sort column as ``sort_value`` and the id as ``trial_id``.
    """
    while True:
        batch: list[Row[Any]] = []
        for condition in _ranges(sort, position):
            batch += session.execute(
                statement.where(condition).order_by(*_order_by(sort)).limit(size - len(batch))
            ).all()
            if len(batch) == size:
                break
        if batch:
            yield batch
        if len(batch) < size:
            return
        position = (batch[-1].sort_value, batch[-1].trial_id)


def list_statement(query: ListQuery) -> Select[Any]:
    """The SELECT of one page, without the order, range and limit ``_batches`` adds."""
    sort_value = column(query.sort.column).label("sort_value")
    return select(*READ_COLUMNS, sort_value).where(*filter_conditions(query.filter))


def page_statement(query: ListQuery) -> Select[Any]:
    """The first (usually the only) SELECT a page runs: ``limit + 1`` rows."""
    position = (query.cursor.value, query.cursor.last_id) if query.cursor else None
    condition = _ranges(query.sort, position)[0]
    return (
        list_statement(query)
        .where(condition)
        .order_by(*_order_by(query.sort))
        .limit(query.limit + 1)
    )


def list_results(session: Session, query: ListQuery) -> ResultPage:
    """One page of results: filtered, ordered by ``query.sort``, after ``query.cursor``."""
    ensure_sweep(session, query.filter.sweep_id)
    position = (query.cursor.value, query.cursor.last_id) if query.cursor else None
    batches = _batches(session, list_statement(query), query.sort, position, query.limit + 1)
    rows = next(batches, [])
    items = []
    for row in rows[: query.limit]:
        values = dict(row._mapping)
        values.pop("sort_value")
        for result_column in PAGE_COLUMNS:
            if result_column.kind == "json":
                values[result_column.name] = values[result_column.name] or {}
            elif result_column.kind == "datetime":
                values[result_column.name] = _utc(values[result_column.name])
        items.append(ResultRead.model_validate(values))
    next_cursor = None
    if len(rows) > query.limit:
        last = rows[query.limit - 1]
        next_cursor = encode_cursor(query, last.sort_value, last.trial_id)
    return ResultPage(items=items, next_cursor=next_cursor)


def summarize_results(session: Session, query: SummaryQuery) -> Summary:
    """Per group of ``query.group_by``: count, mean and SEM of ``gen_error_sim`` over the
    group's trials (seeds), beside the mean finite-sample and asymptotic theory and the
    most common theory regime.

    Count, sums and sums of squares are aggregated in SQL (portable: SQLite and
    PostgreSQL); the SEM is ``sqrt((Σx² − n·x̄²) / (n − 1) / n)``, None for n < 2.  The
    one-pass formula loses digits only when the spread is below ~1e-7 of the mean.
    """
    ensure_sweep(session, query.filter.sweep_id)
    keys = [column(name) for name in query.group_by]
    sim = Trial.gen_error_sim
    conditions = filter_conditions(query.filter)
    statement = (
        select(
            *keys,
            func.count().label("count"),
            func.count(sim).label("n"),
            func.sum(sim).label("total"),
            func.sum(sim * sim).label("squares"),
            func.avg(Trial.gen_error_theory).label("theory"),
            func.avg(Trial.gen_error_asymptotic).label("asymptotic"),
        )
        .where(*conditions)
        .group_by(*keys)
        .order_by(*(key.asc().nulls_last() for key in keys))
        .limit(MAX_SUMMARY_GROUPS + 1)
    )
    groups = session.execute(statement).all()
    if len(groups) > MAX_SUMMARY_GROUPS:
        raise BadQuery(
            [
                {
                    "loc": ["query", "group_by"],
                    "msg": f"more than {MAX_SUMMARY_GROUPS} groups: narrow the filters or "
                    "group by fewer columns",
                    "type": "value_error",
                }
            ]
        )
    regimes = _most_common_regimes(session, keys, conditions)
    width = len(keys)
    rows = []
    for group in groups:
        key = tuple(group[:width])
        n, total, squares = group.n, group.total, group.squares
        mean = total / n if n else None
        sem = None
        if n >= 2:
            variance = max((squares - n * mean * mean) / (n - 1), 0.0)
            sem = math.sqrt(variance / n)
        rows.append(
            SummaryRow(
                group=dict(zip(query.group_by, key, strict=True)),
                count=group.count,
                count_sim=n,
                gen_error_sim_mean=mean,
                gen_error_sim_sem=sem,
                gen_error_theory_mean=group.theory,
                gen_error_asymptotic=group.asymptotic,
                regime_theory=regimes.get(key),
            )
        )
    return Summary(group_by=list(query.group_by), rows=rows)


def _most_common_regimes(
    session: Session, keys: list[Any], conditions: list[ColumnElement[bool]]
) -> dict[tuple[Any, ...], str]:
    """``{group key: most common regime_theory}``; ties go to the lower regime."""
    statement = (
        select(*keys, Trial.regime_theory, func.count().label("n"))
        .where(*conditions, Trial.regime_theory.is_not(None))
        .group_by(*keys, Trial.regime_theory)
    )
    counts: dict[tuple[Any, ...], Counter[str]] = {}
    width = len(keys)
    for row in session.execute(statement):
        counts.setdefault(tuple(row[:width]), Counter())[row[width]] = row.n
    return {
        key: min(counter, key=lambda regime: (-counter[regime], regime))
        for key, counter in counts.items()
    }


def count_results(session: Session, flt: ResultFilter) -> int:
    """How many trials a filter covers."""
    statement = select(func.count()).select_from(Trial).where(*filter_conditions(flt))
    return session.scalar(statement) or 0


def iter_export_chunks(
    session_factory: sessionmaker[Session], query: ExportQuery, chunk_rows: int = EXPORT_CHUNK_ROWS
) -> Iterator[list[dict[str, Any]]]:
    """Every row a filter covers, as lists of at most ``chunk_rows`` dicts, by keyset.

    Opens its own read-only session (a streamed response outlives the request's
    transaction); on PostgreSQL under REPEATABLE READ, so all chunks see one snapshot.
    """
    session = session_factory()
    try:
        if session.get_bind().dialect.name == "postgresql":
            session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        sort_value = column(query.sort.column).label("sort_value")
        statement = select(*export_columns(), sort_value).where(*filter_conditions(query.filter))
        for rows in _batches(session, statement, query.sort, None, chunk_rows):
            chunk = []
            for row in rows:
                values = dict(row._mapping)
                values.pop("sort_value")
                for result_column in EXPORT_COLUMNS:
                    if result_column.kind == "datetime":
                        values[result_column.name] = _utc(values[result_column.name])
                chunk.append(values)
            yield chunk
    finally:
        session.rollback()
        session.close()


def export_columns() -> list[Any]:
    """Export columns in order: identity, typed params, status, the scalar result columns
    (``RESULT_COLUMNS`` order), then ``params`` and the JSON result columns as text."""
    params = [column(name).label(name) for name in PARAM_COLUMNS]
    scalars = [c for c in EXPORT_COLUMNS if c.kind != "json"]
    documents = [c for c in EXPORT_COLUMNS if c.kind == "json"]
    return [
        Trial.id.label("trial_id"),
        Trial.key,
        Trial.workload,
        *params,
        Trial.status,
        *(getattr(Trial, c.name) for c in scalars),
        Trial.params,
        *(getattr(Trial, c.name) for c in documents),
    ]
