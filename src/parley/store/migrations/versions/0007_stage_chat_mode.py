"""Stage mode and who may chat: two room settings (core/stage.py).

``stage``: on, off, or NULL (on when the room may hold more than ``--stage-threshold``
people).  ``chat_mode``: "stage" or "questions", or NULL (everyone may chat).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("rooms") as batch:
        batch.add_column(sa.Column("stage", sa.Boolean(), nullable=True))
        batch.add_column(sa.Column("chat_mode", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("rooms") as batch:
        batch.drop_column("chat_mode")
        batch.drop_column("stage")
