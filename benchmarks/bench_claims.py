"""The fair-share claim on PostgreSQL, against the plain priority claim, in one run.

Loads ``--rows`` pending trials (default 1,000,000) owned by ``--users`` users (default
50) into a fresh schema with ``INSERT … SELECT generate_series`` (uneven queues: user i
holds a share proportional to i+1), then times ``transitions.claim_pending`` for
``--limit`` trials (default 512, a round of the default dispatcher) both ways.  Each claim
runs in a transaction that is rolled back, so every sample sees the same million rows.

It also measures what authentication adds to ``GET /v1/results?limit=100`` (p50 over
``--requests`` requests through the real app, auth on with a valid key vs auth off, same
database, interleaved).

    .venv/bin/python benchmarks/bench_claims.py [--rows 1000000] [--users 50]

Targets (issue "A lab-shared service"): fair-share claim p95 < 20 ms; auth < 1 ms p50.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("OMP_NUM_THREADS", "1")

import warnings  # noqa: E402

# Starlette deprecates TestClient over httpx in favour of httpx2; the app is the same.
warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import select  # noqa: E402

from benchmarks.bench_query import libpq, with_schema  # noqa: E402
from service.app import create_app  # noqa: E402
from service.auth.bootstrap import create_user_with_key  # noqa: E402
from service.settings import AuthSettings, Settings  # noqa: E402
from service.store import transitions  # noqa: E402
from service.store.claims import ClaimPolicy, fair_candidates  # noqa: E402
from service.store.migrate import upgrade_to_head  # noqa: E402
from service.store.models import Trial  # noqa: E402
from service.store.session import make_engine, make_session_factory  # noqa: E402

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"

LOAD = """
INSERT INTO users (id, name, kind, is_admin, disabled, share, usage, usage_at, created_at)
SELECT md5('u' || u), 'user' || u, 'user', false, false, 1.0, (u * 37) %% 500, now(), now()
FROM generate_series(0, %(users)s - 1) AS u;
INSERT INTO trials (key, workload, params, execution, batch_key, group_key, status, priority,
                    attempts, created_at, owner, claim_rank, alpha, seed, gen_error_sim)
SELECT md5(g::text), 'dln_theory', '{}', '{}', 'b', 'g' || (g / 8), 'pending',
       (g %% 3) - 1, 0, now(),
       'user' || floor(sqrt((g::float8 / %(rows)s) * %(users)s * %(users)s))::int %% %(users)s,
       1000 + (100 - ((g %% 3) - 1)), 0.3, g %% 14, 0.5
