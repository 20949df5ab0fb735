"""jobs, channel settings and deployment secrets

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the column types as they were at this revision.
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TIMESTAMP = sa.DateTime(timezone=True)
ID = sa.String(64)


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("dedupe_key", sa.String(255), nullable=False),
        sa.Column("platform", sa.String(16), nullable=False),
        sa.Column("workspace", ID, nullable=False),
        sa.Column("channel", ID, nullable=False),
        sa.Column("thread", ID, nullable=True),
        sa.Column("message", ID, nullable=True),
        sa.Column("requester", ID, nullable=False),
        sa.Column("source", JSON, nullable=False),
        sa.Column("options", JSON, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("transcript_id", sa.String(128), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.Column("next_attempt_at", TIMESTAMP, nullable=False),
        sa.Column("audio_duration", sa.Float(), nullable=True),
        sa.Column("posted", JSON, nullable=False),
        sa.Column("lease_owner", sa.String(128), nullable=True),
        sa.Column("direct_failed", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("lease_expires_at", TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_jobs"),
        sa.UniqueConstraint("dedupe_key", name="uq_jobs_dedupe_key"),
        sa.UniqueConstraint("transcript_id", name="uq_jobs_transcript_id"),
    )
    op.create_index("ix_jobs_state_next_attempt_at", "jobs", ["state", "next_attempt_at"])
    op.create_index("ix_jobs_created_at", "jobs", ["created_at"])
    op.create_index("ix_jobs_requester", "jobs", ["platform", "workspace", "requester"])
    op.create_index("ix_jobs_channel", "jobs", ["platform", "workspace", "channel"])

    op.create_table(
        "channel_settings",
        sa.Column("platform", sa.String(16), nullable=False),
        sa.Column("workspace", ID, nullable=False),
        sa.Column("channel", ID, nullable=False),
        sa.Column("auto_transcribe", sa.Boolean(), nullable=False),
        sa.Column("updated_by", ID, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("platform", "workspace", "channel", name="pk_channel_settings"),
    )

    op.create_table(
        "deployment_secrets",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("value", sa.String(128), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_deployment_secrets"),
    )


def downgrade() -> None:
    op.drop_table("deployment_secrets")
    op.drop_table("channel_settings")
    op.drop_table("jobs")
