"""index of succeeded trials still waiting for their replica value

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 03:00:00

The dispatcher's theory reconciler looks, every few seconds, for succeeded trials whose
shared replica value (``gen_error_asymptotic``) is missing because the batch asked to
compute it failed, was cancelled or was lost with its dispatcher.  A partial index keeps
that query at the size of what is missing (usually nothing), not of the whole table.
SQLite and PostgreSQL both support partial indexes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_WHERE = "status = 'succeeded' AND gen_error_asymptotic IS NULL AND theory_key IS NOT NULL"


def upgrade() -> None:
    op.create_index(
        "ix_trials_missing_theory",
        "trials",
        ["theory_key"],
        unique=False,
        sqlite_where=sa.text(_WHERE),
        postgresql_where=sa.text(_WHERE),
    )


def downgrade() -> None:
    op.drop_index("ix_trials_missing_theory", table_name="trials")
