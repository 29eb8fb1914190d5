"""The meeting record: reading a room's whole history, searching it, deleting from it.

A mixin of :class:`parley.store.sql.SqlStore` (it needs only ``engine``), kept apart
from the chat writer.  Every query here respects who may read what: public messages
always, a private one only for its two participants (``viewer``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any, Final

import msgspec
from sqlalchemy import (
    Integer,
    bindparam,
    column,
    delete,
    literal_column,
    or_,
    select,
    table,
    text,
    update,
)
from sqlalchemy.engine import Connection, Row
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.elements import ColumnElement

from ..core.protocol import ChatRecord
from ..core.search_query import fts5_match
from . import search_index
from .schema import messages, rooms

log = logging.getLogger(__name__)

#: Attendance entries: in the record (export, search), not in the chat's history pages.
ATTENDANCE_KINDS: Final = ("joined", "left")
DAY_MS: Final = 86_400_000

#: SQLite's FTS5 index of messages (``search_index``); its rowid is the message id.
_FTS = table("messages_fts", column("rowid", Integer), schema=search_index.SCHEMA)
#: Seconds between runs of SQLite's background indexer.
FTS_INDEX_INTERVAL: Final = search_index.INDEX_INTERVAL


def record_columns() -> tuple[Any, ...]:
    m = messages.c
    return (m.id, m.ts, m.room, m.sender, m.name, m.text, m.recipient, m.system, m.kind, m.data)


def decode_data(raw: str | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        value = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        log.warning("unreadable stored entry data ignored")
        return None
    return value if isinstance(value, dict) else None


def row_record(r: Row[Any]) -> ChatRecord:
    return ChatRecord(
        id=int(r.id),
        ts=int(r.ts),
        room=r.room,
        sender=r.sender,
        name=r.name,
        text=r.text,
        to=r.recipient,
        system=bool(r.system),
        kind=r.kind,
        data=decode_data(r.data),
    )


def visible_to(viewer: str | None) -> ColumnElement[bool]:
    """Public messages, and the private ones ``viewer`` sent or received."""
    m = messages.c
    visible: ColumnElement[bool] = m.recipient.is_(None)
    if viewer is not None:
        visible = or_(visible, m.sender == viewer, m.recipient == viewer)
    return visible


def in_chat_view() -> ColumnElement[bool]:
    """What the chat's history pages show: everything but attendance entries.

    Written with literals, exactly as the partial index ``ix_messages_room_chat``'s
    condition (schema.py, migration 0006), so that SQLite and PostgreSQL use that index:
    with bound parameters they cannot prove the query implies it, and a history page then
    walks every attendance entry newer than it (a big room's welcome: O(N) per join)."""
    m = messages.c
    return or_(
        m.kind.is_(None), m.kind.not_in([literal_column(f"'{k}'") for k in ATTENDANCE_KINDS])
    )


class RecordQueries:
    """Export, search, deletion and retention queries (a mixin of ``SqlStore``)."""

    #: SQLite: the background indexer (``search_index``), what serialises its steps, and
    #: the index's own connection and thread (None: steps run on the store's connection).
    _fts_task: asyncio.Task[None] | None = None
    _fts_lock: asyncio.Lock | None = None
    _file_indexer: search_index.FileIndexer | None = None

    @property
    def engine(self) -> AsyncEngine:
        raise NotImplementedError

    # -- SQLite's search index, filled off the chat path ---------------------------

    async def start_indexer(self, database: str | None, search: str) -> None:
        """SQLite: create the index if missing, and index new messages every
        FTS_INDEX_INTERVAL seconds (search indexes what is pending first, so it never
        misses a message).  ``database``: the store's file (None: in memory)."""
        if self.engine.dialect.name != "sqlite" or self._fts_task is not None:
            return
        async with self.engine.begin() as conn:
            await conn.run_sync(lambda c: search_index.prepare(_sa_execute(c)))
        if database is not None:
            self._file_indexer = search_index.FileIndexer(database, search)
        self._fts_lock = asyncio.Lock()
        self._fts_task = asyncio.get_running_loop().create_task(
            self._index_loop(), name="parley-fts-indexer"
        )

    async def stop_indexer(self) -> None:
        task, self._fts_task = self._fts_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            try:
                await self.index_pending()  # a restart finds nothing pending
            finally:
                indexer, self._file_indexer = self._file_indexer, None
                if indexer is not None:
                    await indexer.close()

    async def _index_loop(self) -> None:
        indexed = 0
        while True:
            if indexed < search_index.READ_LIMIT:  # else a backlog: go on at once
                await asyncio.sleep(FTS_INDEX_INTERVAL)
            try:
                indexed = await self.index_pending(background=True)
            except Exception as exc:  # retried at the next run, or by the next search
                indexed = 0
                log.warning("search index update failed: %s", exc)

    async def index_pending(self, background: bool = False) -> int:
        """SQLite: bring the search index up to date (new messages in, deleted ones out);
        how many messages it indexed.  A no-op elsewhere.  ``background``: the periodic
        step, which writes the index at the lowest priority and reads at most
        ``search_index.READ_LIMIT`` messages (a file's store only)."""
        if self.engine.dialect.name != "sqlite":
            return 0
        lock = self._fts_lock or asyncio.Lock()
        async with lock:
            indexer = self._file_indexer
            if indexer is not None:
                if background:
                    indexed, applied = await indexer.background_step()
                else:
                    indexed, applied = await indexer.step()
            else:
                async with self.engine.begin() as conn:
                    indexed, applied = await conn.run_sync(
                        lambda c: search_index.index_step(_sa_execute(c))
                    )
            if applied:
                async with self.engine.begin() as conn:
                    await conn.exec_driver_sql(search_index.CLEAR_DELETED, (applied,))
            return indexed

    async def iter_records(
        self, room: str, viewer: str | None, batch: int = 500
    ) -> AsyncIterator[list[ChatRecord]]:
        """The room's whole record (attendance included), oldest first, in batches.

        Each batch is its own short query (keyset on id), so a long export holds no
        transaction open and no more than one batch in memory.
        """
        after = 0
        while True:
            stmt = (
                select(*record_columns())
                .where(messages.c.room == room, messages.c.id > after, visible_to(viewer))
                .order_by(messages.c.id)
                .limit(batch)
            )
            async with self.engine.connect() as conn:
                rows = (await conn.execute(stmt)).all()
            if not rows:
                return
            records = [row_record(r) for r in rows]
            yield records
            if len(rows) < batch:
                return
            after = records[-1].id

    async def search(
        self,
        room: str,
        words: tuple[str, ...],
        viewer: str | None,
        limit: int,
        before: int | None = None,
    ) -> tuple[list[ChatRecord], bool]:
        """Messages containing every one of ``words``, newest first, and whether more match.

        ``words`` come from :func:`parley.core.search_query.query_words`.
        """
        m = messages.c
        stmt = select(*record_columns()).where(m.room == room, visible_to(viewer))
        if self.engine.dialect.name == "sqlite":
            await self.index_pending()
            # The FTS table drives the join, newest match first (FTS5 walks its rowids
            # in order), so a common word stops after `limit` matches in this room.
            stmt = stmt.join(_FTS, _FTS.c.rowid == m.id).where(
                text("messages_fts MATCH :match").bindparams(match=fts5_match(words, room))
            )
            newest: Any = _FTS.c.rowid
        else:
            # plainto_tsquery takes plain words: no tsquery operator is read from them.
            stmt = stmt.where(
                text("messages.search @@ plainto_tsquery('simple', :q)").bindparams(
                    q=" ".join(words)
                )
            )
            newest = m.id
        if before is not None:
            stmt = stmt.where(newest < before)
        stmt = stmt.order_by(newest.desc()).limit(limit + 1)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return [row_record(r) for r in rows[:limit]], len(rows) > limit

    async def message(self, room: str, msg_id: int) -> ChatRecord | None:
        """One stored message of ``room`` (None: no such message there)."""
        stmt = select(*record_columns()).where(messages.c.room == room, messages.c.id == msg_id)
        async with self.engine.connect() as conn:
            row = (await conn.execute(stmt)).one_or_none()
        return None if row is None else row_record(row)

    async def delete_message(self, room: str, msg_id: int) -> bool:
        """Delete one message (and so its search index entry); False if it was not there."""
        stmt = delete(messages).where(messages.c.room == room, messages.c.id == msg_id)
        async with self.engine.begin() as conn:
            result = await conn.execute(stmt)
        return bool(result.rowcount)

    async def set_retention(self, room: str, days: int | None) -> None:
        """A room's own history retention in days (None: the server's default)."""
        stmt = update(rooms).where(rooms.c.name == room).values(retention_days=days)
        async with self.engine.begin() as conn:
            await conn.execute(stmt)

    async def retention_of(self, room: str) -> int | None:
        stmt = select(rooms.c.retention_days).where(rooms.c.name == room)
        async with self.engine.connect() as conn:
            value = (await conn.execute(stmt)).scalar_one_or_none()
        return None if value is None else int(value)

    async def purge_expired(self, default_days: int | None, now_ms: int, batch: int = 1000) -> int:
        """Delete every message older than its room's retention; return how many.

        Each room's old messages go in batches of ``batch`` rows, one short
        transaction each (found through the (room, ts) index), so the chat writer
        never waits long for the write lock.
        """
        r = rooms.c
        stmt = select(r.name, r.retention_days)
        if default_days is None:
            stmt = stmt.where(r.retention_days.is_not(None))
        async with self.engine.connect() as conn:
            room_rows = (await conn.execute(stmt)).all()
        m = messages.c
        doomed = (
            select(m.id)
            .where(m.room == bindparam("room"), m.ts < bindparam("cutoff"))
            .limit(batch)
            .scalar_subquery()
        )
        purge = delete(messages).where(m.id.in_(doomed))
        deleted = 0
        for name, own_days in room_rows:
            days = own_days if own_days is not None else default_days
            if days is None:
                continue
            cutoff = now_ms - int(days) * DAY_MS
            while True:
                async with self.engine.begin() as conn:
                    result = await conn.execute(purge, {"room": name, "cutoff": cutoff})
                deleted += result.rowcount
                if result.rowcount < batch:
                    break
        return deleted


def _sa_execute(conn: Connection) -> search_index.Execute:
    """``search_index.Execute`` on a SQLAlchemy connection (in ``run_sync``)."""

    def execute(sql: str, params: Sequence[Any]) -> tuple[list[Any], int]:
        result = conn.exec_driver_sql(sql, tuple(params))
        rows = list(result.fetchall()) if result.returns_rows else []
        return rows, result.rowcount

    return execute
