"""Benchmark ``GET /v1/results`` on a large store.

PostgreSQL (``SWEEPS_BENCH_POSTGRES_URL``, default the local test database) in a schema
of its own that is dropped at the end:

1. ``alembic upgrade head``, then load ``--rows`` trials in one server-side
   ``INSERT … SELECT`` over ``generate_series`` (no ORM, no Python per row): configs of
   14 seeds each with c_pt log-uniform in [1e-6, 1], lambda_pt uniform in [-1, 1],
   gamma_ft log-uniform in [1e-6, 10], alpha on the paper's grid, rho_ft, omega and D
   from the paper's experiments; 97 % succeeded, 2 % failed, 1 % pending.  The theory
   regime follows THEORY.md §4 (III for large c_pt or gamma_ft, II for lambda_pt ≥ 0, I
   for lambda_pt → -1 with small gamma_ft, IV otherwise) with 10 % of labels at random;
   the empirical regime agrees with it 85 % of the time.  Secondary indexes are dropped
   for the load and rebuilt from their own definitions, as a bulk restore would.
2. ``ANALYZE``, then time the real app (TestClient) on
   ``regime_theory=IV&lambda_pt_lt=-0.5&c_pt_ge=1e-3&limit=100``: walks of 5 pages
   (page 1, then 4 more via ``next_cursor``), 200 requests; report p50/p95/p99.
3. Baselines in the same run, on the same SQL: keyset vs OFFSET at the same depths,
   and the keyset query with the regime indexes dropped (inside a transaction that is
   rolled back, so nothing is rebuilt).  Then a few other query shapes, and the
   ``EXPLAIN (ANALYZE, BUFFERS)`` of the benchmarked SQL.

SQLite: the first ``--sqlite-rows`` rows are copied into a fresh SQLite file (same
distribution) and the same requests are timed, for information.

    .venv/bin/python benchmarks/bench_query.py [--rows 1000000] [--sqlite-rows 100000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import warnings  # noqa: E402

import psycopg  # noqa: E402

# Starlette deprecates TestClient over httpx in favour of httpx2; the app is the same.
warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import create_engine, insert, text  # noqa: E402
from sqlalchemy.dialects import postgresql  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from service.app import create_app  # noqa: E402
from service.settings import Settings  # noqa: E402
from service.store import results as results_store  # noqa: E402
from service.store.migrate import upgrade_to_head  # noqa: E402
from service.store.models import Trial  # noqa: E402
from service.store.result_filters import parse_list_query  # noqa: E402

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
QUERY = "regime_theory=IV&lambda_pt_lt=-0.5&c_pt_ge=1e-3&limit=100"
OTHER_QUERIES = [
    "regime_empirical=II&alpha_le=0.06&D_eq=5000&limit=100",
    "regime_theory=I,IV&gamma_ft_lt=1e-3&limit=100",
    "lambda_pt_lt=-0.99&limit=100",
    "regime_theory=I&c_pt_ge=0.5&limit=100",
    "regime_theory=II&sort=-gen_error_sim&limit=100",
    "SWEEP&regime_theory=II&limit=100",
]
PAGES_PER_WALK = 5
REGIME_INDEXES = ("ix_trials_regime_theory_id", "ix_trials_regime_empirical_id")

LOAD_SQL = """
WITH cfg AS MATERIALIZED (
    SELECT g,
           power(10, -6 * random()) AS c_pt,
           2 * random() - 1 AS lambda_pt,
           power(10, 7 * random() - 6) AS gamma_ft,
           (ARRAY[0.01, 0.04, 0.1, 0.9])[1 + floor(random() * 4)::int] AS rho_ft,
           (ARRAY[0.0, 0.5, 1.0])[1 + floor(random() * 3)::int] AS omega,
           0.01 + 0.049 * floor(random() * 11) AS alpha,
           (ARRAY[200, 1000, 5000])[1 + floor(random() * 3)::int] AS d,
           random() AS noise
    FROM generate_series(0, :configs - 1) AS g
), labeled AS MATERIALIZED (
    SELECT cfg.*,
           CASE WHEN noise < 0.1 THEN (ARRAY['I', 'II', 'III', 'IV'])[1 + floor(noise * 40)::int]
                WHEN c_pt > 0.1 OR gamma_ft > 1 THEN 'III'
                WHEN lambda_pt >= 0 THEN 'II'
                WHEN lambda_pt < -0.5 AND gamma_ft < 0.01 THEN 'I'
                ELSE 'IV' END AS regime
    FROM cfg
), draws AS MATERIALIZED (
    SELECT labeled.*, seed, random() AS r_status, random() AS r_sim, random() AS r_emp,
           greatest(1e-4, (1 - alpha) * CASE regime WHEN 'I' THEN 0.3 WHEN 'II' THEN 0.8
                                         WHEN 'III' THEN 1.0 ELSE 0.2 END) AS asymptotic
    FROM labeled CROSS JOIN generate_series(0, 13) AS seed
    ORDER BY g, seed
    LIMIT :rows
)
INSERT INTO trials (
    key, workload, params, execution, batch_key, group_key, theory_key,
    c_pt, lambda_pt, gamma_ft, rho_pt, rho_ft, omega, alpha, a_pt, sigma0, "D", seed,
    status, priority, attempts, created_at, started_at, finished_at, error,
    gen_error_sim, gen_error_theory, gen_error_asymptotic, residual_theory,
    residual_asymptotic, regime_theory, regime_empirical, l_order_theory, pd_theory,
    l_order_empirical, pd_empirical, classifier_version, diverged, stop_reason,
    wall_time_s, metrics, device, dtype, code_version, envelope)
