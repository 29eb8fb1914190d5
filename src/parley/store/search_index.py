"""SQLite's chat search index: an FTS5 table in a database file of its own, beside the store.

The index lives in ``<database>-search`` (attached to every store connection as
``search``), not in the main file, so that filling it never takes the main database's write
lock: a chat commit never waits behind an index batch (with the index in the main file, a
batch of a second's messages held the lock, and a chat commit that met it waited in SQLite's
busy handler, which sleeps 1, 2, 5 ... ms), and an insert writes no extra row for it
(migration 0008 dropped the pending-id trigger of 0005).  The indexer tracks the last
message id it indexed: one ``INSERT … SELECT`` copies every newer message (SQLite runs it
without Python's GIL), on a thread and connection of its own.  A search indexes what is
pending first, so it finds every stored message.

The background step (once a second) is split in two so that a busy core never waits for
it: a thread at normal priority reads the new messages in one short snapshot of the main
database, and a thread at the lowest priority (``SCHED_IDLE``: it runs only when the core
has nothing else to do) writes them into the index, touching only the index's file.  Before,
a second's batch of index writes ran at normal priority beside the event loop on the same
core, taking milliseconds of it in one go; at a low priority as a whole, a step was preempted
for seconds while holding its snapshot of the main database, which no WAL checkpoint can
pass.  A search's own step, and any step with deletions to apply, runs whole on the reading
thread, at normal priority.

Deletions (a deleted message, retention, a room forgotten) are recorded in the main
database by a trigger, in the deleting transaction (``search_deleted``, migration 0008), and
the next index step removes them from the index: a crash in between loses no removal.  SQLite
reuses the id of a deleted newest row, so the step also re-indexes any deleted id that exists
again.  The index is derived data: if its file is missing it is rebuilt from the messages.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final

log = logging.getLogger(__name__)

#: Seconds between background index steps.
INDEX_INTERVAL: Final = 1.0
#: Messages a background step reads at most (it holds them in memory): a longer backlog
#: (an index rebuilt at start) is indexed by steps that follow one another at once.
READ_LIMIT: Final = 5000
#: The schema name the index's database is attached as.
SCHEMA: Final = "search"

#: Created in the attached database at start (it is not part of the migrated schema: a
#: missing file is simply rebuilt).  The table keeps its own copy of room and text, so that
#: deleting a row needs only its id.  The room is indexed too: a search ANDs its words with
#: the room's, and FTS5 skips through long posting lists to the few entries of a small room.
CREATE: Final = (
    f"CREATE VIRTUAL TABLE IF NOT EXISTS {SCHEMA}.messages_fts USING fts5(room, text, "
    "tokenize='unicode61 remove_diacritics 2')",
    f"CREATE TABLE IF NOT EXISTS {SCHEMA}.search_indexed "
    "(one INTEGER PRIMARY KEY CHECK (one = 1), last_id INTEGER NOT NULL)",
)

#: ``execute(sql, params) -> (rows, rowcount)`` on one connection.
Execute = Callable[[str, Sequence[Any]], tuple[list[Any], int]]


def search_database(database: str) -> str:
    """The index's database for the store's SQLite ``database`` (an in-memory one for an
    in-memory store, whose pool is one connection)."""
    if database in ("", ":memory:") or "mode=memory" in database:
        return ":memory:"
    path, sep, query = database.partition("?")
    return f"{path}-search{sep}{query}"


def attach(dbapi_connection: Any, database: str) -> None:
    """Attach the index's database to a new store connection (its ``connect`` event)."""
    cur = dbapi_connection.cursor()
    cur.execute(f"ATTACH DATABASE ? AS {SCHEMA}", (database,))
    if database != ":memory:":
        cur.execute(f"PRAGMA {SCHEMA}.journal_mode=WAL")  # readers never block the indexer
        cur.execute(f"PRAGMA {SCHEMA}.synchronous=NORMAL")
    cur.close()


def prepare(execute: Execute) -> None:
    """Create the index if missing, and start it over if it cannot belong to these messages
    (it indexed ids beyond the newest message, with no deletion to explain it: e.g. the main
    file was replaced by an older copy)."""
    for statement in CREATE:
        execute(statement, ())
    rows, _ = execute(f"SELECT last_id FROM {SCHEMA}.search_indexed", ())
    last = int(rows[0][0]) if rows else 0
    (top,), _ = _one(execute("SELECT coalesce(max(id), 0) FROM main.messages", ()))
    (deleted,), _ = _one(execute("SELECT count(*) FROM main.search_deleted", ()))
    if last > int(top) and not deleted:
        log.warning("search index does not match the messages: rebuilding it")
        execute(f"DELETE FROM {SCHEMA}.messages_fts", ())
        execute(f"DELETE FROM {SCHEMA}.search_indexed", ())


