"""A partial index of the chat's history view: (room, id) without attendance entries.

A history page is "the newest N of a room that are not attendance entries".  With only
(room, id), a page walks every ``joined`` / ``left`` entry newer than its messages, and
a big room writes one per join, so each welcome cost O(N) and filling a room O(N^2)
(issue 16).  The condition is the one ``parley.store.record.in_chat_view`` renders, with
literals, so that both SQLite and PostgreSQL use this index for it.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None

CHAT_VIEW = "kind IS NULL OR kind NOT IN ('joined', 'left')"


def upgrade() -> None:
    op.create_index(
        "ix_messages_room_chat",
        "messages",
        ["room", "id"],
        sqlite_where=sa.text(CHAT_VIEW),
        postgresql_where=sa.text(CHAT_VIEW),
    )


def downgrade() -> None:
    op.drop_index("ix_messages_room_chat", table_name="messages")
