"""A live server per test (real app, real SQLite, real HTTP) and a config file that
belongs to the test, so that no developer's ``sweeps login`` leaks in."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.live_server import live_app_url


@pytest.fixture(autouse=True)
def private_config(tmp_path, monkeypatch):
    monkeypatch.setenv("SWEEPS_CONFIG", str(tmp_path / "config.toml"))
    for name in ("SWEEPS_URL", "SWEEPS_API_KEY", "SWEEPS_SUBMITTER"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "config.toml"


@pytest.fixture
def live_url(sqlite_url) -> Iterator[str]:
    with live_app_url(sqlite_url) as url:
        yield url
