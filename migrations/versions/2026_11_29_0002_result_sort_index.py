"""index for sorting results by the simulated error

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 12:00:00

Why this index, and why only this one (benchmarks/bench_query.py, 1M trials, PostgreSQL):

- The headline query, ``regime_theory=IV&lambda_pt_lt=-0.5&c_pt_ge=1e-3`` ordered by id,
  needs nothing new: about 2 % of rows match, so the planner walks the primary key in id
  order and filters ~4,000 rows per page of 100 (p95 ≈ 8-20 ms through the app; keyset
  pages stay that cheap at any depth, where OFFSET 23,400 costs ~30x more).  Dropping
  ``ix_trials_regime_*_id`` does not change that plan; those indexes serve selective
  regimes.
- ``sort=-gen_error_sim`` ("worst runs first", the common non-id sort) had no index and
  sorted every matching row: with ``regime_theory=II``, p50 347 ms, p95 497 ms.  Every
  results query carries ``status = 'succeeded'`` unless told otherwise, so
  ``(status, gen_error_sim, id)`` gives that sort an equality prefix and then the exact
  keyset order ``(gen_error_sim, id)`` in both directions, with the cursor's row
  comparison as an index condition: p50 6 ms, p95 60 ms (the p95 is the first page,
  where the largest errors belong to regime III and ~68k rows are skipped; later pages
  are ~6 ms).  A partial index ``WHERE status = 'succeeded'`` would be smaller but is
  not matched by a parameterised status under generic plans, so the status is a key
  column instead.  Other sort columns fall back to their single-column index or a sort.
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("trials", schema=None) as batch_op:
        batch_op.create_index(
            "ix_trials_status_gen_error_sim", ["status", "gen_error_sim", "id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("trials", schema=None) as batch_op:
        batch_op.drop_index("ix_trials_status_gen_error_sim")
