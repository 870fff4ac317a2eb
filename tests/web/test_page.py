"""The web page in headless Chromium against the real app and a real dispatcher: loads
with no console errors, the progress header moves while a sweep runs, a figure renders,
a column filter and a sort change the table, and export downloads a file."""

from __future__ import annotations

import csv
import time

import httpx
import pyarrow.parquet as pq
import pytest

from service.app import create_app
from service.auth.bootstrap import create_user_with_key
from service.dispatch import Dispatcher
from service.runners import InlineRunner
from service.settings import AuthSettings, DispatchSettings, LiveSettings, Settings
from tests.live import serve
from tests.service.factories import small_finetune_spec

# 3 λ_PT × 2 γ_FT × 4 seeds = 24 trials, run two at a time: a few seconds of progress.
SPEC = small_finetune_spec(
    name="page", axes={"lambda_pt": [-0.5, 0.0, 0.5], "gamma_ft": [0.1, 1.0]}, seeds=4
)
SPEC["params"] = {k: v for k, v in SPEC["params"].items() if k != "gamma_ft"}
TOTAL = 24


@pytest.fixture
def live_app(sqlite_url):
    settings = Settings(
        database_url=sqlite_url,
        dispatch=DispatchSettings(batch_size=2, max_inflight_batches=1, poll_seconds=0.05),
        live=LiveSettings(poll_seconds=0.1),
    )
    app = create_app(settings, runner=InlineRunner(), start_dispatcher=False)
    with serve(app) as base:
        yield app, settings, base


def watch_console(page) -> list[str]:
    problems: list[str] = []
    page.on(
        "console", lambda m: problems.append(f"{m.type}: {m.text}") if m.type == "error" else None
    )
    page.on("pageerror", lambda error: problems.append(f"pageerror: {error}"))
    page.on(
        "response",
        lambda r: problems.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None,
    )
    return problems


def rows(page) -> list[dict[str, str]]:
    """The trial table as {column: text} per row."""
    return page.evaluate(
        """() => {
          const heads = [...document.querySelectorAll(
            '#trial-table .titles th, #explorer .titles th')].map((th) => th.dataset.column);
          return [...document.querySelectorAll('table.results tbody tr')]
            .filter((tr) => tr.children.length > 1)
            .map((tr) => Object.fromEntries(
              [...tr.children].map((td, i) => [heads[i], td.textContent])));
        }"""
    )


class PacedRunner(InlineRunner):
    """In-process batches, each held a moment before it runs: a batch of this small spec
    takes milliseconds, so without the pause the sweep can end between two reads of the
    page and the header is never seen moving (the runs on a busy 2-core CI machine)."""

    def submit(self, workload, trials, theory_wanted, gpus, *, theory_only=False):  # noqa: ANN001, ANN201
        time.sleep(0.2)
        return super().submit(workload, trials, theory_wanted, gpus, theory_only=theory_only)


def test_sweep_page_moves_filters_sorts_and_exports(browser, live_app, screenshot_dir, tmp_path):
    app, settings, base = live_app
    sweep_id = httpx.post(f"{base}/v1/sweeps", json=SPEC).json()["id"]
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    problems = watch_console(page)

    page.goto(f"{base}/")
    page.wait_for_selector(f'table.sweeps tr[data-id="{sweep_id}"]')
    page.goto(f"{base}/#/sweeps/{sweep_id}")
    page.wait_for_selector("#trial-table tbody tr td")
    assert page.inner_text('[data-count="pending"]') == str(TOTAL)

    dispatcher = Dispatcher(app.state.session_factory, settings, PacedRunner())
    dispatcher.start()
    try:
        seen: list[int] = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            seen.append(int(page.inner_text('[data-count="succeeded"]')))
            if page.inner_text(".badge.status") == "succeeded":
                break
            time.sleep(0.05)
    finally:
        dispatcher.stop()
    moving = sorted({value for value in seen if 0 < value < TOTAL})
    assert len(moving) >= 2, f"the header did not move while the sweep ran: {seen[:50]}"
    assert page.inner_text('[data-count="succeeded"]') == str(TOTAL)
    assert page.inner_text('[data-field="eta"]') == "done"

    # The figure was redrawn as results landed: the one shown is as of the last event.
    page.wait_for_function(
        """() => document.querySelector('#figure').naturalWidth > 0 &&
                 document.querySelector('.figure-note').textContent ===
                 'as of event ' + document.querySelector('[data-field="seq"]').textContent""",
        timeout=30000,
    )
    page.wait_for_selector("#report table")
    page.wait_for_function(
        f"() => document.querySelectorAll('#trial-table tbody tr').length === {TOTAL}"
    )
    page.screenshot(path=str(screenshot_dir / "sweep-page.png"), full_page=True)

    # A column filter re-queries the server: only λ_PT < 0 remains.
    page.fill('#trial-table input[data-column="lambda_pt"]', "<0")
    page.wait_for_function(
        "() => document.querySelectorAll('#trial-table tbody tr').length === 8", timeout=10000
    )
    assert {row["lambda_pt"] for row in rows(page)} == {"-0.5000"}
    # Sorting on a typed result column: descending E_gen.
    page.click('#trial-table th[data-column="gen_error_sim"]')
    page.click('#trial-table th[data-column="gen_error_sim"]')
    page.wait_for_selector('#trial-table th[data-column="gen_error_sim"].desc')
    page.wait_for_timeout(500)
    values = [float(row["gen_error_sim"]) for row in rows(page)]
    assert values == sorted(values, reverse=True) and len(values) == 8

    # The explorer: the same syntax in the filter box, and an export of what it shows.
    page.goto(f"{base}/#/results?sweep_id={sweep_id}&gamma_ft_gt=0.5")
    page.wait_for_function(
        "() => document.querySelectorAll('#explorer tbody tr').length === 12", timeout=10000
    )
    page.screenshot(path=str(screenshot_dir / "results-explorer.png"))
    with page.expect_download() as info:
        page.click('.exports button[data-format="csv"]')
    target = tmp_path / "results.csv"
    info.value.save_as(target)
    with target.open() as handle:
        exported = list(csv.DictReader(handle))
    assert len(exported) == 12 and all(float(row["gamma_ft"]) > 0.5 for row in exported)
    with page.expect_download() as info:
        page.click('.exports button[data-format="parquet"]')
    assert info.value.suggested_filename.endswith(".parquet")
    info.value.save_as(tmp_path / "results.parquet")
    assert pq.read_table(tmp_path / "results.parquet").num_rows == 12
    page.close()
    assert not problems, problems