SELECT md5(g || '/' || seed), 'dln',
       json_build_object('c_pt', c_pt, 'lambda_pt', lambda_pt, 'gamma_ft', gamma_ft,
                         'rho_pt', 0.1, 'rho_ft', rho_ft, 'omega', omega, 'alpha', alpha,
                         'a_pt', 1.0, 'sigma0', 0.0, 'D', d),
       '{"steps": 20000, "lr": 0.5}'::json, 'batch-' || (g / 40), 'group-' || g,
       md5('theory/' || g), c_pt, lambda_pt, gamma_ft, 0.1, rho_ft, omega, alpha, 1.0, 0.0,
       d, seed, status, 0, 1, now(), now(),
       CASE WHEN status = 'pending' THEN NULL ELSE now() END,
       CASE WHEN status = 'failed' THEN 'ValueError: diverged' END,
       sim, theory, CASE WHEN ok THEN asymptotic END, sim - theory,
       sim - CASE WHEN ok THEN asymptotic END,
       CASE WHEN ok THEN regime END,
       CASE WHEN NOT ok THEN NULL WHEN r_emp < 0.85 THEN regime
            ELSE (ARRAY['I', 'II', 'III', 'IV'])[1 + floor((r_emp - 0.85) / 0.15 * 4)::int] END,
       CASE WHEN ok THEN l_order END, CASE WHEN ok THEN pd END,
       CASE WHEN ok THEN l_order + 0.05 * (r_emp - 0.5) END,
       CASE WHEN ok THEN pd + 0.05 * (r_sim - 0.5) END,
       CASE WHEN ok THEN 'v1' END, CASE WHEN ok THEN false END,
       CASE WHEN ok THEN 'train_mse' END, CASE WHEN ok THEN 0.002 + 0.01 * r_sim END,
       CASE WHEN ok THEN json_build_object('epochs', 5000 + floor(r_sim * 35000)) END,
       'cpu', 'float64', '0.1.0', '{"python": "3.11", "numpy": "2.1"}'::json
