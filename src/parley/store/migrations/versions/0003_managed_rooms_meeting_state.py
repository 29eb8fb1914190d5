"""Managed room settings and the stored state of a running meeting.

``managed``: the settings were set by a token-holding host or the operator and
outlive the meeting (others expire when the room empties).  ``meeting``: who is
in the running meeting and in which role, and who is barred (JSON), so that a
restart restores roles from stored state rather than from resume tokens.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("rooms") as batch:
        batch.add_column(
            sa.Column("managed", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("meeting", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("rooms") as batch:
        batch.drop_column("meeting")
        batch.drop_column("managed")
