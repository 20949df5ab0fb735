"""jobs: indexes that keep the hot queries proportional to what they find, not to the
table (checked with EXPLAIN on SQLite and PostgreSQL: tests/test_query_plans.py)

- the per-person and per-channel limits count a person's or channel's unfinished jobs:
  the state joins those indexes, so a channel's years of delivered jobs are not read
  at every intake;
- the FIFO towards AssemblyAI walks the waiting jobs in arrival order (state, created_at);
- the slots towards AssemblyAI count the jobs being started by their lease (state,
  lease_expires_at), and the worker finds leases about to run out the same way.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_jobs_requester", table_name="jobs")
    op.drop_index("ix_jobs_channel", table_name="jobs")
    op.create_index(
        "ix_jobs_requester_state", "jobs", ["platform", "workspace", "requester", "state"]
    )
    op.create_index("ix_jobs_channel_state", "jobs", ["platform", "workspace", "channel", "state"])
    op.create_index("ix_jobs_state_created_at", "jobs", ["state", "created_at", "id"])
    op.create_index("ix_jobs_state_lease", "jobs", ["state", "lease_expires_at"])


def downgrade() -> None:
    op.drop_index("ix_jobs_state_lease", table_name="jobs")
    op.drop_index("ix_jobs_state_created_at", table_name="jobs")
    op.drop_index("ix_jobs_channel_state", table_name="jobs")
    op.drop_index("ix_jobs_requester_state", table_name="jobs")
    op.create_index("ix_jobs_requester", "jobs", ["platform", "workspace", "requester"])
    op.create_index("ix_jobs_channel", "jobs", ["platform", "workspace", "channel"])
