"""benchmark runs from CI: runs, their metric values and verdicts, thresholds as data

Revision ID: 0009
Revises: 0007
Create Date: 2026-12-02 04:00:00

- ``benchmark_runs``: one run of a suite (git context, machine fingerprint, mode, status,
  the sweeps it submitted or the values it brought), idempotent per submitter;
- ``benchmark_values``: one metric's value in a run, its samples, the theory beside it,
  its source (``service`` or ``byo:<label>``), its verdict outcome and acknowledgement;
- ``benchmark_thresholds``: per suite and metric policy overrides.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0007"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "benchmark_runs",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("suite", sa.String(length=128), nullable=False),
        sa.Column("suite_version", sa.Integer(), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("submitter", sa.String(length=128), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=True),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("repository", sa.String(length=200), nullable=True),
        sa.Column("commit", sa.String(length=64), nullable=True),
        sa.Column("branch", sa.String(length=200), nullable=True),
        sa.Column("base_commit", sa.String(length=64), nullable=True),
        sa.Column("pr_number", sa.Integer(), nullable=True),
        sa.Column("machine", sa.String(length=64), nullable=False),
        sa.Column("machine_info", sa.JSON(), nullable=True),
        sa.Column("source", sa.String(length=200), nullable=True),
        sa.Column("sweep_ids", sa.JSON(), nullable=False),
        sa.Column("measurements", sa.JSON(), nullable=True),
        sa.Column("options", sa.JSON(), nullable=True),
        sa.Column("verdict", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_benchmark_runs")),
        sa.UniqueConstraint("submitter", "idempotency_key", name="uq_benchmark_runs_idempotency"),
    )
    op.create_index(
        "ix_benchmark_runs_history", "benchmark_runs", ["suite", "machine", "created_at"]
    )
    op.create_index(op.f("ix_benchmark_runs_commit"), "benchmark_runs", ["commit"])
    op.create_table(
        "benchmark_values",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("metric", sa.String(length=300), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("samples", sa.JSON(), nullable=True),
        sa.Column("theory", sa.Float(), nullable=True),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.Column("acknowledged_by", sa.String(length=128), nullable=True),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ack_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["benchmark_runs.id"],
            name=op.f("fk_benchmark_values_run_id_benchmark_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_benchmark_values")),
        sa.UniqueConstraint("run_id", "metric", name="uq_benchmark_values_run_id"),
    )
    op.create_index(op.f("ix_benchmark_values_run_id"), "benchmark_values", ["run_id"])
    op.create_index(op.f("ix_benchmark_values_metric"), "benchmark_values", ["metric"])
    op.create_table(
        "benchmark_thresholds",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("suite", sa.String(length=128), nullable=False),
        sa.Column("metric", sa.String(length=300), nullable=False),
        sa.Column("policy", sa.JSON(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(length=128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_benchmark_thresholds")),
        sa.UniqueConstraint("suite", "metric", name="uq_benchmark_thresholds_suite"),
    )


def downgrade() -> None:
    op.drop_table("benchmark_thresholds")
    op.drop_index(op.f("ix_benchmark_values_metric"), table_name="benchmark_values")
    op.drop_index(op.f("ix_benchmark_values_run_id"), table_name="benchmark_values")
    op.drop_table("benchmark_values")
    op.drop_index(op.f("ix_benchmark_runs_commit"), table_name="benchmark_runs")
    op.drop_index("ix_benchmark_runs_history", table_name="benchmark_runs")
    op.drop_table("benchmark_runs")
