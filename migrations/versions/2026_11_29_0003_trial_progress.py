"""progress of running trials

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 14:00:00

``trials.progress`` holds the latest progress report of a running nonlinear trial
(phase, step, epoch, loss, timestamps), written by the dispatcher about once a second
from what the workers report, and shown by ``GET /v1/sweeps/{id}``.  A nullable JSON
column without an index: it is read only for the running trials of one sweep.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("trials", schema=None) as batch_op:
        batch_op.add_column(sa.Column("progress", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("trials", schema=None) as batch_op:
        batch_op.drop_column("progress")
