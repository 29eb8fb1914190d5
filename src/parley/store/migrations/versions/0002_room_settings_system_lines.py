"""Room settings (lock, lobby, password, size) and system chat lines.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    # batch_alter_table: SQLite cannot ALTER most things in place.
    with op.batch_alter_table("rooms") as batch:
        batch.add_column(
            sa.Column("locked", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(
            sa.Column("lobby", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("password_hash", sa.Text(), nullable=True))
        batch.add_column(sa.Column("max_participants", sa.Integer(), nullable=True))
    with op.batch_alter_table("messages") as batch:
        batch.add_column(
            sa.Column("system", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("system")
    with op.batch_alter_table("rooms") as batch:
        batch.drop_column("max_participants")
        batch.drop_column("password_hash")
        batch.drop_column("lobby")
        batch.drop_column("locked")
