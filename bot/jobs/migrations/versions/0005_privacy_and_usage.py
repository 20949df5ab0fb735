"""privacy and cost controls: a channel's policy (auto | on-request | off) in place of the
auto-transcribe switch and its PII redaction settings; who opted out; a usage ledger that
outlives the jobs; notices said once; on each job who shared it, what AssemblyAI billed,
the model it used, its budget and when its transcript was deleted at AssemblyAI

Revision ID: 0005
Revises: 0003
Create Date: 2026-12-10
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the column types as they are at this revision.
TIMESTAMP = sa.DateTime(timezone=True)
ID = sa.String(64)


def upgrade() -> None:
    with op.batch_alter_table("channel_settings") as batch:
        batch.add_column(sa.Column("policy", sa.String(16), nullable=True))
        batch.add_column(sa.Column("redact_pii", sa.Boolean(), nullable=True))
        batch.add_column(sa.Column("redact_pii_audio", sa.Boolean(), nullable=True))
    # The switch as it was: on is `auto`, off is `on-request` (people could still ask).
    op.execute(
        "UPDATE channel_settings SET policy = CASE WHEN auto_transcribe "
        "THEN 'auto' ELSE 'on-request' END"
    )
    with op.batch_alter_table("channel_settings") as batch:
        batch.drop_column("auto_transcribe")

    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("author", ID, nullable=True))
        batch.add_column(sa.Column("billed_seconds", sa.Float(), nullable=True))
        batch.add_column(sa.Column("speech_model", sa.String(64), nullable=True))
        batch.add_column(sa.Column("budget_seconds", sa.Float(), nullable=True))
        batch.add_column(sa.Column("transcript_deleted_at", TIMESTAMP, nullable=True))

    op.create_table(
        "opt_outs",
        sa.Column("platform", sa.String(16), nullable=False),
        sa.Column("person", ID, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("platform", "person", name="pk_opt_outs"),
    )
    op.create_table(
        "usage",
        sa.Column("job_id", sa.String(36), nullable=False),
        sa.Column("platform", sa.String(16), nullable=False),
        sa.Column("workspace", ID, nullable=False),
        sa.Column("channel", ID, nullable=False),
        sa.Column("person", ID, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("reserved_seconds", sa.Float(), nullable=False),
        sa.Column("billed_seconds", sa.Float(), nullable=True),
        sa.Column("speech_model", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("job_id", name="pk_usage"),
    )
    op.create_index(
        "ix_usage_workspace_created_at", "usage", ["platform", "workspace", "created_at"]
    )
    op.create_table(
        "notices",
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_notices"),
    )


def downgrade() -> None:
    op.drop_table("notices")
    op.drop_index("ix_usage_workspace_created_at", table_name="usage")
    op.drop_table("usage")
    op.drop_table("opt_outs")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("transcript_deleted_at")
        batch.drop_column("budget_seconds")
        batch.drop_column("speech_model")
        batch.drop_column("billed_seconds")
        batch.drop_column("author")
    with op.batch_alter_table("channel_settings") as batch:
        batch.add_column(
            sa.Column("auto_transcribe", sa.Boolean(), server_default=sa.true(), nullable=False)
        )
    # `off` had no equivalent: it becomes the closest, on request only.
    op.execute(
        "UPDATE channel_settings SET auto_transcribe = CASE WHEN policy = 'auto' "
        "OR policy IS NULL THEN TRUE ELSE FALSE END"
    )
    with op.batch_alter_table("channel_settings") as batch:
        batch.drop_column("redact_pii_audio")
        batch.drop_column("redact_pii")
        batch.drop_column("policy")