def _one(result: tuple[list[Any], int]) -> tuple[Any, int]:
    rows, count = result
    return rows[0], count


def index_step(execute: Execute) -> tuple[int, int]:
    """Bring the index up to date in the caller's transaction: (rows indexed, the last
    deletion record applied; 0: none).  The caller then deletes those deletion records
    (``CLEAR_DELETED``) in the main database, in a transaction of its own."""
    rows, _ = execute(f"SELECT last_id FROM {SCHEMA}.search_indexed", ())
    last = int(rows[0][0]) if rows else 0
    (seq,), _ = _one(execute("SELECT coalesce(max(seq), 0) FROM main.search_deleted", ()))
    (top,), _ = _one(execute("SELECT coalesce(max(id), 0) FROM main.messages", ()))
    seq, top = int(seq), int(top)
    indexed = 0
    if seq:
        deleted = "SELECT id FROM main.search_deleted WHERE seq <= ?"
        execute(f"DELETE FROM {SCHEMA}.messages_fts WHERE rowid IN ({deleted})", (seq,))
        # A deleted id that exists again is a new message (SQLite reused the id).
        _, n = execute(
            f"INSERT INTO {SCHEMA}.messages_fts (rowid, room, text) "
            f"SELECT id, room, text FROM main.messages WHERE id <= ? AND id IN ({deleted})",
            (last, seq),
        )
        indexed += max(n, 0)
    if top > last:
        _, n = execute(
            f"INSERT INTO {SCHEMA}.messages_fts (rowid, room, text) "
            "SELECT id, room, text FROM main.messages WHERE id > ? ORDER BY id",
            (last,),
        )
        indexed += max(n, 0)
    if top != last:
        # Lower too, when the newest messages were deleted: an id above `top` that is
        # used again is new.
        execute(
            f"INSERT OR REPLACE INTO {SCHEMA}.search_indexed (one, last_id) VALUES (1, ?)",
            (top,),
        )
    return indexed, seq


#: Up to ``limit`` messages after an id, as one JSON array of ``[id, room, text]``
#: (oldest first), with their count and last id: one value, built by SQLite without
#: Python's GIL.  Fetched row by row, a thread needs the GIL for every row, and beside a
#: busy event loop it gets it once per switch interval (5 ms), forcing the loop to hand
#: it over each time.
READ_BATCH: Final = (
    "SELECT json_group_array(json_array(id, room, text)), count(*), max(id) FROM "
    "(SELECT id, room, text FROM main.messages WHERE id > ? ORDER BY id LIMIT ?)"
)


def read_new(execute: Execute, limit: int) -> tuple[int, int, int, str] | None:
    """The first half of a background step, in the caller's read transaction: the last id
    indexed, and up to ``limit`` newer messages: (last, count, last of them, JSON array);
    None if deletions are waiting (then the caller runs a whole ``index_step``)."""
    rows, _ = execute(f"SELECT last_id FROM {SCHEMA}.search_indexed", ())
    last = int(rows[0][0]) if rows else 0
    (seq,), _ = _one(execute("SELECT coalesce(max(seq), 0) FROM main.search_deleted", ()))
    if seq:
        return None
    (batch, count, top), _ = _one(execute(READ_BATCH, (last, limit)))
    return last, int(count), int(top or 0), str(batch)


#: The second half, on a connection to the index's file alone (no main database).
READ_LAST: Final = "SELECT last_id FROM search_indexed"
#: One statement for the whole batch (READ_BATCH's JSON array), without the GIL.
INSERT_NEW: Final = (
    "INSERT INTO messages_fts (rowid, room, text) "
    "SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each(?)"
)
SET_LAST: Final = "INSERT OR REPLACE INTO search_indexed (one, last_id) VALUES (1, ?)"


def lowest_priority() -> None:
    """Make the calling thread run only when its core is otherwise idle (Linux's
    SCHED_IDLE; elsewhere the highest nice value).  Best effort."""
    try:
        if hasattr(os, "sched_setscheduler") and hasattr(os, "SCHED_IDLE"):
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))  # this thread only
        else:  # pragma: no cover - not Linux
            os.nice(19)
    except OSError as exc:  # pragma: no cover - refused by the platform
        log.info("search indexer keeps its priority: %s", exc)