def test_sweeps_list_shows_live_progress(browser, live_app, screenshot_dir):
    app, settings, base = live_app
    sweep_id = httpx.post(f"{base}/v1/sweeps", json=SPEC).json()["id"]
    page = browser.new_page(viewport={"width": 1400, "height": 700})
    problems = watch_console(page)
    page.goto(f"{base}/")
    row = f'table.sweeps tr[data-id="{sweep_id}"]'
    page.wait_for_selector(row)
    assert page.inner_text(f"{row} .pct") == "0%"
    dispatcher = Dispatcher(app.state.session_factory, settings, InlineRunner())
    dispatcher.start()
    try:
        page.wait_for_function(
            f"() => document.querySelector('{row} .badge').textContent === 'succeeded'",
            timeout=120000,
        )
    finally:
        dispatcher.stop()
    assert page.inner_text(f"{row} .pct") == "100%"
    page.screenshot(path=str(screenshot_dir / "sweeps-list.png"))
    page.close()
    assert not problems, problems


def test_with_auth_on_the_page_asks_for_a_key_and_then_streams_with_it(
    browser, sqlite_url, screenshot_dir
):
    # A shared deployment: every API call needs a key.  The page (static, open) shows the
    # key prompt on the first 401, sends the pasted key as Authorization: Bearer on every
    # fetch and on the event stream, never in a URL, and asks again for a wrong key.
    settings = Settings(
        database_url=sqlite_url,
        auth=AuthSettings(enabled=True),
        dispatch=DispatchSettings(batch_size=2, max_inflight_batches=1, poll_seconds=0.05),
        live=LiveSettings(poll_seconds=0.1),
    )
    key = create_user_with_key(settings, "ada").key
    app = create_app(settings, runner=InlineRunner(), start_dispatcher=False)
    with serve(app) as base:
        headers = {"Authorization": f"Bearer {key}"}
        sweep_id = httpx.post(f"{base}/v1/sweeps", json=SPEC, headers=headers).json()["id"]
        page = browser.new_page(viewport={"width": 1400, "height": 700})
        urls: list[str] = []
        bearer: list[str] = []
        page.on("request", lambda r: urls.append(r.url))
        page.on(
            "request",
            lambda r: bearer.append(r.url) if r.headers.get("authorization") else None,
        )
        page.goto(f"{base}/")
        page.wait_for_selector("#key-banner:not([hidden])")
        page.fill("#key-input", "sk_wrong_" + "x" * 30)
        page.click("#key-save")
        page.wait_for_selector("#key-banner:not([hidden])")  # refused: asked again
        page.fill("#key-input", key)
        page.click("#key-save")
        row = f'table.sweeps tr[data-id="{sweep_id}"]'
        page.wait_for_selector(row)
        assert page.is_hidden("#key-banner")
        page.click(f"{row} a")
        dispatcher = Dispatcher(app.state.session_factory, settings, InlineRunner())
        dispatcher.start()
        try:  # the sweep's own view follows the event stream, which needs the key too
            page.wait_for_function(
                "() => (document.querySelector('#view').textContent || '').includes('succeeded')",
                timeout=120000,
            )
        finally:
            dispatcher.stop()
        page.screenshot(path=str(screenshot_dir / "with-auth.png"))
        page.close()
    assert not [url for url in urls if key in url], "the key leaked into a URL"
    assert any(f"/v1/sweeps/{sweep_id}/events" in url for url in bearer), bearer
