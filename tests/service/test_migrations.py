"""Alembic is the only way tables are made, and it stays in lockstep with the ORM."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from service.store.migrate import downgrade_to_base, upgrade_to_head
from service.store.models import Base


def schema_diff(url: str) -> list:
    engine = create_engine(url)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    engine.dispose()
    return diff


def test_head_matches_the_models_and_round_trips(database_url: str) -> None:
    upgrade_to_head(database_url)
    assert schema_diff(database_url) == []
    downgrade_to_base(database_url)
    engine = create_engine(database_url)
    tables = set(inspect(engine).get_table_names()) - {"alembic_version"}
    engine.dispose()
    assert tables == set()
    upgrade_to_head(database_url)
    assert schema_diff(database_url) == []
