"""the event sequence of sweeps, and the sequence number of each trial's last change

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 03:10:00

``events`` is append-only: one row per (sweep, store transaction that changed it) —
sweep created, trials claimed / finished / requeued / cancelled / revived, results
updated, sweep done — written in the transaction that made the change
(``service/store/events.py``).  Its integer id is the sequence every API replica serves
as the SSE ``id:``; ``(sweep_id, id)`` makes "this sweep's events after N" one index range.

``trials.updated_seq`` is the id of the event that recorded the trial's latest change, so
``?since=N`` on results and trials is the index range ``updated_seq > N``.  Transitions
first write a negative per-transaction stamp there (it also encodes the source state);
the events writer replaces it with the event id before the commit.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", _BIG_ID, primary_key=True, autoincrement=True, nullable=False),
        sa.Column("sweep_id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["sweep_id"], ["sweeps.id"], name=op.f("fk_events_sweep_id_sweeps")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
    )
    op.create_index("ix_events_sweep_id_id", "events", ["sweep_id", "id"], unique=False)
    with op.batch_alter_table("trials", schema=None) as batch_op:
        batch_op.add_column(sa.Column("updated_seq", sa.BigInteger(), nullable=True))
        batch_op.create_index("ix_trials_updated_seq", ["updated_seq"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("trials", schema=None) as batch_op:
        batch_op.drop_index("ix_trials_updated_seq")
        batch_op.drop_column("updated_seq")
    op.drop_index("ix_events_sweep_id_id", table_name="events")
    op.drop_table("events")
