"""jobs: the job a redo redoes, the people offered to speaker identification and the
speakers its result shows; channel_preferences: speaker names, the summary, a translation
and the vocabulary, per channel

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-10
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the column types as they are at this revision.
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TIMESTAMP = sa.DateTime(timezone=True)
ID = sa.String(64)


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("redo_of", sa.String(36), nullable=True))
        batch.add_column(sa.Column("people", JSON, nullable=True))
        batch.add_column(sa.Column("speakers", JSON, nullable=True))
        batch.create_index("ix_jobs_redo_of", ["redo_of"])
    op.create_table(
        "channel_preferences",
        sa.Column("platform", sa.String(16), nullable=False),
        sa.Column("workspace", ID, nullable=False),
        sa.Column("channel", ID, nullable=False),
        sa.Column("names", sa.Boolean(), nullable=True),
        sa.Column("summary", sa.Boolean(), nullable=True),
        sa.Column("translate_to", sa.String(16), nullable=True),
        sa.Column("keyterms", JSON, nullable=False),
        sa.Column("spellings", JSON, nullable=False),
        sa.Column("updated_by", ID, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("platform", "workspace", "channel", name="pk_channel_preferences"),
    )


def downgrade() -> None:
    op.drop_table("channel_preferences")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_index("ix_jobs_redo_of")
        batch.drop_column("speakers")
        batch.drop_column("people")
        batch.drop_column("redo_of")
