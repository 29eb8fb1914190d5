"""The event log and the webhook receivers' cursors.

``events``: what happened in the meetings (room.started, participant.joined, ...),
written in the same commit as what caused it; ``id`` increases in commit order.
``webhook_cursors``: per receiver (the SHA-256 of its URL), the last event it
acknowledged and which node delivers to it (a lease, for a cluster).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None

_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", _Id, primary_key=True, autoincrement=True),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("room", sa.Text(), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        # AUTOINCREMENT: SQLite must never hand out an id again, even after retention
        # deleted every row (receivers de-duplicate by id).
        sqlite_autoincrement=True,
    )
    op.create_index("ix_events_at", "events", ["at"])
    op.create_table(
        "webhook_cursors",
        sa.Column("target", sa.Text(), primary_key=True),
        sa.Column("last_id", sa.BigInteger(), nullable=False),
        sa.Column("holder", sa.Text(), nullable=True),
        sa.Column("lease_until", sa.BigInteger(), nullable=False, server_default="0"),
    )


def downgrade() -> None:
    op.drop_table("webhook_cursors")
    op.drop_index("ix_events_at", table_name="events")
    op.drop_table("events")
