"""jobs: the audio URL handed to AssemblyAI and when that submission began, so a submission
whose answer was lost can be found at AssemblyAI instead of being made (and billed) twice

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("audio_url", sa.Text(), nullable=True))
        batch.add_column(sa.Column("submit_started_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("submit_started_at")
        batch.drop_column("audio_url")