#: A write that changes nothing: it takes the index's write lock at a step's start.
TAKE_LOCK: Final = f"INSERT OR IGNORE INTO {SCHEMA}.search_indexed (one, last_id) VALUES (1, 0)"

#: Deletion records applied by a step (run on the main database after the step commits).
CLEAR_DELETED: Final = "DELETE FROM search_deleted WHERE seq <= ?"


class FileIndexer:
    """Index steps on their own connection and thread, for a store in a file."""

    BUSY_TIMEOUT_MS = 10000
    #: Tries of a step that meets another indexer's newer write.
    ATTEMPTS = 5

    def __init__(self, database: str, search: str) -> None:
        self._database = database
        self._search = search
        # Normal priority: a step holds a read snapshot of the main database, which a WAL
        # checkpoint cannot pass; at a low priority on a busy core a step was preempted for
        # seconds, the chat writer's checkpoints could not complete, and chat stalled.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="parley-search-index")
        self._conn: sqlite3.Connection | None = None
        # The writing half of a background step, at the lowest priority: it touches only
        # the index's file, so being preempted there holds up nothing but the index.
        self._filler = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="parley-search-fill", initializer=lowest_priority
        )
        self._fill_conn: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(self._database, isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout={self.BUSY_TIMEOUT_MS}")
            attach(conn, self._search)
            self._conn = conn
        return self._conn

    def _step(self) -> tuple[int, int]:
        conn = self._connection()

        def execute(sql: str, params: Sequence[Any]) -> tuple[list[Any], int]:
            cur = conn.execute(sql, tuple(params))
            return cur.fetchall(), cur.rowcount

        for attempt in range(self.ATTEMPTS):
            # Deferred: it reads the main database (one snapshot, no lock the chat writer
            # waits for) and writes only the index's.
            conn.execute("BEGIN")
            try:
                # The index's write lock first (waiting for another process's indexer, if
                # any, in the busy handler), then the snapshot of the messages.
                conn.execute(TAKE_LOCK)
                done = index_step(execute)
                conn.execute("COMMIT")
                return done
            except sqlite3.OperationalError as exc:
                conn.execute("ROLLBACK")
                # Another process's indexer (``--workers``) wrote the index since this
                # step's snapshot (SQLITE_BUSY_SNAPSHOT, not retried by the busy handler):
                # start over from its result.
                if (
                    exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY
                    or attempt == self.ATTEMPTS - 1
                ):
                    raise
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        raise AssertionError("unreachable")

    async def step(self) -> tuple[int, int]:
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._step)

    def _read(self) -> tuple[int, int, int, str] | None:
        """The reading half of a background step (normal priority): one short snapshot."""
        conn = self._connection()

        def execute(sql: str, params: Sequence[Any]) -> tuple[list[Any], int]:
            cur = conn.execute(sql, tuple(params))
            return cur.fetchall(), cur.rowcount

        conn.execute("BEGIN")
        try:
            return read_new(execute, READ_LIMIT)
        finally:
            conn.execute("COMMIT")  # read only: this ends the snapshot

    def _fill(self, last: int, top: int, count: int, batch: str) -> int:
        """The writing half (lowest priority): ``batch`` (``count`` rows up to id ``top``,
        as JSON) into the index, if it still ends at ``last`` (another process's indexer
        may have gone on meanwhile: then nothing is written, and the next step reads from
        where that one stopped)."""
        if self._fill_conn is None:
            conn = sqlite3.connect(self._search, isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout={self.BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._fill_conn = conn
        conn = self._fill_conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            now = conn.execute(READ_LAST).fetchall()
            if (int(now[0][0]) if now else 0) != last:
                conn.execute("ROLLBACK")
                return 0
            conn.execute(INSERT_NEW, (batch,))
            conn.execute(SET_LAST, (top,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return count

    async def background_step(self) -> tuple[int, int]:
        """A step for the background loop: read at normal priority, write at the lowest;
        a whole ``step`` when deletions are waiting.  (rows indexed, deletions applied)"""
        loop = asyncio.get_running_loop()
        read = await loop.run_in_executor(self._executor, self._read)
        if read is None:
            return await self.step()
        last, count, top, batch = read
        if not count:
            return 0, 0
        return await loop.run_in_executor(self._filler, self._fill, last, top, count, batch), 0

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _close_fill(self) -> None:
        if self._fill_conn is not None:
            self._fill_conn.close()
            self._fill_conn = None

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._filler, self._close_fill)
        self._filler.shutdown(wait=True)
        await loop.run_in_executor(self._executor, self._close)
        self._executor.shutdown(wait=True)
