"""Chat history pages read from SQLite on the event loop, through a connection of their own.

Every ``welcome`` carries the room's latest history page, so a join reads one.
Through SQLAlchemy and aiosqlite that read builds the statement, computes its
cache key, checks a connection out of the pool, and hops to aiosqlite's thread
and back five times (cursor, execute, fetch, close, rollback): about 1.5 ms of
CPU per join, half of all a join cost in a room of 5,000 (docs/benchmarks.md
section 13).  Here it is one prepared statement on a plain ``sqlite3``
connection, run in place: a page of 50 rows through the partial index
``ix_messages_room_chat`` takes tens of microseconds, and in WAL mode a reader
never waits for the writer.

The connection has ``busy_timeout=0`` and is read-only (``query_only``).  If a read
would have to wait anyway (SQLite answers BUSY while another connection recovers
the WAL), ``page`` returns None and the caller reads through the engine, as before.
Only for a database file: an in-memory database is private to its connection.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from ..core.protocol import ChatRecord
from .record import decode_data
from .schema import CHAT_VIEW

_COLUMNS = "id, ts, room, sender, name, text, recipient, system, kind, data"
# The same rows, in the same order, as SqlStore's query through SQLAlchemy (one extra
# row tells whether an older page exists).  CHAT_VIEW is written exactly as the partial
# index's condition, so that SQLite uses that index (see store/record.py in_chat_view).
_PUBLIC = "recipient IS NULL"
_VISIBLE = "(recipient IS NULL OR sender = :viewer OR recipient = :viewer)"


def _query(visible: str, before: bool) -> str:
    older = " AND id < :before" if before else ""
    return (
        f"SELECT {_COLUMNS} FROM messages WHERE room = :room AND {visible}"
        f" AND ({CHAT_VIEW}){older} ORDER BY id DESC LIMIT :limit"
    )


#: By (a viewer is given, a ``before`` is given).
_QUERIES = {
    (v, b): _query(_VISIBLE if v else _PUBLIC, b) for v in (False, True) for b in (False, True)
}


def _record(row: tuple[Any, ...]) -> ChatRecord:
    msg_id, ts, room, sender, name, text, recipient, system, kind, data = row
    return ChatRecord(
        id=int(msg_id),
        ts=int(ts),
        room=room,
        sender=sender,
        name=name,
        text=text,
        to=recipient,
        system=bool(system),
        kind=kind,
        data=decode_data(data),
    )


class SqliteReads:
    """History pages from one SQLite database file, read in place."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._conn: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout=0")
            conn.execute("PRAGMA query_only=1")
            self._conn = conn
        return self._conn

    def page(
        self, room: str, before: int | None, limit: int, viewer: str | None
    ) -> tuple[list[ChatRecord], bool] | None:
        """The page ``SqlStore.history`` returns, or None if SQLite would make us wait."""
        params: dict[str, Any] = {"room": room, "limit": limit + 1}
        if viewer is not None:
            params["viewer"] = viewer
        if before is not None:
            params["before"] = before
        sql = _QUERIES[(viewer is not None, before is not None)]
        try:
            # fetchall: the statement runs to its end, so no read transaction stays open
            # (which would hold back the WAL checkpoints).
            rows = self._connection().execute(sql, params).fetchall()
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                return None
            raise
        more = len(rows) > limit
        return [_record(r) for r in reversed(rows[:limit])], more

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
