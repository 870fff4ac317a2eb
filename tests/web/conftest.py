"""Headless Chromium for the page's tests: Debian's ``chromium`` driven by Playwright for
Python through ``executable_path`` (Playwright's own browser download is never used).
Mandatory under CI=true (``scripts/test.sh`` installs chromium when it is missing);
elsewhere the tests skip with the reason."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ON_CI

CHROMIUM = os.environ.get("SWEEPS_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[dev]')"
    if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        return f"no chromium at {CHROMIUM} (apt-get install -y chromium)"
    return None


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    problem = _missing()
    if problem:
        message = f"browser tests need headless Chromium: {problem}; mandatory under CI=true"
        if ON_CI:
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    executable = CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def screenshot_dir() -> Path:
    """Where the page tests save screenshots (``SWEEPS_SCREENSHOT_DIR`` or a temp dir)."""
    folder = Path(os.environ.get("SWEEPS_SCREENSHOT_DIR") or tempfile.mkdtemp(prefix="sweeps-"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder
