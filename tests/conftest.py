"""Shared fixtures: real databases (SQLite always, PostgreSQL when reachable — and
mandatory under CI=true), and the ``--skip-slow`` flag for local runs."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import torch

# Torch's default OpenMP threads spin-wait and stall on a busy 2-core machine.
torch.set_num_threads(1)

POSTGRES_URL = os.environ.get(
    "SWEEPS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
ON_CI = os.environ.get("CI") == "true"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--skip-slow", action="store_true", help="skip the slow end-to-end tests (CI runs them)"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("--skip-slow"):
        return
    skip = pytest.mark.skip(reason="slow end-to-end test; drop --skip-slow to run it")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def _postgres_reachable() -> str | None:
    """None when PostgreSQL answers, else the reason it does not."""
    from sqlalchemy import create_engine, text

    try:
        engine = create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        engine.dispose()
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        return f"{type(exc).__name__}: {str(exc).splitlines()[0]}"


_POSTGRES_PROBLEM: list[str | None] = []


def require_postgres() -> None:
    if not _POSTGRES_PROBLEM:
        _POSTGRES_PROBLEM.append(_postgres_reachable())
    problem = _POSTGRES_PROBLEM[0]
    if problem is None:
        return
    message = (
        f"PostgreSQL not reachable at {POSTGRES_URL} ({problem}): start it or set "
        "SWEEPS_TEST_POSTGRES_URL; these tests are mandatory under CI=true"
    )
    if ON_CI:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    from sqlalchemy import create_engine, text

    require_postgres()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in POSTGRES_URL else "?"
    yield f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
    with admin.begin() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'sweeps.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str:
    """Each store test runs on both backends (one behavioural suite, as in Optuna)."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("postgres_url")


@pytest.fixture(scope="session")
def ray_runner():
    """One real local Ray (2 CPUs) for every end-to-end test of the session."""
    from service.runners import RayRunner
    from service.settings import RaySettings

    runner = RayRunner(RaySettings(num_cpus=2))
    runner.start()
    yield runner
    runner.shutdown()
