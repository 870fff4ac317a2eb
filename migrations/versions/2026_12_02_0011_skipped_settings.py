"""sweeps.skipped_settings: the settings a spec with on_invalid: skip left out

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 20:00:00

A spec with ``on_invalid: skip`` (issue 17) leaves out the settings its workload refuses
(``lambda_pt = -1`` with ``gamma_ft = 0``) instead of rejecting the whole sweep.  Which
ones, and why, is written with the sweep at submit: a JSON list of ``{params, reason,
loc, type, trials}`` (NULL: nothing was skipped), read back by ``GET /v1/sweeps/{id}``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sweeps", schema=None) as batch_op:
        batch_op.add_column(sa.Column("skipped_settings", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sweeps", schema=None) as batch_op:
        batch_op.drop_column("skipped_settings")
