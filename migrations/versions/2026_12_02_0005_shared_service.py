"""a lab-shared service: users, API keys, audit log, per-owner idempotency, fair share

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 03:10:00

- ``users``: people and service accounts (and, with auth off, one row per submitter
  name), with fair-share weight, decayed usage and quota overrides;
- ``api_keys``: only the SHA-256 of a key is stored, beside its visible prefix, scopes,
  expiry, revocation and last use;
- ``audit_log``: append-only record of security-relevant actions;
- ``sweeps``: the Idempotency-Key becomes unique per submitter (it was global, so one
  user could replay another's key); ``priority_class`` and ``requested_gpu_seconds``;
- ``trials``: ``owner`` (whose queue a trial waits in) and ``claim_rank`` (its place in
  that queue), indexed for the fair-share claim.  Existing trials take their first
  sweep's submitter as owner.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("is_admin", sa.Boolean(), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("share", sa.Float(), nullable=False),
        sa.Column("usage", sa.Float(), nullable=False),
        sa.Column("usage_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("max_queued_trials", sa.Integer(), nullable=True),
        sa.Column("max_running_trials", sa.Integer(), nullable=True),
        sa.Column("gpu_seconds_per_window", sa.Float(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("name", name=op.f("uq_users_name")),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("prefix", sa.String(length=32), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=128), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_api_keys_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("prefix", name=op.f("uq_api_keys_prefix")),
        sa.UniqueConstraint("secret_hash", name=op.f("uq_api_keys_secret_hash")),
    )
    op.create_index(op.f("ix_api_keys_user_id"), "api_keys", ["user_id"], unique=False)
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=True),
        sa.Column("actor_kind", sa.String(length=16), nullable=True),
        sa.Column("client_address", sa.String(length=64), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("resource", sa.String(length=200), nullable=True),
        sa.Column("result_code", sa.Integer(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index(op.f("ix_audit_log_actor"), "audit_log", ["actor"], unique=False)
    op.create_index(op.f("ix_audit_log_action"), "audit_log", ["action"], unique=False)

    with op.batch_alter_table("sweeps", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "priority_class", sa.String(length=16), nullable=False, server_default="interactive"
            )
        )
        batch_op.add_column(
            sa.Column("requested_gpu_seconds", sa.Float(), nullable=False, server_default="0")
        )
        batch_op.drop_constraint("uq_sweeps_idempotency_key", type_="unique")
        batch_op.create_unique_constraint(
            "uq_sweeps_submitter_idempotency_key", ["submitter", "idempotency_key"]
        )
        batch_op.create_index(
            "ix_sweeps_submitter_created_at", ["submitter", "created_at"], unique=False
        )
    with op.batch_alter_table("trials", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("owner", sa.String(length=128), nullable=False, server_default="anonymous")
        )
        batch_op.add_column(
            sa.Column("claim_rank", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.create_index(
            "ix_trials_fair_claim", ["status", "owner", "claim_rank", "id"], unique=False
        )
        # ORDER BY priority DESC, id (the plain claim, and the head of the queue) as one
        # index range: with an ascending priority PostgreSQL sorted every pending trial.
        batch_op.drop_index("ix_trials_claim")
        batch_op.create_index(
            "ix_trials_claim", ["status", sa.text("priority DESC"), "id"], unique=False
        )
    # Existing trials wait in their first sweep's submitter's queue, in priority order.
    op.execute(
        "UPDATE trials SET owner = COALESCE((SELECT s.submitter FROM sweep_trials st "
        "JOIN sweeps s ON s.id = st.sweep_id WHERE st.trial_id = trials.id "
        "ORDER BY s.created_at LIMIT 1), 'anonymous'), "
        "claim_rank = 1000 + (100 - priority)"
    )


def downgrade() -> None:
    with op.batch_alter_table("trials", schema=None) as batch_op:
        batch_op.drop_index("ix_trials_claim")
        batch_op.create_index("ix_trials_claim", ["status", "priority", "id"], unique=False)
        batch_op.drop_index("ix_trials_fair_claim")
        batch_op.drop_column("claim_rank")
        batch_op.drop_column("owner")
    with op.batch_alter_table("sweeps", schema=None) as batch_op:
        batch_op.drop_index("ix_sweeps_submitter_created_at")
        batch_op.drop_constraint("uq_sweeps_submitter_idempotency_key", type_="unique")
        batch_op.create_unique_constraint("uq_sweeps_idempotency_key", ["idempotency_key"])
        batch_op.drop_column("requested_gpu_seconds")
        batch_op.drop_column("priority_class")
    op.drop_index(op.f("ix_audit_log_action"), table_name="audit_log")
    op.drop_index(op.f("ix_audit_log_actor"), table_name="audit_log")
    op.drop_table("audit_log")
    op.drop_index(op.f("ix_api_keys_user_id"), table_name="api_keys")
    op.drop_table("api_keys")
    op.drop_table("users")
