"""SQLite's search index leaves the chat path: no insert trigger, its own database file.

0005 kept an FTS5 index of messages in the main database, with an insert trigger that
listed each new message's id for a background indexer.  Every chat commit paid that extra
row, and every index batch held the main database's write lock, so a chat commit that met
one waited (SQLite's busy handler sleeps 1-5 ms): the tail of chat latency at 400-800
messages/s.  The index now lives in a database of its own (``parley.store.search_index``,
created and filled by the store, rebuilt if missing), so this drops the old index, its
pending list and both triggers, and records deletions instead: a trigger writes each deleted
message's id to ``search_deleted`` in the deleting transaction, and the indexer removes them
from the index.  PostgreSQL (a generated tsvector column) is unchanged.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None

_DROP_0005 = [
    "DROP TRIGGER IF EXISTS main.messages_fts_ai",
    "DROP TRIGGER IF EXISTS main.messages_fts_ad",
    "DROP TABLE IF EXISTS main.messages_fts",
    "DROP TABLE IF EXISTS main.messages_fts_pending",
]
# seq orders the records: the indexer clears the ones it applied (seq <= N), never a later
# deletion of an id SQLite reused meanwhile.
_DELETIONS = [
    "CREATE TABLE main.search_deleted (seq INTEGER PRIMARY KEY, id INTEGER NOT NULL)",
    "CREATE TRIGGER main.messages_search_ad AFTER DELETE ON messages BEGIN "
    "INSERT INTO search_deleted (id) VALUES (old.id); END",
]

_RESTORE_0005 = [
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
    if op.get_bind().dialect.name != "sqlite":
        return
    for statement in _DROP_0005 + _DELETIONS:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute("DROP TRIGGER IF EXISTS main.messages_search_ad")
    op.execute("DROP TABLE IF EXISTS main.search_deleted")
    # 0005's index and triggers, filled again from the messages (the separate file stays).
    for statement in _RESTORE_0005:
        op.execute(statement)
