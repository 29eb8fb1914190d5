"""The meeting record: kinds of system entries, full-text search, retention.

``messages.kind``: what a system entry is (``note`` a moderation line, ``joined`` /
``left`` attendance, later ``poll`` results); NULL for a participant's message.
``messages.data``: a system entry's structured content as JSON (e.g. a poll's
counts), NULL otherwise.  ``rooms.retention_days``: a room's own history retention
(NULL: the server's default).  Index (room, ts): retention deletes a room's old
messages in batches without scanning the rest.

Search: SQLite gets an FTS5 index over ``messages.room`` and ``messages.text``
(external content, filled in batches off the chat path; deleted messages leave it by a
trigger); PostgreSQL a stored ``tsvector`` column ('simple' configuration: no stemming,
so every language is searched alike) with a GIN index.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None

# The FTS5 index is filled in batches (``parley.store.record.RecordQueries.index_pending``),
# not by an insert trigger writing to it: that would write a new FTS segment in every
# chat commit (measured: +0.2-0.3 ms a message, and merge spikes of several ms), on the
# path a participant waits on.  A new message's id goes into ``messages_fts_pending`` (a
# one-row insert); the indexer moves pending messages into the index.  A deleted
# message leaves the index if it was in it, else the pending list, so an id SQLite
# reuses after deleting the newest row starts clean.
#
# The room is indexed too (its name's words, as a phrase): a search ANDs it with the
# query's words, and FTS5 skips through the long posting lists to the few entries of a
# small room, so a word that is common elsewhere costs a small room nothing (without it,
# every match in every room was read and filtered: 0.3 s over 300,000 messages).
_SQLITE_FTS = [
    "CREATE VIRTUAL TABLE messages_fts USING fts5(room, text, content='messages', "
    "content_rowid='id', tokenize='unicode61 remove_diacritics 2')",
    "CREATE TABLE messages_fts_pending (id INTEGER PRIMARY KEY)",
    "CREATE TRIGGER messages_fts_ai AFTER INSERT ON messages BEGIN "
    "INSERT INTO messages_fts_pending (id) VALUES (new.id); END",
    "CREATE TRIGGER messages_fts_ad AFTER DELETE ON messages BEGIN "
    "INSERT INTO messages_fts (messages_fts, rowid, room, text) "
    "SELECT 'delete', old.id, old.room, old.text "
    "WHERE NOT EXISTS (SELECT 1 FROM messages_fts_pending WHERE id = old.id); "
    "DELETE FROM messages_fts_pending WHERE id = old.id; END",
    "INSERT INTO messages_fts (messages_fts) VALUES ('rebuild')",
]


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("kind", sa.Text(), nullable=True))
        batch.add_column(sa.Column("data", sa.Text(), nullable=True))
    with op.batch_alter_table("rooms") as batch:
        batch.add_column(sa.Column("retention_days", sa.Integer(), nullable=True))
    # System lines stored before kinds existed are moderation notes.
    op.execute("UPDATE messages SET kind = 'note' WHERE system")
    op.create_index("ix_messages_room_ts", "messages", ["room", "ts"])
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for statement in _SQLITE_FTS:
            op.execute(statement)
    elif dialect == "postgresql":
        op.execute(
            "ALTER TABLE messages ADD COLUMN search tsvector "
            "GENERATED ALWAYS AS (to_tsvector('simple', text)) STORED"
        )
        op.execute("CREATE INDEX ix_messages_search ON messages USING gin (search)")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for name in ("messages_fts_ai", "messages_fts_ad"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute("DROP TABLE IF EXISTS messages_fts")
        op.execute("DROP TABLE IF EXISTS messages_fts_pending")
    elif dialect == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_messages_search")
        op.execute("ALTER TABLE messages DROP COLUMN IF EXISTS search")
    op.drop_index("ix_messages_room_ts", table_name="messages")
    with op.batch_alter_table("rooms") as batch:
        batch.drop_column("retention_days")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("data")
        batch.drop_column("kind")