FROM (
    SELECT draws.*, status, status = 'succeeded' AS ok,
           CASE WHEN status = 'succeeded'
                THEN asymptotic * (1 + 0.02 * (r_emp - 0.5)) * (1 + 0.2 * (r_sim - 0.5)) END
               AS sim,
           CASE WHEN status = 'succeeded' THEN asymptotic * (1 + 0.02 * (r_emp - 0.5)) END
               AS theory,
           CASE regime WHEN 'I' THEN 1.1 WHEN 'IV' THEN 1.5 ELSE 1.9 END
               + 0.1 * (r_sim - 0.5) AS l_order,
           CASE regime WHEN 'II' THEN -0.8 WHEN 'IV' THEN -0.4 ELSE -0.02 END
               + 0.02 * (r_sim - 0.5) AS pd
    FROM draws,
         LATERAL (SELECT CASE WHEN r_status < 0.97 THEN 'succeeded'
                              WHEN r_status < 0.99 THEN 'failed'
                              ELSE 'pending' END AS status) AS s
) AS t
"""


def libpq(url: str) -> str:
    """A libpq URL for psycopg from a SQLAlchemy one."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def with_schema(url: str, schema: str) -> str:
    parsed = make_url(url)
    return parsed.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
        hide_password=False
    )


def percentiles(samples_ms: list[float]) -> tuple[float, float, float]:
    cuts = statistics.quantiles(samples_ms, n=100, method="inclusive")
    return cuts[49], cuts[94], cuts[98]


class Table:
    def __init__(self) -> None:
        self.rows: list[tuple[str, int, float, float, float, str]] = []

    def add(self, name: str, samples_ms: list[float], reference: float | None = None) -> float:
        p50, p95, p99 = percentiles(samples_ms)
        ratio = f"{p50 / reference:6.1f}x" if reference else ""
        self.rows.append((name, len(samples_ms), p50, p95, p99, ratio))
        return p50

    def print(self, title: str) -> None:
        width = max(len(r[0]) for r in self.rows)
        print(f"\n{title}")
        header = (
            f"{'case':<{width}}  {'n':>4}  {'p50 ms':>8}  {'p95 ms':>8}  {'p99 ms':>8}  p50 ratio"
        )
        print(header)
        print("-" * len(header))
        for name, n, p50, p95, p99, ratio in self.rows:
            print(f"{name:<{width}}  {n:>4}  {p50:8.2f}  {p95:8.2f}  {p99:8.2f}  {ratio}")


