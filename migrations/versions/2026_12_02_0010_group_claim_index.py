"""index of trials by group key and status, for claims that take whole groups

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 19:30:00

A claim takes every pending trial of each group it touches (trials of one group key
share a dataset or a theory curve: ``service/store/claims.py`` ``whole_groups``).  This
index makes that lookup a range scan per group, not a scan of the owner's queue.
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_trials_group_status", "trials", ["group_key", "status"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_trials_group_status", table_name="trials")
