"""SQL store (SQLite or PostgreSQL) via SQLAlchemy's async engine.

Chat appends go through a group-commit writer: callers enqueue, one task takes
everything queued, inserts it in one transaction and then acknowledges each
caller. A lone message commits at once; messages that arrive while a commit is
in flight ride along in the next one, so throughput scales with load while
latency stays at roughly one commit.  On SQLite at low rates commits run in
place, on the event loop, and a lone message skips the queue (``INLINE_MAX_RATE``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import msgspec
from alembic import command
from alembic.config import Config
from sqlalchemy import delete, event, exists, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool
from sqlalchemy.sql.elements import ColumnElement

from ..config import DURABILITY_LEVELS
from ..core.events import LoggedEvent, MeetingEvent
from ..core.protocol import ChatRecord
from ..core.stage import QUESTIONS_TO
from . import event_log, search_index
from .base import MeetingState, RoomRecord
from .record import RecordQueries, decode_data, in_chat_view, record_columns, row_record
from .schema import messages, rooms
from .sqlite_reads import SqliteReads

log = logging.getLogger(__name__)

_T = TypeVar("_T")

MIGRATIONS_DIR = Path(__file__).with_name("migrations")

# Upper bound on rows per transaction, so one commit's latency stays bounded
# (statements within it are split further to respect bind-parameter limits).
MAX_BATCH = 1000

#: Below this many chat messages a second, SQLite commits run in place, on the event
#: loop: a small commit (WAL, synchronous=NORMAL: no sync) costs less loop time than
#: handing it to the writer thread and back, and it waits for no thread to get the GIL
#: (with the loop busy, that wait was 1-2.5 ms at 400-800 msgs/s).  Messages that
#: find the writer idle commit in place, up to INLINE_PER_TURN in one commit (see
#: there); the others queue and share the writer task's next commit, in place too if
#: it has at most INLINE_MAX_ROWS rows.  Above this rate, commits go to the writer's
#: thread as before, where they batch better (one-row commits in place cost more CPU
#: per message once the loop is busy: measured at 1,600 msgs/s, the runs disagreed, so
#: the limit stays low).
INLINE_MAX_RATE = 1000.0
INLINE_MAX_ROWS = 32
#: Messages committed in place together, in one commit.  A message commits at once,
#: in place, unless another client's message read in the same poll has not reached
#: the store yet (``SqlStore.reads``): then it waits for that one, in the same loop turn
#: (see ``SqlStore._commit_now``).  The messages of a burst are so stored in one commit
#: and delivered in the turn they were read, and the hub writes all of them to a
#: client with one ``write()``; queued for the writer task instead, they were delivered
#: turns later in a flush of their own, which cost a ``write()`` per recipient again
#: (about 10 us each on loopback).  One commit for them, not one each: a commit writes
#: the same few pages (the table's last leaf, each index's) whatever it holds.
INLINE_PER_TURN = 16
#: The chat rate is re-estimated over windows of this many seconds.
RATE_WINDOW = 0.1


@dataclass(slots=True)
class _Pending:
    row: dict[str, Any]
    future: asyncio.Future[ChatRecord] = field(repr=False)


def alembic_config() -> Config:
    """Alembic config for the packaged migrations (no ini file needed)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("path_separator", "os")
    return cfg


# Arbitrary constant naming parley's migration lock in pg_advisory_xact_lock.
_PG_MIGRATION_LOCK = 0x7061726C6579  # "parley"


def _upgrade(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        # Servers starting together on a fresh database would race to create
        # the tables; serialise them (released when the transaction ends).
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_MIGRATION_LOCK})")
    elif connection.dialect.name == "sqlite":
        # Same race on SQLite: take the write lock before reading the schema
        # version (this also makes the DDL one transaction).
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, "head")


#: ``--durability`` -> SQLite ``synchronous`` (WAL mode).  NORMAL: a commit survives a
#: process kill, not a power loss or OS crash (the WAL is synced only at checkpoints).
#: FULL: the WAL is synced at every commit, so an acknowledged message survives both.
SQLITE_SYNCHRONOUS = {"normal": "NORMAL", "full": "FULL"}
#: The store URL's query key for it (``Settings.effective_database_url`` adds it); the
#: store takes it off the URL before the driver sees it.
DURABILITY_QUERY = "durability"


def _set_sqlite_pragmas(dbapi_connection: Any, synchronous: str) -> None:
    cur = dbapi_connection.cursor()
    # Rooms are written from other connections than the chat writer; wait
    # for the lock rather than fail with "database is locked".  First: switching
    # to WAL takes a lock too (two servers starting on a new file race for it).
    cur.execute("PRAGMA busy_timeout=10000")
    # WAL: readers do not block the writer; synchronous: see SQLITE_SYNCHRONOUS.
    _enable_wal(cur)
    cur.execute(f"PRAGMA synchronous={synchronous}")
    cur.close()


def _enable_wal(cur: Any) -> None:
    """Switch the database file to WAL (a no-op for a file in WAL already).

    Two processes switching the same new file at once can deadlock on its lock, and
    SQLite then answers one of them "database is locked" at once, without its busy
    handler: that one retries (this runs only while a connection opens).
    """
    for attempt in range(100):
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            cur.fetchall()
            return
        except Exception as exc:
            if "locked" not in str(exc) or attempt == 99:
                raise
            time.sleep(0.05)


