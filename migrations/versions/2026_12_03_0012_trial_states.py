"""trial_states: where a trial run in legs continues from

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 13:00:00

A ``dln_finetune`` sweep with ``execution.leg_steps`` trains each trial at most that
many steps per batch (issue 16: a convergence-aware runner).  A trial whose leg ends
unfinished goes back to pending, and the state its next leg continues from is kept here:
the step, the ``GDState`` blob (an .npz of float64 arrays), the compute seconds and the
number of legs so far.  One row per trial at most; it goes with the trial's result.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "trial_states",
        sa.Column("trial_id", BigId, nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("state", sa.LargeBinary(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("legs", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["trial_id"],
            ["trials.id"],
            name=op.f("fk_trial_states_trial_id_trials"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("trial_id", name=op.f("pk_trial_states")),
    )


def downgrade() -> None:
    op.drop_table("trial_states")
