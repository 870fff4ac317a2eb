"""rounds of adaptive refinement on sweeps

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 04:00:00

A refine sweep (spec field ``refine``, issue 15) grows while it runs: the refinement
controller adds each round's points as trials of the same sweep.  ``sweeps.refine_round``
is the round it is in (0: the initial grid; NULL: not a refine sweep) and
``sweeps.refine_stop`` why refinement ended (resolution, budget, no_boundary,
cancelled, error; NULL while it refines, and the sweep is not succeeded until then).
A partial index keeps the controller's scan at the size of the sweeps still refining.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_WHERE = "refine_round IS NOT NULL AND refine_stop IS NULL"


def upgrade() -> None:
    with op.batch_alter_table("sweeps", schema=None) as batch_op:
        batch_op.add_column(sa.Column("refine_round", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("refine_stop", sa.String(length=16), nullable=True))
    op.create_index(
        "ix_sweeps_refining",
        "sweeps",
        ["id"],
        unique=False,
        sqlite_where=sa.text(_WHERE),
        postgresql_where=sa.text(_WHERE),
    )


def downgrade() -> None:
    op.drop_index("ix_sweeps_refining", table_name="sweeps")
    with op.batch_alter_table("sweeps", schema=None) as batch_op:
        batch_op.drop_column("refine_stop")
        batch_op.drop_column("refine_round")
