"""Table definitions used by the queries in :mod:`parley.store.sql`.

Migrations (``migrations/versions``) create these tables; they deliberately do
not import this module, so a later change here needs a new migration.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    false,
    text,
)

metadata = MetaData()

# SQLite only auto-assigns ids for a column declared exactly INTEGER PRIMARY KEY
# (the rowid alias); elsewhere use a 64-bit id.
_Id = BigInteger().with_variant(Integer(), "sqlite")

rooms = Table(
    "rooms",
    metadata,
    Column("name", Text, primary_key=True),
    Column("created_at", BigInteger, nullable=False),
    Column("locked", Boolean, nullable=False, server_default=false()),
    Column("lobby", Boolean, nullable=False, server_default=false()),
    Column("password_hash", Text, nullable=True),
    Column("max_participants", Integer, nullable=True),
    Column("managed", Boolean, nullable=False, server_default=false()),
    # JSON {"members": {pid: role}, "banned": [...]} of the running meeting, or NULL.
    Column("meeting", Text, nullable=True),
    # Days of history this room keeps (NULL: the server's --history-retention-days).
    Column("retention_days", Integer, nullable=True),
    # Stage mode (NULL: by the room's size) and who may chat (NULL: everyone): core/stage.py.
    Column("stage", Boolean, nullable=True),
    Column("chat_mode", Text, nullable=True),
)

messages = Table(
    "messages",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("room", Text, nullable=False),
    Column("sender", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("text", Text, nullable=False),
    Column("recipient", Text, nullable=True),
    Column("ts", BigInteger, nullable=False),
    Column("system", Boolean, nullable=False, server_default=false()),
    # A system entry's kind ("note", "joined", "left", "poll"...); NULL for chat.
    Column("kind", Text, nullable=True),
    # A system entry's structured content (JSON), e.g. a poll's results.
    Column("data", Text, nullable=True),
)

# History pages are "newest N in a room below some id".
Index("ix_messages_room_id", messages.c.room, messages.c.id)
# ...of the chat, without attendance entries (store/record.py in_chat_view): a big room
# writes one per join, and a page must not walk them all (migration 0006).
CHAT_VIEW = "kind IS NULL OR kind NOT IN ('joined', 'left')"
Index(
    "ix_messages_room_chat",
    messages.c.room,
    messages.c.id,
    sqlite_where=text(CHAT_VIEW),
    postgresql_where=text(CHAT_VIEW),
)

# The event log (webhooks and GET /api/v1/events): ids increase in commit order.
events = Table(
    "events",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("type", Text, nullable=False),
    Column("room", Text, nullable=False),
    Column("at", BigInteger, nullable=False),
    Column("data", Text, nullable=False),  # JSON object
    sqlite_autoincrement=True,  # never reuse an id (see migration 0004)
)
# Retention deletes "older than"; reading is by id (the primary key).
Index("ix_events_at", events.c.at)

# One row per webhook receiver: how far it has been served, and which node serves it.
webhook_cursors = Table(
    "webhook_cursors",
    metadata,
    Column("target", Text, primary_key=True),  # sha256 of the URL (it may hold a secret)
    Column("last_id", BigInteger, nullable=False),
    Column("holder", Text, nullable=True),
    Column("lease_until", BigInteger, nullable=False, server_default="0"),
)
# Retention deletes a room's messages older than a time, in batches.
Index("ix_messages_room_ts", messages.c.room, messages.c.ts)
