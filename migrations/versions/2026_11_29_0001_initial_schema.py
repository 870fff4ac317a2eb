"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-29 02:08:06.159047
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Generated from service/store/models.py, then reviewed by hand.
    op.create_table(
        "sweeps",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("workload", sa.String(length=64), nullable=False),
        sa.Column("submitter", sa.String(length=128), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("spec_hash", sa.String(length=64), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=True),
        sa.Column("trial_count", sa.Integer(), nullable=False),
        sa.Column("cached_count", sa.Integer(), nullable=False),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sweeps")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_sweeps_idempotency_key")),
    )
    with op.batch_alter_table("sweeps", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sweeps_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_sweeps_name"), ["name"], unique=False)
        batch_op.create_index(batch_op.f("ix_sweeps_submitter"), ["submitter"], unique=False)
        batch_op.create_index(batch_op.f("ix_sweeps_workload"), ["workload"], unique=False)

    op.create_table(
        "theory_predictions",
        sa.Column("theory_key", sa.String(length=64), nullable=False),
        sa.Column("gen_error", sa.Float(), nullable=True),
        sa.Column("reliable", sa.Boolean(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("theory_key", name=op.f("pk_theory_predictions")),
    )
    op.create_table(
        "trials",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("workload", sa.String(length=64), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("execution", sa.JSON(), nullable=False),
        sa.Column("batch_key", sa.String(length=64), nullable=False),
        sa.Column("group_key", sa.String(length=64), nullable=False),
        sa.Column("theory_key", sa.String(length=64), nullable=True),
        sa.Column("c_pt", sa.Float(), nullable=True),
        sa.Column("lambda_pt", sa.Float(), nullable=True),
        sa.Column("gamma_ft", sa.Float(), nullable=True),
        sa.Column("rho_pt", sa.Float(), nullable=True),
        sa.Column("rho_ft", sa.Float(), nullable=True),
        sa.Column("omega", sa.Float(), nullable=True),
        sa.Column("alpha", sa.Float(), nullable=True),
        sa.Column("a_pt", sa.Float(), nullable=True),
        sa.Column("sigma0", sa.Float(), nullable=True),
        sa.Column("D", sa.Integer(), nullable=True),
        sa.Column("seed", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("gen_error_sim", sa.Float(), nullable=True),
        sa.Column("gen_error_theory", sa.Float(), nullable=True),
        sa.Column("gen_error_asymptotic", sa.Float(), nullable=True),
        sa.Column("residual_theory", sa.Float(), nullable=True),
        sa.Column("residual_asymptotic", sa.Float(), nullable=True),
        sa.Column("regime_theory", sa.String(length=8), nullable=True),
        sa.Column("regime_empirical", sa.String(length=8), nullable=True),
        sa.Column("l_order_theory", sa.Float(), nullable=True),
        sa.Column("pd_theory", sa.Float(), nullable=True),
        sa.Column("l_order_empirical", sa.Float(), nullable=True),
        sa.Column("pd_empirical", sa.Float(), nullable=True),
        sa.Column("classifier_version", sa.String(length=32), nullable=True),
        sa.Column("diverged", sa.Boolean(), nullable=True),
        sa.Column("stop_reason", sa.String(length=32), nullable=True),
        sa.Column("wall_time_s", sa.Float(), nullable=True),
        sa.Column("metrics", sa.JSON(), nullable=True),
        sa.Column("device", sa.String(length=64), nullable=True),
        sa.Column("dtype", sa.String(length=16), nullable=True),
        sa.Column("code_version", sa.String(length=64), nullable=True),
        sa.Column("envelope", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trials")),
        sa.UniqueConstraint("key", name=op.f("uq_trials_key")),
    )
    with op.batch_alter_table("trials", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_trials_D"), ["D"], unique=False)
        batch_op.create_index(batch_op.f("ix_trials_alpha"), ["alpha"], unique=False)
        batch_op.create_index(batch_op.f("ix_trials_c_pt"), ["c_pt"], unique=False)
        batch_op.create_index("ix_trials_claim", ["status", "priority", "id"], unique=False)
        batch_op.create_index(batch_op.f("ix_trials_gamma_ft"), ["gamma_ft"], unique=False)
        batch_op.create_index(batch_op.f("ix_trials_lambda_pt"), ["lambda_pt"], unique=False)
        batch_op.create_index("ix_trials_lease", ["status", "lease_expires_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_trials_omega"), ["omega"], unique=False)
        batch_op.create_index(
            "ix_trials_regime_empirical_id", ["regime_empirical", "id"], unique=False
        )
        batch_op.create_index("ix_trials_regime_theory_id", ["regime_theory", "id"], unique=False)
        batch_op.create_index(batch_op.f("ix_trials_rho_ft"), ["rho_ft"], unique=False)
        batch_op.create_index(batch_op.f("ix_trials_rho_pt"), ["rho_pt"], unique=False)
        batch_op.create_index(batch_op.f("ix_trials_seed"), ["seed"], unique=False)
        batch_op.create_index(batch_op.f("ix_trials_theory_key"), ["theory_key"], unique=False)
        batch_op.create_index("ix_trials_workload_batch", ["workload", "batch_key"], unique=False)

    op.create_table(
        "sweep_trials",
        sa.Column("sweep_id", sa.String(length=32), nullable=False),
        sa.Column("trial_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("cached", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["sweep_id"],
            ["sweeps.id"],
            name=op.f("fk_sweep_trials_sweep_id_sweeps"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["trial_id"],
            ["trials.id"],
            name=op.f("fk_sweep_trials_trial_id_trials"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("sweep_id", "trial_id", name=op.f("pk_sweep_trials")),
    )
    with op.batch_alter_table("sweep_trials", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sweep_trials_trial_id"), ["trial_id"], unique=False)


def downgrade() -> None:
    # Generated from service/store/models.py, then reviewed by hand.
    with op.batch_alter_table("sweep_trials", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sweep_trials_trial_id"))

    op.drop_table("sweep_trials")
    with op.batch_alter_table("trials", schema=None) as batch_op:
        batch_op.drop_index("ix_trials_workload_batch")
        batch_op.drop_index(batch_op.f("ix_trials_theory_key"))
        batch_op.drop_index(batch_op.f("ix_trials_seed"))
        batch_op.drop_index(batch_op.f("ix_trials_rho_pt"))
        batch_op.drop_index(batch_op.f("ix_trials_rho_ft"))
        batch_op.drop_index("ix_trials_regime_theory_id")
        batch_op.drop_index("ix_trials_regime_empirical_id")
        batch_op.drop_index(batch_op.f("ix_trials_omega"))
        batch_op.drop_index("ix_trials_lease")
        batch_op.drop_index(batch_op.f("ix_trials_lambda_pt"))
        batch_op.drop_index(batch_op.f("ix_trials_gamma_ft"))
        batch_op.drop_index("ix_trials_claim")
        batch_op.drop_index(batch_op.f("ix_trials_c_pt"))
        batch_op.drop_index(batch_op.f("ix_trials_alpha"))
        batch_op.drop_index(batch_op.f("ix_trials_D"))

    op.drop_table("trials")
    op.drop_table("theory_predictions")
    with op.batch_alter_table("sweeps", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sweeps_workload"))
        batch_op.drop_index(batch_op.f("ix_sweeps_submitter"))
        batch_op.drop_index(batch_op.f("ix_sweeps_name"))
        batch_op.drop_index(batch_op.f("ix_sweeps_created_at"))

    op.drop_table("sweeps")