def _is_connectivity_error(exc: BaseException) -> bool:
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, OperationalError | InterfaceError | OSError)


class SqlStore(RecordQueries):
    """:class:`parley.store.base.Store` on SQLite (aiosqlite) or PostgreSQL (asyncpg)."""

    def __init__(
        self,
        url: str,
        *,
        max_batch: int = MAX_BATCH,
        engine_options: Mapping[str, Any] | None = None,
    ) -> None:
        """``engine_options`` go to ``create_async_engine`` (e.g. pool size, or
        ``connect_args`` with a PostgreSQL ``search_path``).  ``?durability=normal|full``
        on the URL: what a commit waits for (see :data:`SQLITE_SYNCHRONOUS`)."""
        parsed = make_url(url)
        durability = parsed.query.get(DURABILITY_QUERY, "normal")
        if durability not in DURABILITY_LEVELS:
            raise ValueError(
                f"durability={durability!r}: use one of {', '.join(DURABILITY_LEVELS)}"
            )
        self.durability: str = str(durability)
        self.url = parsed.difference_update_query([DURABILITY_QUERY])
        self.max_batch = max_batch
        self._engine_options = dict(engine_options or {})
        # Stats: transactions committed by the chat writer, and rows in them.
        self.commits = 0
        self.rows_committed = 0
        self._engine: AsyncEngine | None = None
        self._queue: list[_Pending] = []
        self._wakeup = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._closing = False
        # Room creation times never change once written, so they can be cached.
        self._sqlite_path: str | None = None
        self._sqlite_writer: _SqliteWriter | None = None
        #: History pages read in place (SQLite files: see store/sqlite_reads.py).
        self._sqlite_reads: SqliteReads | None = None
        self._room_cache: dict[str, int] = {}
        # History pages read at once: one fewer than the pool keeps (SQLAlchemy's default
        # is 5), so that a burst of welcomes (20 people moved into breakouts) queues for
        # the pooled connections instead of opening overflow ones that are closed right
        # after: on PostgreSQL each is a new backend process, an authentication and a
        # type introspection, for a query of a millisecond.
        pool = int(self._engine_options.get("pool_size", 5))
        self._history_reads = asyncio.Semaphore(max(1, pool - 1))
        #: A batch is being committed by the writer task (it may be in the thread).
        self._committing = False
        #: Messages waiting to commit in place with one read in the same poll (see
        #: ``_commit_now``), and the read count and messages appended since the last
        #: commit in place.
        self._turn: list[_Pending] = []
        self._reads_base = 0
        self._appended_since = 0
        #: Set by the server: how many client messages were read so far (``Hub.reads``).
        #: Without it every message commits alone.
        self.reads: Callable[[], int] | None = None
        #: Chat messages appended since ``_window_start``, and the rate measured over
        #: the last full window (messages/s): see INLINE_MAX_RATE.
        self._appended = 0
        self._window_start = 0.0
        self.rate = 0.0
        self._chat_events = False

    @property
    def chat_events(self) -> bool:
        """Log a ``chat.message`` event with each chat message, in its commit."""
        return self._chat_events

    @chat_events.setter
    def chat_events(self, on: bool) -> None:
        self._chat_events = on
        if self._sqlite_writer is not None:
            self._sqlite_writer.chat_events = on

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            raise RuntimeError("store not started")
        return self._engine

    def _make_engine(self) -> AsyncEngine:
        kwargs = dict(self._engine_options)
        is_sqlite = self.url.get_backend_name() == "sqlite"
        if is_sqlite:
            db = self.url.database or ""
            if db in ("", ":memory:") or "mode=memory" in db:
                # Every in-memory connection is a separate database; share one.
                kwargs.setdefault("poolclass", StaticPool)
            elif not db.startswith("file:"):  # URI filenames are left as given
                Path(db).expanduser().parent.mkdir(parents=True, exist_ok=True)
        elif self.durability == "full" and self.url.get_backend_name() == "postgresql":
            # Commits wait for PostgreSQL's WAL flush even if the database or role says
            # synchronous_commit=off (on: also for synchronous standbys, if configured).
            connect_args = dict(kwargs.get("connect_args") or {})
            server_settings = dict(connect_args.get("server_settings") or {})
            server_settings["synchronous_commit"] = "on"
            kwargs["connect_args"] = {**connect_args, "server_settings": server_settings}
        engine = create_async_engine(self.url, **kwargs)
        if is_sqlite:
            synchronous = SQLITE_SYNCHRONOUS[self.durability]
            search = self._search_database()

            def pragmas(dbapi_connection: Any, _record: Any) -> None:
                _set_sqlite_pragmas(dbapi_connection, synchronous)
                search_index.attach(dbapi_connection, search)

            event.listen(engine.sync_engine, "connect", pragmas)
        return engine

    async def start(self) -> None:
        if self._engine is not None:
            return
        engine = self._make_engine()
        try:
            async with engine.begin() as conn:
                await conn.run_sync(_upgrade)
        except BaseException:
            await engine.dispose()
            raise
        self._engine = engine
        if engine.dialect.name == "sqlite":
            self._sqlite_path = _sqlite_file(self.url.database or "")
        if self._sqlite_path is not None:
            self._sqlite_writer = _SqliteWriter(
                self._sqlite_path, SQLITE_SYNCHRONOUS[self.durability]
            )
            self._sqlite_writer.chat_events = self._chat_events
            self._sqlite_reads = SqliteReads(self._sqlite_path)
        self._closing = False
        self._wakeup = asyncio.Event()  # bound to the running loop on first use
        self._writer = asyncio.create_task(self._write_loop(), name="parley-store-writer")
        await self.start_indexer(self._sqlite_path, self._search_database())

    def _search_database(self) -> str:
        """SQLite: the search index's database (``search_index``), beside the store's."""
        database = self.url.database or ""
        path = _sqlite_file(database)
        return search_index.search_database(path if path is not None else database)

    async def close(self) -> None:
        if self._engine is None:
            return
        self._closing = True
        self._commit_now()
        self._wakeup.set()
        if self._writer is not None:
            await self._writer  # drains the queue before returning
            self._writer = None
        if self._sqlite_writer is not None:
            await self._sqlite_writer.close()
            self._sqlite_writer = None
        if self._sqlite_reads is not None:
            self._sqlite_reads.close()
            self._sqlite_reads = None
        try:
            await self.stop_indexer()
        except Exception as exc:  # indexed at the next start (the list is in the database)
            log.warning("search index update at close failed: %s", exc)
        await self._engine.dispose()
        self._engine = None

    # -- rooms ---------------------------------------------------------------

    async def ensure_room(self, room: str, now_ms: int) -> int:
        cached = self._room_cache.get(room)
        if cached is not None:
            return cached
        engine = self.engine
        ins = pg_insert if engine.dialect.name == "postgresql" else sqlite_insert
        stmt = ins(rooms).values(name=room, created_at=now_ms).on_conflict_do_nothing()
        async with engine.begin() as conn:
            await conn.execute(stmt)
            created = (
                await conn.execute(select(rooms.c.created_at).where(rooms.c.name == room))
            ).scalar_one()
        self._room_cache[room] = created
        return int(created)

    async def room_created_at(self, room: str) -> int | None:
        cached = self._room_cache.get(room)
        if cached is not None:
            return cached
        async with self.engine.connect() as conn:
            created = (
                await conn.execute(select(rooms.c.created_at).where(rooms.c.name == room))
            ).scalar_one_or_none()
        if created is None:
            return None
        self._room_cache[room] = created
        return int(created)

    # -- chat ----------------------------------------------------------------

    async def load_room(self, room: str) -> RoomRecord | None:
        r = rooms.c
        stmt = select(
            r.created_at,
            r.locked,
            r.lobby,
            r.password_hash,
            r.max_participants,
            r.managed,
            r.meeting,
            r.stage,
            r.chat_mode,
        ).where(r.name == room)
        async with self.engine.connect() as conn:
            row = (await conn.execute(stmt)).one_or_none()
        if row is None:
            return None
        self._room_cache[room] = int(row.created_at)
        return RoomRecord(
            created_at=int(row.created_at),
            locked=bool(row.locked),
            lobby=bool(row.lobby),
            password_hash=row.password_hash,
            max_participants=row.max_participants,
            managed=bool(row.managed),
            meeting=_decode_meeting(row.meeting),
            stage=None if row.stage is None else bool(row.stage),
            chat=row.chat_mode or "everyone",
        )

    async def save_room_settings(self, room: str, settings: RoomRecord) -> None:
        stmt = update(rooms).where(rooms.c.name == room).values(**_settings(settings))
        async with self.engine.begin() as conn:
            await conn.execute(stmt)

    async def save_meetings(
        self, meetings: dict[str, MeetingState | None], logged: Sequence[MeetingEvent] = ()
    ) -> None:
        if not meetings and not logged:
            return
        writer = self._sqlite_writer
        if writer is not None:
            # One job in the chat writer's thread, on its own sqlite3 connection: through
            # the engine this commit cost about 1.1 ms of CPU more (statement building and
            # a dozen aiosqlite thread hops), and a big room filling up writes it often.
            updates = [(_encode_meeting(m), room) for room, m in meetings.items()]
            await writer.save_meetings(updates, event_log.event_rows(logged))
            if not self._queue and not self._committing:
                writer.idle()  # as the chat writer does when it has nothing queued
            return
        async with self.engine.begin() as conn:
            if logged:
                await event_log.lock_for_events(conn)
            await event_log.insert_events(conn, logged)
            for room, meeting in meetings.items():
                await conn.execute(
                    update(rooms)
                    .where(rooms.c.name == room)
                    .values(meeting=_encode_meeting(meeting))
                )

    async def room_emptied(
        self, room: str, keep: RoomRecord | None, logged: Sequence[MeetingEvent] = ()
    ) -> None:
        async with self.engine.begin() as conn:
            if logged:
                await event_log.lock_for_events(conn)
            await event_log.insert_events(conn, logged)
            if keep is None:
                # A room that left no history is forgotten: join-and-leave must not
                # grow the table (nor the cache of creation times) without bound.
                # Attendance entries alone are no history worth keeping.
                has_history = exists().where(messages.c.room == room, in_chat_view())
                result = await conn.execute(delete(rooms).where(rooms.c.name == room, ~has_history))
                if result.rowcount:
                    await conn.execute(delete(messages).where(messages.c.room == room))
                    self._room_cache.pop(room, None)
                    return
                keep = RoomRecord(0)
            await conn.execute(
                update(rooms).where(rooms.c.name == room).values(**_settings(keep), meeting=None)
            )

    async def append_chat(
        self,
        room: str,
        sender: str,
        name: str,
        text: str,
        to: str | None,
        ts: int,
        system: bool = False,
        kind: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> ChatRecord:
        if self._engine is None or self._closing:
            raise RuntimeError("store is not open")
        row = {
            "room": room,
            "sender": sender,
            "name": name,
            "text": text,
            "recipient": to,
            "ts": ts,
            "system": system,
            "kind": kind,
            "data": None if data is None else msgspec.json.encode(data).decode(),
        }
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[ChatRecord] = loop.create_future()
        if (
            self._sqlite_writer is not None
            and self._low_rate()
            and not self._queue
            and not self._committing
            and len(self._turn) < INLINE_PER_TURN
        ):
            pending = _Pending(row, fut)
            self._turn.append(pending)
            self._appended_since += 1
            reads = self.reads
            if reads is None or reads() - self._reads_base <= self._appended_since:
                self._commit_now()
            elif len(self._turn) == 1:
                # In case the message read with it never comes (not a chat message).
                loop.call_soon(self._commit_now)
            if fut.done():
                return fut.result()  # no turn lost: delivered in this one
            return await fut
        self._queue.append(_Pending(row, fut))
        self._wakeup.set()
        # If the caller is cancelled, so is fut; the writer skips done futures
        # (the row may still be committed, which is harmless).
        return await fut

    def _commit_now(self) -> None:
        """Commit the messages waiting in ``_turn`` in place, in one commit.

        ``append_chat`` calls it when every client message read so far has reached the
        store (the reads since the last commit in place are no more than the messages
        appended since), else the last message of the burst does; a message read with
        them that is not a chat message leaves them to the next loop turn.  If the commit
        cannot run in place (see ``_SqliteWriter.insert_now``) or fails, the messages go
        to the writer task, ahead of anything queued: it waits off the loop or finds the
        bad row.  Nothing is acknowledged before its commit.
        """
        batch, self._turn = self._turn, []
        if not batch:  # committed already, by the last message of its burst
            return
        if self.reads is not None:
            self._reads_base = self.reads()
        self._appended_since = 0
        writer = self._sqlite_writer
        if writer is None:  # closed meanwhile (close() commits a pending turn first)
            _fail(batch, RuntimeError("store is not open"))
            return
        try:
            ids = writer.insert_now([p.row for p in batch])
        except Exception as exc:
            if len(batch) == 1:
                log.warning("chat commit of 1 rows failed: %s", exc)
                _fail(batch, exc)
                return
            ids = None  # rolled back: the writer task bisects to the bad row
        if ids is None:
            self._queue[:0] = batch
            self._wakeup.set()
            return
        self._finish(batch, ids)
        writer.idle()

    def _low_rate(self) -> bool:
        """Count one chat message; True while the rate is below INLINE_MAX_RATE."""
        self._appended += 1
        now = time.monotonic()
        elapsed = now - self._window_start
        if elapsed >= RATE_WINDOW:
            # After a quiet spell the window is long and the rate low, as it should be.
            self.rate = self._appended / elapsed
            self._appended = 0
            self._window_start = now
        return self.rate < INLINE_MAX_RATE

    async def _write_loop(self) -> None:
        while True:
            if not self._queue:
                if self._closing:
                    return
                if self._sqlite_writer is not None:
                    self._sqlite_writer.idle()
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            batch = self._queue[: self.max_batch]
            del self._queue[: self.max_batch]
            self._committing = True
            try:
                await self._commit_isolating_errors(batch)
            except asyncio.CancelledError:
                rest, self._queue = self._queue, []
                _fail(batch + rest, RuntimeError("store writer cancelled"))
                raise
            finally:
                self._committing = False

    async def _commit_isolating_errors(self, batch: list[_Pending]) -> None:
        """Commit ``batch``; on failure, fail only the callers whose rows are bad."""
        try:
            await self._commit_batch(batch)
        except Exception as exc:  # keep the writer alive whatever happens
            if len(batch) == 1 or _is_connectivity_error(exc):
                log.warning("chat commit of %d rows failed: %s", len(batch), exc)
                _fail(batch, exc)
                return
            # Likely one bad row (e.g. text the database rejects): bisect so its
            # batch-mates still get stored, at O(log n) extra commits per bad row.
            log.warning("chat commit of %d rows failed (%s); splitting", len(batch), exc)
            mid = len(batch) // 2
            await self._commit_isolating_errors(batch[:mid])
            await self._commit_isolating_errors(batch[mid:])

    async def _commit_batch(self, batch: list[_Pending]) -> None:
        rows = [p.row for p in batch]
        writer = self._sqlite_writer
        if writer is not None:
            ids = None
            if len(rows) <= INLINE_MAX_ROWS and self.rate < INLINE_MAX_RATE:
                ids = writer.insert_now(rows)
            if ids is None:
                ids = await writer.insert(rows)
            self._finish(batch, ids)
            return
        async with self.engine.begin() as conn:
            if self._chat_events:
                await event_log.lock_for_events(conn)
            if conn.dialect.name == "sqlite":
                ids = await _sqlite_insert_many(conn, rows)
            else:
                # sort_by_parameter_order: SQLAlchemy renders one INSERT .. SELECT
                # .. ORDER BY per page and matches RETURNING rows to parameters.
                stmt = insert(messages).returning(messages.c.id, sort_by_parameter_order=True)
                result = await conn.execute(stmt, rows)
                ids = [int(r) for r in result.scalars().all()]
            if self._chat_events:
                await event_log.insert_rows(conn, event_log.chat_events(rows, ids))
        self._finish(batch, ids)

    def _finish(self, batch: list[_Pending], ids: list[int]) -> None:
        if len(ids) != len(batch):  # pragma: no cover - would be a driver bug
            raise RuntimeError(f"inserted {len(batch)} rows but got {len(ids)} ids")
        self.commits += 1
        self.rows_committed += len(batch)
        for item, msg_id in zip(batch, ids, strict=True):
            if not item.future.done():
                item.future.set_result(_chat_record(item.row, msg_id))

    async def history(
        self,
        room: str,
        before: int | None,
        limit: int,
        viewer: str | None,
        questions: bool = False,
    ) -> tuple[list[ChatRecord], bool]:
        limit = max(limit, 0)
        # The stage's reads (questions) are few: they take the engine's path.
        if self._sqlite_reads is not None and not questions:
            in_place = self._sqlite_reads.page(room, before, limit, viewer)
            if in_place is not None:
                return in_place
        m = messages.c
        visible: ColumnElement[bool] = m.recipient.is_(None)
        if viewer is not None:
            visible = or_(visible, m.sender == viewer, m.recipient == viewer)
        if questions:  # the stage reads the audience's questions (core/stage.py)
            visible = or_(visible, m.recipient == QUESTIONS_TO)
        stmt = select(*record_columns()).where(m.room == room, visible, in_chat_view())
        if before is not None:
            stmt = stmt.where(m.id < before)
        # One extra row tells whether an older page exists.
        stmt = stmt.order_by(m.id.desc()).limit(limit + 1)
        async with self._history_reads, self.engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        more = len(rows) > limit
        page = [row_record(r) for r in reversed(rows[:limit])]
        return page, more

    # -- the event log ------------------------------------------------------------

    async def log_events(self, logged: Sequence[MeetingEvent]) -> None:
        """Events whose cause is not a store write (a recording's files): their own commit."""
        if not logged:
            return
        async with self.engine.begin() as conn:
            await event_log.lock_for_events(conn)
            await event_log.insert_events(conn, logged)

    async def events_after(self, after: int, limit: int) -> list[LoggedEvent]:
        async with self.engine.connect() as conn:
            return await event_log.after(conn, after, max(limit, 0))

    async def last_event_id(self) -> int:
        async with self.engine.connect() as conn:
            return await event_log.last_id(conn)

    async def delete_events_before(self, at_ms: int) -> int:
        async with self.engine.begin() as conn:
            return await event_log.delete_before(conn, at_ms)

    async def claim_receiver(
        self, target: str, holder: str, now_ms: int, lease_ms: int
    ) -> int | None:
        async with self.engine.begin() as conn:
            return await event_log.claim(conn, target, holder, now_ms, lease_ms)

    async def advance_receiver(self, target: str, holder: str, last: int) -> bool:
        async with self.engine.begin() as conn:
            return await event_log.advance(conn, target, holder, last)

    async def release_receiver(self, target: str, holder: str) -> None:
        async with self.engine.begin() as conn:
            await event_log.release(conn, target, holder)


_SQLITE_COLS = ("room", "sender", "name", "text", "recipient", "ts", "system", "kind", "data")
# Rows per INSERT statement: 9 * 110 = 990 bind parameters, under the 999 limit
# of old SQLite builds.
_SQLITE_ROWS_PER_STMT = 110


def _chat_record(row: dict[str, Any], msg_id: int) -> ChatRecord:
    return ChatRecord(
        id=msg_id,
        ts=row["ts"],
        room=row["room"],
        sender=row["sender"],
        name=row["name"],
        text=row["text"],
        to=row["recipient"],
        system=row["system"],
        kind=row["kind"],
        data=decode_data(row["data"]),
    )


def _settings(record: RoomRecord) -> dict[str, Any]:
    """A room row's settings columns."""
    return {
        "locked": record.locked,
        "lobby": record.lobby,
        "password_hash": record.password_hash,
        "max_participants": record.max_participants,
        "managed": record.managed,
        "stage": record.stage,
        "chat_mode": None if record.chat == "everyone" else record.chat,
    }


class _MeetingJson(msgspec.Struct):
    members: dict[str, str]
    banned: list[str] = []


def _encode_meeting(meeting: MeetingState | None) -> str | None:
    if meeting is None:
        return None
    return msgspec.json.encode(_MeetingJson(meeting.members, list(meeting.banned))).decode()


def _decode_meeting(text: str | None) -> MeetingState | None:
    if text is None:
        return None
    try:
        data = msgspec.json.decode(text, type=_MeetingJson)
    except msgspec.DecodeError:
        log.warning("unreadable stored meeting state ignored")
        return None
    return MeetingState(data.members, tuple(data.banned))


async def _sqlite_insert_many(conn: AsyncConnection, rows: list[dict[str, Any]]) -> list[int]:
    """Multi-row INSERT .. RETURNING on SQLite; ids in the order of ``rows``.

    SQLAlchemy falls back to one statement per row here because SQLite does not
    promise an order for RETURNING rows. But the rows of a multi-row VALUES are
    inserted in order, and (we hold the write lock, the id is INTEGER PRIMARY
    KEY) each one gets max(id) + 1, so sorting the returned ids restores the
    parameter order.
    """
    ids: list[int] = []
    for sql, params in _sqlite_insert_statements(rows):
        result = await conn.exec_driver_sql(sql, params)
        ids.extend(sorted(int(r[0]) for r in result.all()))
    return ids


def _sqlite_insert_statements(
    rows: list[dict[str, Any]],
) -> Iterator[tuple[str, tuple[Any, ...]]]:
    """Multi-row INSERT .. RETURNING id statements for ``rows``, in chunks."""
    for start in range(0, len(rows), _SQLITE_ROWS_PER_STMT):
        chunk = rows[start : start + _SQLITE_ROWS_PER_STMT]
        yield _sqlite_insert_sql(len(chunk)), tuple(row[c] for row in chunk for c in _SQLITE_COLS)


@functools.lru_cache(maxsize=_SQLITE_ROWS_PER_STMT)
def _sqlite_insert_sql(n: int) -> str:
    """The INSERT .. RETURNING id statement for ``n`` rows (the same string each time, so
    sqlite3's statement cache finds it)."""
    placeholders = "(" + ", ".join("?" * len(_SQLITE_COLS)) + ")"
    return (
        f"INSERT INTO messages ({', '.join(_SQLITE_COLS)}) VALUES "
        + ", ".join([placeholders] * n)
        + " RETURNING id"
    )


def _sqlite_file(database: str) -> str | None:
    """The path of a file database (None for in-memory or URI databases)."""
    if database in ("", ":memory:") or database.startswith("file:") or "mode=memory" in database:
        return None
    return str(Path(database).expanduser())


class _SqliteWriter:
    """The chat writer's own sqlite3 connection: its thread, or the event loop.

    A group commit through aiosqlite hops to its worker thread for every
    statement (begin, inserts, fetches, commit: about six hops); here a whole
    batch is one hop.  With WAL and synchronous=NORMAL the commit does not wait
    for the disk, so a batch takes tens of microseconds (with ``--durability full``,
    synchronous=FULL, each batch waits for one sync of the WAL).  For the same
    reason small commits at low rates run in place, on the event loop
    (``insert_now``), when no thread job is pending and no other connection holds
    the write lock: no hop at all.

    Two steps do wait for the disk.  The WAL checkpoint syncs the database file:
    SQLite would run it inside every commit that takes the WAL past 1,000 pages,
    holding up the chat messages queued behind that commit for as long as the
    sync takes (the p99 of chat at 800 msgs/s was 3.5 ms with it, 0.8-1.3 ms
    without).  Here it runs on a second connection and thread when the writer is
    idle.  And the first commit after a complete checkpoint starts the WAL over,
    writing a new WAL header and syncing it (even at synchronous=NORMAL: SQLite
    needs that to stay consistent after a power loss); that sync took one chat
    commit in every ``CHECKPOINT_EVERY`` from 0.1 ms to 4 ms.  So when a checkpoint
    completes, this thread starts the WAL over at once with a write of its own
    (``_restart``) and chat commits that come meanwhile queue behind it; a message
    waits for that sync only if it arrives during it.

    Under a sustained flood the writer is never idle, and a checkpoint that
    overlaps commits cannot let the WAL start over, so then the writer
    checkpoints inline now and then (as SQLite would): the WAL stays bounded.

    The count of commits that bound (``uncheckpointed``) goes back to zero only when
    the WAL really started over, as its header shows (``_wal_generation``), not when
    a checkpoint merely completed: a write transaction begun before the checkpoint
    ended, or a reader holding a snapshot of the old WAL, keeps the next write from
    starting it over, and a count reset then let the WAL grow by another
    ``CHECKPOINT_INLINE`` commits each time (1,000+ pages where 200 were meant).
    """

    #: Commits after which a background checkpoint starts, when the writer is idle...
    CHECKPOINT_EVERY = 200
    #: ...at most once in this many seconds (each one ends with a sync in the writer's
    #: thread), unless half of CHECKPOINT_INLINE commits are waiting for one.
    CHECKPOINT_INTERVAL = 1.0
    #: Commits without a complete checkpoint after which the writer runs one itself.
    CHECKPOINT_INLINE = 1000
    #: A WAL file that grew past this is truncated back when it starts over.
    WAL_SIZE_LIMIT = 64 * 1024 * 1024
    #: How long a commit in the writer's thread waits for another connection's lock.
    BUSY_TIMEOUT_MS = 10000

    def __init__(self, path: str, synchronous: str = "NORMAL") -> None:
        self._synchronous = synchronous
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="parley-sqlite")
        self._checkpointer = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="parley-sqlite-checkpoint"
        )
        self._path = path
        self._conn: sqlite3.Connection | None = None
        #: The busy timeout ``_conn`` has now (see ``_busy_timeout``).
        self._busy_ms = self.BUSY_TIMEOUT_MS
        self._checkpoint_conn: sqlite3.Connection | None = None
        #: Held by the thread running a checkpoint (see ``_begin``).
        self._checkpoint_running = threading.Lock()
        #: Commits in all, and commits the WAL may hold that no checkpoint has copied.
        self.commits = 0
        self.uncheckpointed = 0
        #: Times the WAL was started over by ``_restart`` (off the chat path).
        self.restarts = 0
        #: A write transaction of this writer is open, from just before its BEGIN to
        #: just after its commit is counted (see ``_run_checkpoint``).
        self._writing = False
        self._checkpoint: asyncio.Future[int | None] | None = None
        #: The ``_restart`` queued after a complete background checkpoint.
        self._restarting: asyncio.Future[None] | None = None
        self._checkpoint_started = -self.CHECKPOINT_INTERVAL
        #: Jobs handed to the writer's thread and not finished (counted on the loop).
        self._jobs = 0
        self._closing = False
        #: Log a chat.message event with each chat row (see SqlStore.chat_events).
        self.chat_events = False

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout={self.BUSY_TIMEOUT_MS}")  # before WAL: see
        conn.execute("PRAGMA journal_mode=WAL")  # _set_sqlite_pragmas
        conn.execute(f"PRAGMA synchronous={self._synchronous}")
        return conn

    def _writer_conn(self) -> sqlite3.Connection:
        """The connection, in the writer's thread (waits for other connections' locks)."""
        if self._conn is None:
            self._conn = self._connect()
            self._busy_ms = self.BUSY_TIMEOUT_MS
            self._conn.execute("PRAGMA wal_autocheckpoint=0")  # see the class docstring
            self._conn.execute(f"PRAGMA journal_size_limit={self.WAL_SIZE_LIMIT}")
        self._busy_timeout(self._conn, self.BUSY_TIMEOUT_MS)
        return self._conn

    def _begin(self) -> sqlite3.Connection:
        """In the writer's thread: a write transaction on its connection."""
        conn = self._writer_conn()
        if self.uncheckpointed >= self.CHECKPOINT_INLINE:
            # No write runs now, so this copies the whole WAL and the next write starts it
            # over.  A background checkpoint still running (its sync of the database file
            # can take seconds on a busy disk) is waited for first: meanwhile every inline
            # attempt would meet SQLite's checkpoint lock, and the WAL would keep growing.
            with self._checkpoint_running:
                busy, log_frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            if not busy and log_frames == copied:
                # Starts the WAL over and resets the count, unless a reader still holds
                # the old WAL: then the next write checkpoints and tries again.
                self._restart()
        self._open_write(conn)
        return conn

    def _open_write(self, conn: sqlite3.Connection) -> None:
        """BEGIN IMMEDIATE, with ``_writing`` set from just before it (``_run_checkpoint``
        must not count a checkpoint complete while a write transaction may be open)."""
        self._writing = True
        try:
            conn.execute("BEGIN IMMEDIATE")
        except BaseException:
            self._writing = False
            raise

    def _insert(self, rows: list[dict[str, Any]]) -> list[int]:
        return self._insert_and_commit(self._begin(), rows)

    def _save_meetings(
        self, updates: list[tuple[str | None, str]], event_rows: list[dict[str, Any]]
    ) -> None:
        """In the writer's thread: running meetings' states (JSON, room) and their events,
        in one transaction (``SqlStore.save_meetings``)."""
        conn = self._begin()
        with self._committing(conn):
            if event_rows:
                event_log.sqlite_insert_rows(conn, event_rows)
            conn.executemany("UPDATE rooms SET meeting = ? WHERE name = ?", updates)

    def _insert_and_commit(self, conn: sqlite3.Connection, rows: list[dict[str, Any]]) -> list[int]:
        """In a write transaction that holds the lock: insert ``rows`` and commit."""
        ids: list[int] = []
        with self._committing(conn):
            for sql, params in _sqlite_insert_statements(rows):
                # See _sqlite_insert_many: sorted ids are in parameter order.
                ids.extend(sorted(int(r[0]) for r in conn.execute(sql, params).fetchall()))
            if self.chat_events:
                event_log.sqlite_insert_rows(conn, event_log.chat_events(rows, ids))
        return ids

    @contextlib.contextmanager
    def _committing(self, conn: sqlite3.Connection) -> Iterator[None]:
        """The open write transaction's work, then COMMIT (counted: the checkpoint
        policy of ``_begin`` reads it), or ROLLBACK on any error."""
        try:
            yield
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            self._writing = False
            raise
        self.commits += 1
        self.uncheckpointed += 1
        self._writing = False  # after the count: _run_checkpoint reads them in this order

    def insert_now(self, rows: list[dict[str, Any]]) -> list[int] | None:
        """Commit ``rows`` here, on the event loop, if that cannot wait; else None.

        It could wait for the disk at synchronous=FULL, behind the flood-guard
        checkpoint, for the writer's thread (a batch or ``_restart`` in flight),
        or for another connection's write lock: then the caller queues the rows
        for the thread, as before.
        """
        conn = self._conn
        if (
            conn is None  # the thread opens it, with the first batch
            or self._synchronous != "NORMAL"
            or self._jobs
            or self.uncheckpointed >= self.CHECKPOINT_INLINE
        ):
            return None
        self._busy_timeout(conn, 0)
        try:
            self._open_write(conn)
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY:
                return None
            raise
        return self._insert_and_commit(conn, rows)

    def _busy_timeout(self, conn: sqlite3.Connection, ms: int) -> None:
        """Set how long a write waits for another connection's lock, if it changes: none
        on the event loop, BUSY_TIMEOUT_MS in the thread (two statements fewer a commit
        than setting it around each commit in place)."""
        if self._busy_ms != ms:
            conn.execute(f"PRAGMA busy_timeout={ms}")
            self._busy_ms = ms

    def _run_checkpoint(self) -> int | None:
        """Copy the WAL into the database; the commit count then if it copied every
        commit, else None."""
        if self._checkpoint_conn is None:
            self._checkpoint_conn = self._connect()
        commits = self.commits
        # PASSIVE: copy what it can without blocking the writer or any reader.
        with self._checkpoint_running:
            busy, log_frames, copied = self._checkpoint_conn.execute(
                "PRAGMA wal_checkpoint(PASSIVE)"
            ).fetchone()
        # All copied, no write transaction open (one begun before the copy ended reads
        # the old WAL: its commit appends to it, and so does the next one) and none
        # committed since: the next write starts the WAL over.  _writing is read first:
        # a transaction clears it only after counting its commit.
        writing = self._writing
        if not busy and log_frames == copied and not writing and self.commits == commits:
            return commits
        return None

    def _wal_generation(self) -> bytes | None:
        """The WAL header's checkpoint sequence number, which SQLite increments each time
        the WAL starts over (None: no WAL file)."""
        try:
            with open(f"{self._path}-wal", "rb") as wal:
                return wal.read(16)[12:16]
        except FileNotFoundError:
            return None

    def _restart(self) -> None:
        """Start the WAL over now, with a write that changes nothing.

        The WAL starts over at the first commit after a complete checkpoint, and
        that commit syncs the new WAL header: this one pays the sync, not a chat
        message's.  The write sets the database's user_version to its own value
        (it rewrites page 1; nothing in Parley reads user_version).  If a reader
        still holds the old WAL, nothing starts over: the flood guard's count is reset
        only when the WAL header shows a new generation, so the next checkpoint retries.
        """
        conn = self._writer_conn()
        (version,) = conn.execute("PRAGMA user_version").fetchone()
        before = self._wal_generation()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(f"PRAGMA user_version={int(version)}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        if self._wal_generation() != before:
            # The WAL holds this write alone: the flood guard counts from here.
            self.uncheckpointed = 0
            self.restarts += 1

    async def insert(self, rows: list[dict[str, Any]]) -> list[int]:
        return await self._run(self._insert, rows)

    async def save_meetings(
        self, updates: list[tuple[str | None, str]], event_rows: list[dict[str, Any]]
    ) -> None:
        await self._run(self._save_meetings, updates, event_rows)

    async def _run(self, fn: Callable[..., _T], *args: Any) -> _T:
        job = asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
        self._jobs += 1
        job.add_done_callback(self._job_done)
        # Shielded: a cancelled caller leaves the thread running, and _jobs counts it
        # until it is done (no commit in place may use the connection meanwhile).
        return await asyncio.shield(job)

    def _job_done(self, job: asyncio.Future[Any]) -> None:
        self._jobs -= 1
        if not job.cancelled():
            job.exception()  # retrieved: the caller (if still waiting) has it raised

    def idle(self) -> None:
        """The writer has nothing queued: a good moment for a background checkpoint."""
        if self.uncheckpointed < self.CHECKPOINT_EVERY or self._closing:
            return
        if self._checkpoint is not None and not self._checkpoint.done():
            return
        if self._restarting is not None and not self._restarting.done():
            return  # the WAL is being started over after a complete checkpoint
        if self.uncheckpointed >= self.CHECKPOINT_INLINE:
            # The writer's thread checkpoints inline at its next write; a background one
            # running then would make it busy, and when commits keep coming (each one
            # spoils the background result) the WAL would grow without bound.
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        if (
            now - self._checkpoint_started < self.CHECKPOINT_INTERVAL
            and self.uncheckpointed < self.CHECKPOINT_INLINE // 2
        ):
            return
        self._checkpoint_started = now
        self._checkpoint = loop.run_in_executor(self._checkpointer, self._run_checkpoint)
        self._checkpoint.add_done_callback(self._checkpointed)

    def _checkpointed(self, fut: asyncio.Future[int | None]) -> None:
        if fut.cancelled():
            return
        if fut.exception() is not None:
            # A failed checkpoint loses nothing (the WAL keeps every commit); the next
            # one retries.
            log.warning("SQLite checkpoint failed: %s", fut.exception())
            return
        if fut.result() != self.commits or self._closing:
            # Incomplete, or commits in place came before this callback: the first of
            # them started the WAL over (or found a reader holding the old one).
            return
        # Queued in the writer's thread ahead of any batch that comes later, and no
        # commit runs in place meanwhile (_jobs): none of them starts the WAL over.
        restart = asyncio.get_running_loop().run_in_executor(self._executor, self._restart)
        self._restarting = restart
        self._jobs += 1
        restart.add_done_callback(self._job_done)
        restart.add_done_callback(_log_restart_failure)

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _close_checkpointer(self) -> None:
        if self._checkpoint_conn is not None:
            self._checkpoint_conn.close()
            self._checkpoint_conn = None

    async def close(self) -> None:
        self._closing = True
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._checkpointer, self._close_checkpointer)
        self._checkpointer.shutdown(wait=True)
        await loop.run_in_executor(self._executor, self._close)
        self._executor.shutdown(wait=True)


def _log_restart_failure(fut: asyncio.Future[None]) -> None:
    # Nothing is lost: the WAL keeps every commit, and the next checkpoint retries.
    if not fut.cancelled() and fut.exception() is not None:
        log.warning("SQLite WAL restart failed: %s", fut.exception())


def _fail(batch: list[_Pending], exc: BaseException) -> None:
    for item in batch:
        if not item.future.done():
            item.future.set_exception(exc)