FROM generate_series(0, %(rows)s - 1) AS g;
ANALYZE trials;
ANALYZE users;
"""


def quantiles(samples: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return cuts[49], cuts[94]


def plain_candidates(session, limit: int) -> list[int]:  # noqa: ANN001
    """The plain claim's selection (what ``claim_pending`` runs without fair share)."""
    statement = (
        select(Trial.id)
        .where(Trial.status == "pending")
        .order_by(Trial.priority.desc(), Trial.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list(session.scalars(statement))


def time_claims(
    url: str, limit: int, rounds: int, policy: ClaimPolicy | None, *, select_only: bool
) -> list[float]:
    """Milliseconds per claim (``select_only``: the choice of trials, without the status
    write), each in a transaction that is rolled back."""
    engine = make_engine(url)
    factory = make_session_factory(engine)
    samples = []
    for _ in range(rounds + 3):
        session = factory()
        try:
            started = time.perf_counter()
            if select_only and policy is None:
                claimed = plain_candidates(session, limit)
            elif select_only:
                claimed, _, _ = fair_candidates(
                    session, limit, policy, datetime.now(UTC), postgres=True
                )
            else:
                claimed = transitions.claim_pending(
                    session, "bench", limit, 60, postgres=True, fair_share=policy
                )
            samples.append((time.perf_counter() - started) * 1e3)
            # The whole claim takes whole groups (8 trials each here): about ``limit``.
            assert len(claimed) == limit if select_only else claimed, len(claimed)
        finally:
            session.rollback()
            session.close()
    engine.dispose()
    return samples[3:]  # the first few warm the connection pool and the plan cache


def time_results(url: str, requests: int) -> tuple[float, float]:
    """p50 of GET /v1/results with auth off and on (valid key), interleaved."""
    key = create_user_with_key(Settings(database_url=url), "bench-admin", admin=True).key
    off = create_app(Settings(database_url=url), start_dispatcher=False, migrate=False)
    on = create_app(
        Settings(database_url=url, auth=AuthSettings(enabled=True)),
        start_dispatcher=False,
        migrate=False,
    )
    params = {"status": "any", "limit": 100, "alpha_ge": 0.3}
    timings: dict[str, list[float]] = {"off": [], "on": []}
    with TestClient(off) as plain, TestClient(on) as guarded:
        guarded.headers["Authorization"] = f"Bearer {key}"
        for i in range(requests + 10):
            for name, client in (("off", plain), ("on", guarded)):
                started = time.perf_counter()
                response = client.get("/v1/results", params=params)
                elapsed = (time.perf_counter() - started) * 1e3
                assert response.status_code == 200, response.text
                if i >= 10:
                    timings[name].append(elapsed)
    return statistics.median(timings["off"]), statistics.median(timings["on"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--limit", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--url", default=os.environ.get("SWEEPS_BENCH_POSTGRES_URL", DEFAULT_URL))
    args = parser.parse_args()
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(libpq(args.url), autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
    url = with_schema(args.url, schema)
    try:
        upgrade_to_head(url)
        started = time.perf_counter()
        with psycopg.connect(libpq(url), autocommit=True) as connection:
            for statement in LOAD.split(";"):
                if statement.strip():
                    connection.execute(statement, {"rows": args.rows, "users": args.users})
        print(
            f"loaded {args.rows:,} pending trials of {args.users} users "
            f"in {time.perf_counter() - started:.0f} s"
        )
        policy = ClaimPolicy(half_life_s=7 * 86400)
        print(f"\nPostgreSQL, {args.rows:,} pending trials, {args.users} users (ms)")
        print(f"{'what':<44}{'p50':>8}{'p95':>8}{'p95 ratio':>11}")
        fair_select_p95 = float("nan")
        for limit in sorted({64, args.limit}):
            for select_only, what in ((True, "choose"), (False, "claim (choose + write)")):
                # plain, fair, plain again: the baseline brackets the contender in time
                plain = time_claims(url, limit, args.rounds, None, select_only=select_only)
                fair = time_claims(url, limit, args.rounds, policy, select_only=select_only)
                plain += time_claims(url, limit, args.rounds, None, select_only=select_only)
                base = quantiles(plain)
                for name, samples in (("plain", plain), ("fair-share", fair)):
                    p50, p95 = quantiles(samples)
                    label = f"{what}, {limit} trials, {name}"
                    print(f"{label:<44}{p50:>8.2f}{p95:>8.2f}{p95 / base[1]:>10.2f}×")
                if select_only and limit == args.limit:
                    fair_select_p95 = quantiles(fair)[1]
        verdict = "meets" if fair_select_p95 < 20 else "MISSES"
        print(
            f"fair-share choice of {args.limit} trials: p95 {fair_select_p95:.1f} ms "
            f"{verdict} the 20 ms target"
        )
        off, on = time_results(url, args.requests)
        print(
            f"\nGET /v1/results?limit=100 p50: auth off {off:.2f} ms, auth on {on:.2f} ms, "
            f"added {on - off:+.2f} ms ({'meets' if on - off < 1 else 'MISSES'} < 1 ms)"
        )
    finally:
        with psycopg.connect(libpq(args.url), autocommit=True) as admin:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
