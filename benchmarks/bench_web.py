"""Benchmark the web page on a large store, measured in headless Chromium.

PostgreSQL (``SWEEPS_BENCH_POSTGRES_URL``, default the local test database), in a schema
of its own that is dropped at the end:

1. ``alembic upgrade head``, then ``--rows`` trials loaded server-side with the same
   ``INSERT … SELECT`` over ``generate_series`` as ``bench_query.py`` (97 % succeeded),
   as workload ``dln_finetune``, all linked to one sweep; its event sequence is a
   ``created`` event, one ``results`` event per 500 trials (the ids listed, as the
   dispatcher writes them) and ``done``.
2. The real app (uvicorn, no dispatcher) and Debian's chromium through Playwright. Per
   repeat, on a fresh page:
   - sweep page, first render: navigation until the progress header shows the counts
     and the first table page is drawn (the event stream replayed to ``done``);
   - sweep page, figure and report: until the server-rendered scatter (aggregated per
     config on the server) and the agreement report are shown;
   - filter change: a range filter typed in the filter box and applied, until the table
     shows the new page; then a sort change (click on a column title);
   - results explorer, first render; sweeps list, first render.
3. The requests behind the page one at a time, without the browser.

The first round is reported apart ("cold": a new browser, and figures and reports not yet
in the render cache, ``service/figures/cache.py``); the median, min and max are over the
``--repeats`` rounds after it.

    .venv/bin/python benchmarks/bench_web.py [--rows 100000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import httpx  # noqa: E402
import psycopg  # noqa: E402
from bench_query import DEFAULT_URL, LOAD_SQL, libpq, with_schema  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

from service.app import create_app  # noqa: E402
from service.figures.cache import RENDERINGS  # noqa: E402
from service.settings import Settings  # noqa: E402
from service.store.migrate import upgrade_to_head  # noqa: E402
from tests.live import serve  # noqa: E402
from tests.web.conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402

SWEEP = "web"
SPEC = {
    "name": "bench-web",
    "workload": "dln_finetune",
    "params": {"D": 1000, "alpha": 0.5, "rho_pt": 0.1, "rho_ft": 0.1, "omega": 0.5},
    "axes": {"c_pt": [1e-6, 1.0], "lambda_pt": [-1.0, 1.0], "gamma_ft": [1e-6, 10.0]},
    "seeds": 14,
}
FILTER = "lambda_pt_lt=-0.5&regime_theory=IV"


def load(url: str, rows: int) -> None:
    with psycopg.connect(libpq(url), autocommit=True) as connection:
        sql = LOAD_SQL.replace(":configs", str(-(-rows // 14))).replace(":rows", str(rows))
        sql = sql.replace(
            "SELECT md5(g || '/' || seed), 'dln',", "SELECT md5(g || '/' || seed), 'dln_finetune',"
        )
        connection.execute("SELECT setseed(0.42)")
        start = time.perf_counter()
        connection.execute(sql)
        # A finished sweep: the 1 % the loader leaves pending count as failed here.
        connection.execute(
            "UPDATE trials SET workload = 'dln_finetune', status = 'failed', "
            "error = 'bench', finished_at = now() WHERE status = 'pending'"
        )
        connection.execute(
            "INSERT INTO sweeps (id, name, workload, submitter, priority, tags, spec, spec_hash,"
            " trial_count, cached_count, cancel_requested, created_at) VALUES "
            "(%s, 'bench-web', 'dln_finetune', 'bench', 0, '[]', %s, 'x', %s, 0, false, now())",
            (SWEEP, json.dumps(SPEC), rows),
        )
        connection.execute(
            "INSERT INTO sweep_trials (sweep_id, trial_id, cached) "
            "SELECT %s, id, false FROM trials",
            (SWEEP,),
        )
        ids = [row[0] for row in connection.execute("SELECT id FROM trials ORDER BY id")]
        counts = dict(
            connection.execute("SELECT status, count(*) FROM trials GROUP BY 1").fetchall()
        )
        events = _events(ids, counts)
        with connection.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO events (sweep_id, kind, payload, created_at) VALUES (%s, %s, %s, %s)",
                [(SWEEP, kind, json.dumps(payload), at) for kind, payload, at in events],
            )
        connection.execute("VACUUM ANALYZE")
        print(
            f"loaded {rows:,} trials and {len(events)} events "
            f"in {time.perf_counter() - start:.1f} s"
        )


def _events(ids: list[int], final: dict[str, int]) -> list[tuple[str, dict, datetime]]:
    """created, one results event per 500 trials, done — the shape the dispatcher writes."""
    total = len(ids)
    now = datetime.now(UTC).timestamp()
    events = []
    counts = {"pending": total, "running": 0, "succeeded": 0, "failed": 0, "cancelled": 0}

    def payload(extra: dict) -> dict:
        done = total - counts["pending"] - counts["running"]
        status = "running" if done < total else "partial" if counts["failed"] else "succeeded"
        return {
            "counts": dict(counts),
            "total": total,
            "cached": 0,
            "progress": done / total,
            "throughput_per_s": 500.0,
            "eta_s": (total - done) / 500.0,
            "started_at": datetime.fromtimestamp(now - total / 500, UTC).isoformat(),
            "status": status,
            **extra,
        }

    start = now - total / 500
    events.append(
        (
            "created",
            payload({"name": "bench-web", "workload": "dln_finetune"}),
            datetime.fromtimestamp(start - 1, UTC),
        )
    )
    for offset in range(0, total, 500):
        chunk = ids[offset : offset + 500]
        counts["pending"] -= len(chunk)
        counts["succeeded"] += len(chunk)
        change = {"from": "running", "to": "succeeded", "count": len(chunk), "trial_ids": chunk}
        events.append(
            (
                "results",
                payload({"changes": [change]}),
                datetime.fromtimestamp(start + offset / 500, UTC),
            )
        )
    counts.update({k: final.get(k, 0) for k in counts})
    events.append(("done", payload({}), datetime.fromtimestamp(now, UTC)))
    return events


def measure(base: str, repeats: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {}

    def record(name: str, started: float) -> None:
        times.setdefault(name, []).append((time.perf_counter() - started) * 1000)
        print(f"  {name}: {times[name][-1]:.0f} ms", flush=True)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for _ in range(repeats + 1):  # the first round warms caches and is dropped
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            started = time.perf_counter()
            page.goto(f"{base}/#/sweeps/{SWEEP}")
            page.wait_for_function(
                "() => document.querySelector('[data-field=\"eta\"]')?.textContent === 'done'"
                " && document.querySelectorAll('#trial-table tbody tr td').length > 50",
                timeout=120_000,
            )
            record("sweep page: first render (header + first table page)", started)
            page.wait_for_function(
                "() => document.querySelector('#figure').naturalWidth > 0", timeout=300_000
            )
            record("sweep page: figure shown (scatter over every result)", started)
            page.wait_for_selector("#report table", timeout=300_000)
            record("sweep page: agreement report shown", started)

            first = page.inner_text("#trial-table tbody tr td")
            page.fill("#trial-table .query", FILTER)
            started = time.perf_counter()
            page.click("#trial-table .apply")
            page.wait_for_function(
                "(first) => { const td = document.querySelector('#trial-table tbody tr td');"
                " return td && td.textContent !== first; }",
                arg=first,
                timeout=60_000,
            )
            record(f"filter change ({FILTER})", started)
            first = page.inner_text("#trial-table tbody tr td")
            started = time.perf_counter()
            page.click('#trial-table th[data-column="gen_error_sim"]')
            page.wait_for_function(
                "(first) => { const td = document.querySelector('#trial-table tbody tr td');"
                " return td && td.textContent !== first; }",
                arg=first,
                timeout=60_000,
            )
            record("sort change (gen_error_sim, filtered)", started)

            started = time.perf_counter()
            page.goto(f"{base}/#/results")
            page.wait_for_function(
                "() => document.querySelectorAll('#explorer tbody tr td').length > 50"
            )
            record("results explorer: first render", started)
            started = time.perf_counter()
            page.goto(f"{base}/#/")
            page.wait_for_function(
                f"() => document.querySelector('tr[data-id=\"{SWEEP}\"] .pct')?.textContent"
                " === '100%'"
            )
            record("sweeps list: first render", started)
            page.close()
        browser.close()
    return times  # the first sample of each case is the cold one


def measure_api(base: str, repeats: int) -> dict[str, list[float]]:
    """The requests behind the page, one at a time (no browser, nothing concurrent)."""
    calls = {
        f"GET /v1/sweeps/{SWEEP}": f"/v1/sweeps/{SWEEP}",
        "GET events (replay to done)": f"/v1/sweeps/{SWEEP}/events",
        "GET /v1/results (sweep page 1)": f"/v1/results?sweep_id={SWEEP}&status=any&limit=50",
        "GET /v1/results (filtered)": f"/v1/results?sweep_id={SWEEP}&status=any&limit=50&{FILTER}",
        "GET scatter.svg (all results)": f"/v1/sweeps/{SWEEP}/figures/scatter.svg",
        "GET report": f"/v1/sweeps/{SWEEP}/report?worst=5",
    }
    times: dict[str, list[float]] = {}
    RENDERINGS.clear()  # the figure and report renderings the page cached
    with httpx.Client(base_url=base, timeout=600) as client:
        for name, path in calls.items():
            for _ in range(repeats + 1):
                started = time.perf_counter()
                assert client.get(path).status_code == 200, path
                times.setdefault(name, []).append((time.perf_counter() - started) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    url = os.environ.get("SWEEPS_BENCH_POSTGRES_URL", DEFAULT_URL)
    schema = f"bench_web_{uuid.uuid4().hex[:8]}"
    admin = create_engine(url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    scoped = with_schema(url, schema)
    try:
        upgrade_to_head(scoped)
        load(scoped, args.rows)
        app = create_app(Settings(database_url=scoped), start_dispatcher=False, migrate=False)
        with serve(app) as base:
            times = measure(base, args.repeats)
            api = measure_api(base, args.repeats)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
    times.update({f"API alone: {name}": samples for name, samples in api.items()})
    width = max(len(name) for name in times)
    print(f"\nweb page, {args.rows:,} results in the store (PostgreSQL), headless Chromium")
    header = f"{'case':<{width}}  {'cold ms':>8}  {'median ms':>9}  {'min ms':>8}  {'max ms':>8}"
    print(header)
    print("-" * len(header))
    for name, samples in times.items():
        cold, warm = samples[0], samples[1:]
        print(
            f"{name:<{width}}  {cold:8.0f}  {statistics.median(warm):9.0f}  "
            f"{min(warm):8.0f}  {max(warm):8.0f}"
        )
    print(
        "cold: the first time (new browser, empty figure/report cache); the others: "
        f"{args.repeats} repeats after it"
    )


if __name__ == "__main__":
    main()