def timed(call: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = call()
    return (time.perf_counter() - start) * 1000, value


def api_walks(client: TestClient, query: str, requests: int) -> tuple[list[float], list[str]]:
    """Time ``requests`` GETs as walks of PAGES_PER_WALK pages; return times and cursors."""
    samples: list[float] = []
    cursors: list[str] = []
    while len(samples) < requests:
        cursor = None
        for _ in range(PAGES_PER_WALK):
            url = f"/v1/results?{query}" + (f"&cursor={cursor}" if cursor else "")
            elapsed, response = timed(lambda url=url: client.get(url))
            assert response.status_code == 200, response.text
            samples.append(elapsed)
            cursor = response.json()["next_cursor"]
            if cursor is None or len(samples) >= requests:
                break
            cursors.append(cursor)
    return samples, cursors


def sql_of(query: str, cursor: str | None = None, offset: int | None = None) -> str:
    """The store's SQL for a query string, with literal values (for psql and EXPLAIN)."""
    pairs = [tuple(p.split("=", 1)) for p in query.split("&")]
    if cursor:
        pairs.append(("cursor", cursor))
    statement = results_store.page_statement(parse_list_query(pairs, 10**9))
    if offset is not None:
        statement = statement.offset(offset)
    return str(
        statement.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
    )


def time_sql(connection: psycopg.Connection, statements: list[str], rounds: int) -> list[float]:
    samples = []
    for _ in range(rounds):
        for statement in statements:
            elapsed, _ = timed(lambda s=statement: connection.execute(s).fetchall())
            samples.append(elapsed)
    return samples


def load_postgres(url: str, rows: int) -> None:
    with psycopg.connect(libpq(url), autocommit=True) as connection:
        definitions = [
            (name, definition)
            for name, definition in connection.execute(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'trials' "
                "AND schemaname = current_schema() AND indexname NOT IN ('pk_trials', "
                "'uq_trials_key')"
            )
        ]
        for name, _ in definitions:
            connection.execute(f'DROP INDEX "{name}"')
        configs = -(-rows // 14)
        sql = LOAD_SQL.replace(":configs", str(configs)).replace(":rows", str(rows))
        connection.execute("SELECT setseed(0.42)")
        elapsed, _ = timed(lambda: connection.execute(sql))
        print(f"loaded {rows:,} trials in {elapsed / 1000:.1f} s", flush=True)
        start = time.perf_counter()
        for _, definition in definitions:
            connection.execute(definition)
        # One sweep holding every 10th trial, for the sweep_id query shape.
        connection.execute(
            "INSERT INTO sweeps (id, name, workload, submitter, priority, tags, spec, spec_hash,"
            " trial_count, cached_count, cancel_requested, created_at) VALUES ('bench', "
            "'bench', 'dln', 'bench', 0, '[]', '{}', 'x', 0, 0, false, now())"
        )
        connection.execute(
            "INSERT INTO sweep_trials (sweep_id, trial_id, cached) "
            "SELECT 'bench', id, false FROM trials WHERE id % 10 = 0"
        )
        connection.execute("VACUUM ANALYZE trials")
        connection.execute("VACUUM ANALYZE sweep_trials")
        print(f"indexes rebuilt, sweep linked, analyzed in {time.perf_counter() - start:.1f} s")
        regimes = connection.execute(
            "SELECT regime_theory, count(*) FROM trials GROUP BY 1 ORDER BY 1"
        ).fetchall()
        print("theory regimes:", ", ".join(f"{r or 'NULL'}={n:,}" for r, n in regimes))


def bench_api(url: str, requests: int, table: Table, label: str) -> list[str]:
    app = create_app(Settings(database_url=url), start_dispatcher=False, migrate=False)
    with TestClient(app) as client:
        api_walks(client, QUERY, 20)  # warm up: caches, prepared statements
        samples, cursors = api_walks(client, QUERY, requests)
        table.add(f"{label} API  {QUERY} (pages 1-{PAGES_PER_WALK})", samples)
        for query in OTHER_QUERIES:
            query = query.replace("SWEEP", "sweep_id=bench")
            if "sweep_id" in query and label == "sqlite":
                continue
            api_walks(client, query, 5)
            samples, _ = api_walks(client, query, 50)
            table.add(f"{label} API  {query}", samples)
    return cursors


def bench_postgres(url: str, rows: int, requests: int) -> tuple[Table, list[str]]:
    table = Table()
    load_postgres(url, rows)
    cursors = bench_api(url, requests, table, "pg")
    page_cursors = [None, *cursors[: PAGES_PER_WALK - 1]]
    keyset = [sql_of(QUERY, c) for c in page_cursors]
    offset = [sql_of(QUERY, offset=100 * page) for page in range(PAGES_PER_WALK)]
    # A deep page: the last one the filter reaches, by keyset and by OFFSET.
    with psycopg.connect(libpq(url)) as connection:
        deep_sql, deep_offset = _deep_page(connection)
        reference = table.add(
            f"pg SQL keyset, pages 1-{PAGES_PER_WALK}", time_sql(connection, keyset, 40)
        )
        table.add(
            f"pg SQL OFFSET, pages 1-{PAGES_PER_WALK}", time_sql(connection, offset, 40), reference
        )
        table.add(
            f"pg SQL keyset, deep page (row {deep_offset:,})",
            time_sql(connection, [deep_sql], 40),
            reference,
        )
        offset_deep = sql_of(QUERY, offset=deep_offset)
        table.add(
            f"pg SQL OFFSET {deep_offset:,}", time_sql(connection, [offset_deep], 20), reference
        )
        for name in REGIME_INDEXES:
            connection.execute(f'DROP INDEX "{name}"')
        table.add(
            "pg SQL keyset, pages 1-5, regime indexes dropped",
            time_sql(connection, keyset, 10),
            reference,
        )
        table.add(
            "pg SQL keyset, deep page, regime indexes dropped",
            time_sql(connection, [deep_sql], 10),
            reference,
        )
        connection.rollback()  # the indexes are back, unrebuilt
        explain = [
            "EXPLAIN (ANALYZE, BUFFERS) — page 1 of the benchmarked query:",
            *_explain(connection, keyset[0]),
            f"EXPLAIN (ANALYZE, BUFFERS) — deep page (row {deep_offset:,}), keyset:",
            *_explain(connection, deep_sql),
        ]
    return table, explain


def _deep_page(connection: psycopg.Connection) -> tuple[str, int]:
    """The keyset SQL of the last page of QUERY, and how many rows precede it."""
    everything = sql_of(QUERY.replace("limit=100", "limit=100000000"))
    ids = [row[0] for row in connection.execute(everything).fetchall()]
    depth = max(0, (len(ids) - 1) // 100 * 100)
    if depth == 0:
        return sql_of(QUERY), 0
    from service.store.result_filters import encode_cursor

    pairs = [tuple(p.split("=", 1)) for p in QUERY.split("&")]
    query = parse_list_query(pairs, 10**9)
    cursor = encode_cursor(query, ids[depth - 1], ids[depth - 1])
    return sql_of(QUERY, cursor), depth


def _explain(connection: psycopg.Connection, sql: str) -> list[str]:
    return [f"    {line}" for (line,) in connection.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")]


def bench_sqlite(pg_url: str, rows: int, requests: int) -> Table:
    table = Table()
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/bench.db"
        upgrade_to_head(url)
        source = create_engine(pg_url)
        target = create_engine(url)
        columns = [c for c in Trial.__table__.columns if c.name != "id"]
        start = time.perf_counter()
        with source.connect() as read, target.begin() as write:
            result = read.execute(
                text(
                    "SELECT "
                    + ", ".join(f'"{c.name}"' for c in columns)
                    + f" FROM trials ORDER BY id LIMIT {rows}"
                )
            )
            while batch := result.fetchmany(20_000):
                write.execute(
                    insert(Trial.__table__),
                    [dict(zip(Trial.__table__.c.keys()[1:], r, strict=True)) for r in batch],
                )
            write.execute(text("ANALYZE"))
        source.dispose()
        target.dispose()
        print(f"\ncopied {rows:,} trials into SQLite in {time.perf_counter() - start:.1f} s")
        bench_api(url, requests, table, "sqlite")
    return table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--sqlite-rows", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--url", default=os.environ.get("SWEEPS_BENCH_POSTGRES_URL", DEFAULT_URL))
    args = parser.parse_args()

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(libpq(args.url), autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
    url = with_schema(args.url, schema)
    try:
        upgrade_to_head(url)
        table, explain = bench_postgres(url, args.rows, args.requests)
        table.print(f"PostgreSQL, {args.rows:,} trials (p50 ratio vs. 'pg SQL keyset')")
        print("", *explain, sep="\n")
        if args.sqlite_rows:
            bench_sqlite(url, min(args.sqlite_rows, args.rows), args.requests).print(
                f"SQLite, {min(args.sqlite_rows, args.rows):,} trials (information)"
            )
        p95 = table.rows[0][3]
        verdict = "meets" if p95 < 50 else "MISSES"
        print(f"\nPostgreSQL API p95 {p95:.1f} ms {verdict} the 50 ms target")
    finally:
        with psycopg.connect(libpq(args.url), autocommit=True) as admin:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
