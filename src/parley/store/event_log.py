"""The event log's statements: written inside the transaction of what caused them.

Ids must increase in commit order, or a reader asking for "events after N" could
miss one committed later with a smaller id.  SQLite has one writer at a time, so
that holds by itself.  On PostgreSQL every transaction that logs events first takes
one transaction-scoped advisory lock (``EVENT_LOCK``), so ids are drawn and
committed one transaction at a time, across every node of a cluster.  The lock is
taken before anything else in the transaction, so it cannot deadlock with row locks.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from ..core.events import CHAT_MESSAGE, LoggedEvent, MeetingEvent
from .schema import events, webhook_cursors

#: pg_advisory_xact_lock key of the event log ("PRLY").
EVENT_LOCK = 0x50524C59

_encode = msgspec.json.encode
_decode = msgspec.json.decode


async def lock_for_events(conn: AsyncConnection) -> None:
    """First statement of a PostgreSQL transaction that will log events."""
    if conn.dialect.name == "postgresql":
        await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": EVENT_LOCK})


def _row(event: MeetingEvent) -> dict[str, Any]:
    return {
        "type": event.type,
        "room": event.room,
        "at": event.at,
        "data": _encode(event.data).decode(),
    }


def event_rows(logged: Sequence[MeetingEvent]) -> list[dict[str, Any]]:
    """Rows for :func:`sqlite_insert_rows`."""
    return [_row(e) for e in logged]


async def insert_events(conn: AsyncConnection, logged: Sequence[MeetingEvent]) -> None:
    """Log ``logged`` in ``conn``'s transaction (after :func:`lock_for_events`)."""
    if logged:
        await conn.execute(events.insert(), [_row(e) for e in logged])


def chat_events(rows: Sequence[dict[str, Any]], ids: Sequence[int]) -> list[dict[str, Any]]:
    """``chat.message`` rows for the chat rows just inserted (system lines are not)."""
    return [
        {
            "type": CHAT_MESSAGE,
            "room": row["room"],
            "at": row["ts"],
            "data": _encode(
                {
                    "message": {
                        "id": msg_id,
                        "sender": row["sender"],
                        "name": row["name"],
                        "text": row["text"],
                        "to": row["recipient"],
                        "ts": row["ts"],
                    }
                }
            ).decode(),
        }
        for row, msg_id in zip(rows, ids, strict=True)
        if not row["system"]
    ]


def sqlite_insert_rows(conn: sqlite3.Connection, rows: Iterable[dict[str, Any]]) -> None:
    """Event rows through the chat writer's own sqlite3 connection (in its transaction)."""
    conn.executemany(
        "INSERT INTO events (type, room, at, data) VALUES (:type, :room, :at, :data)", rows
    )


async def insert_rows(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await conn.execute(events.insert(), list(rows))


def _logged(row: Any) -> LoggedEvent:
    return LoggedEvent(int(row.id), row.type, row.room, int(row.at), _decode(row.data))


async def after(conn: AsyncConnection, after_id: int, limit: int) -> list[LoggedEvent]:
    e = events.c
    stmt = (
        select(e.id, e.type, e.room, e.at, e.data)
        .where(e.id > after_id)
        .order_by(e.id)
        .limit(limit)
    )
    return [_logged(r) for r in (await conn.execute(stmt)).all()]


async def last_id(conn: AsyncConnection) -> int:
    """The newest event's id (0 for an empty log)."""
    value = (await conn.execute(select(func.max(events.c.id)))).scalar_one_or_none()
    return int(value or 0)


async def delete_before(conn: AsyncConnection, at_ms: int) -> int:
    result = await conn.execute(delete(events).where(events.c.at < at_ms))
    return int(result.rowcount or 0)


async def claim(
    conn: AsyncConnection, target: str, holder: str, now_ms: int, lease_ms: int
) -> int | None:
    """Take or renew the lease on a receiver; its cursor if this node holds it now.

    A receiver seen for the first time starts at the newest event: it is served what
    happens from now on (older events are in ``GET /api/v1/events``).
    """
    c = webhook_cursors.c
    ins = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    start = await last_id(conn)
    await conn.execute(
        ins(webhook_cursors)
        .values(target=target, last_id=start, holder=None, lease_until=0)
        .on_conflict_do_nothing()
    )
    taken = await conn.execute(
        update(webhook_cursors)
        .where(c.target == target)
        .where((c.holder == holder) | (c.lease_until < now_ms) | c.holder.is_(None))
        .values(holder=holder, lease_until=now_ms + lease_ms)
    )
    if not taken.rowcount:
        return None
    cursor = (await conn.execute(select(c.last_id).where(c.target == target))).scalar_one()
    return int(cursor)


async def advance(conn: AsyncConnection, target: str, holder: str, last: int) -> bool:
    """Record that the receiver acknowledged every event up to ``last``; False if
    another node took the lease meanwhile (it resends from the stored cursor)."""
    c = webhook_cursors.c
    done = await conn.execute(
        update(webhook_cursors)
        .where(c.target == target, c.holder == holder, c.last_id <= last)
        .values(last_id=last)
    )
    return bool(done.rowcount)


async def release(conn: AsyncConnection, target: str, holder: str) -> None:
    c = webhook_cursors.c
    await conn.execute(
        update(webhook_cursors)
        .where(c.target == target, c.holder == holder)
        .values(holder=None, lease_until=0)
    )
