"""SqlStore on SQLite and PostgreSQL: schema, rooms, chat, group commit, durability."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import event, text

import parley
from parley.store import Store, open_store
from parley.store.sql import SqlStore, _SqliteWriter, _upgrade

if TYPE_CHECKING:
    from tests.store.conftest import StoreFactory


async def _append(
    store: SqlStore, i: int, room: str = "r", text_size: int = 0, **kw: str | None
) -> int:
    rec = await store.append_chat(
        room,
        str(kw.get("sender", "alice")),
        "Alice",
        f"m{i}".ljust(text_size, "."),
        kw.get("to"),
        1_000 + i,
    )
    return rec.id


def _head_revision() -> str:
    from alembic.script import ScriptDirectory

    from parley.store.sql import alembic_config

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


async def test_migrations_idempotent(make_store: StoreFactory) -> None:
    store = await make_store.open()
    async with store.engine.begin() as conn:
        await conn.run_sync(_upgrade)  # already at head: a no-op
        version = (await conn.execute(text("SELECT version_num FROM alembic_version"))).all()
        assert version == [(_head_revision(),)]
    await store.close()
    again = await make_store.open()  # second start: no error, no duplicate tables
    await _append(again, 1)
    async with again.engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM alembic_version"))).scalar() == 1


async def test_ensure_room_keeps_first_creation_time(make_store: StoreFactory) -> None:
    store = await make_store.open()
    assert await store.room_created_at("lobby") is None
    assert await store.ensure_room("lobby", 100) == 100
    assert await store.ensure_room("lobby", 200) == 100
    assert await store.room_created_at("lobby") == 100
    assert await store.ensure_room("other", 300) == 300
    # A second store (no cache) reads the stored value.
    other = await make_store.open()
    assert await other.room_created_at("lobby") == 100
    assert await other.ensure_room("lobby", 999) == 100
    assert await other.room_created_at("nope") is None


async def test_concurrent_ensure_room_agrees(make_store: StoreFactory) -> None:
    a = await make_store.open()
    b = await make_store.open()
    results = await asyncio.gather(*(s.ensure_room("x", t) for t, s in enumerate([a, b] * 5)))
    assert len(set(results)) == 1


async def test_append_returns_record_with_increasing_ids(store: SqlStore) -> None:
    first = await store.append_chat("r", "p1", "Pat", "hello", None, 123)
    assert (first.room, first.sender, first.name, first.text, first.to, first.ts) == (
        "r",
        "p1",
        "Pat",
        "hello",
        None,
        123,
    )
    ids = [first.id] + [await _append(store, i) for i in range(10)]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    page, more = await store.history("r", None, 50, None)
    assert [m.id for m in page] == ids and not more
    assert page[0] == first


async def test_history_paging(store: SqlStore) -> None:
    ids = [await _append(store, i) for i in range(25)]
    await _append(store, 99, room="elsewhere")  # other rooms never leak in

    page1, more1 = await store.history("r", None, 10, None)
    assert [m.id for m in page1] == ids[15:] and more1  # newest 10, oldest first
    page2, more2 = await store.history("r", page1[0].id, 10, None)
    assert [m.id for m in page2] == ids[5:15] and more2
    page3, more3 = await store.history("r", page2[0].id, 10, None)
    assert [m.id for m in page3] == ids[:5] and not more3
    assert [m.text for m in page3] == [f"m{i}" for i in range(5)]

    # Exactly `limit` left: no further page.
    exact, more = await store.history("r", ids[10], 10, None)
    assert [m.id for m in exact] == ids[:10] and not more
    assert await store.history("r", ids[0], 10, None) == ([], False)
    assert await store.history("empty", None, 10, None) == ([], False)
    assert await store.history("r", None, 0, None) == ([], True)


async def test_a_burst_of_history_reads_uses_the_pooled_connections(store: SqlStore) -> None:
    """Twenty welcomes at once (people moved into breakouts) each read a page: all are
    answered, over the connections the pool keeps (5), not twenty new ones."""
    ids = [await _append(store, i) for i in range(5)]
    opened: list[object] = []
    event.listen(store.engine.sync_engine, "connect", lambda *_: opened.append(1))
    before = store.engine.sync_engine.pool.checkedin()
    pages = await asyncio.gather(*(store.history("r", None, 10, f"p{i}") for i in range(20)))
    assert all([m.id for m in page] == ids and not more for page, more in pages)
    assert before + len(opened) <= 5


async def test_private_messages_visibility(store: SqlStore) -> None:
    pub = await store.append_chat("r", "a", "A", "public", None, 1)
    a_to_b = await store.append_chat("r", "a", "A", "psst b", "b", 2)
    c_to_a = await store.append_chat("r", "c", "C", "psst a", "a", 3)
    assert a_to_b.to == "b"

    async def seen(viewer: str | None) -> list[int]:
        page, _ = await store.history("r", None, 10, viewer)
        return [m.id for m in page]

    assert await seen("a") == [pub.id, a_to_b.id, c_to_a.id]  # sender of one, recipient of other
    assert await seen("b") == [pub.id, a_to_b.id]  # recipient
    assert await seen("c") == [pub.id, c_to_a.id]  # sender
    assert await seen("d") == [pub.id]  # bystander
    assert await seen(None) == [pub.id]  # anonymous: public only
    page, _ = await store.history("r", None, 10, "b")
    assert page[1].to == "b" and page[1].text == "psst b"

    # Paging counts only visible messages.
    for i in range(5):
        await store.append_chat("r", "a", "A", f"secret{i}", "b", 10 + i)
    page, more = await store.history("r", None, 1, "d")
    assert [m.id for m in page] == [pub.id] and not more


async def test_pages_read_in_place_are_the_engines_pages(store: SqlStore) -> None:
    """On SQLite a history page is read on the event loop (store/sqlite_reads.py): the
    same messages, fields and ``more`` as the query through SQLAlchemy, for every viewer,
    cursor and size, attendance entries left out."""
    ids = []
    for i in range(12):
        ids.append((await store.append_chat("r", "a", "A", f"m{i}", None, i)).id)
        await store.append_chat("r", "a", "A", "A joined", None, i, system=True, kind="joined")
        await store.append_chat("r", "c", "C", f"to a {i}", "a", i)
    await store.append_chat(
        "r", "s", "S", "poll", None, 99, system=True, kind="poll", data={"q": 1}
    )
    await store.append_chat("other", "a", "A", "elsewhere", None, 1)
    cases = [
        (before, limit, viewer)
        for before in (None, ids[6], ids[0])
        for limit in (0, 1, 5, 50)
        for viewer in (None, "a", "c", "d")
    ]
    in_place = [await store.history("r", *case) for case in cases]
    if store.engine.dialect.name == "sqlite":
        assert store._sqlite_reads is not None
        store._sqlite_reads, reads = None, store._sqlite_reads
        try:
            through_engine = [await store.history("r", *case) for case in cases]
        finally:
            store._sqlite_reads = reads
        assert in_place == through_engine
    page, _ = await store.history("r", None, 50, "a")
    assert all(m.kind != "joined" for m in page)
    assert page[-1].data == {"q": 1} and page[-1].system
    assert sum(m.to == "a" for m in page) == 12


async def test_concurrent_appends_group_commit(store: SqlStore) -> None:
    n = 200
    records = await asyncio.gather(
        *(store.append_chat("r", f"p{i % 7}", "N", f"m{i}", None, i) for i in range(n))
    )
    ids = [r.id for r in records]
    assert len(set(ids)) == n
    # Each caller got the id of its own row.
    page, more = await store.history("r", None, n + 10, None)
    assert not more and len(page) == n
    stored = {m.id: m for m in page}
    for i, rec in enumerate(records):
        assert rec.text == f"m{i}" and stored[rec.id] == rec
    # Batching happened: far fewer transactions than messages.
    assert store.rows_committed == n
    assert store.commits < n // 4, store.commits


async def test_single_append_commits_without_waiting(store: SqlStore) -> None:
    loop = asyncio.get_running_loop()
    await _append(store, 0)  # warm up the connection pool
    t0 = loop.time()
    for i in range(5):
        await _append(store, i)
    # No batching delay when idle (generous bound for slow CI disks).
    assert (loop.time() - t0) / 5 < 0.5
    assert store.commits == 6


@pytest.mark.parametrize("flood", [False, True], ids=["one-at-a-time", "flood"])
async def test_wal_stays_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flood: bool
) -> None:
    # Checkpoints run beside the writer, not inside commits: in its idle moments
    # (one message at a time) and, when it is never idle (a flood: 1,000 queued at
    # once, one per commit), inline now and then. Either way the WAL (the disk)
    # must not grow without bound.
    monkeypatch.setattr(_SqliteWriter, "CHECKPOINT_EVERY", 10)
    monkeypatch.setattr(_SqliteWriter, "CHECKPOINT_INLINE", 40)
    db = tmp_path / "parley.db"
    store = SqlStore(f"sqlite+aiosqlite:///{db}", max_batch=1)
    await store.start()
    try:
        if flood:
            await asyncio.gather(*(_append(store, i, text_size=2000) for i in range(1000)))
        else:
            for i in range(1000):
                await _append(store, i, text_size=2000)
        wal_pages = await asyncio.to_thread(os.path.getsize, f"{db}-wal") // 4096
        page, _ = await store.history("r", None, 2000, None)
    finally:
        await store.close()
    assert len(page) == 1000 and store.commits == 1000
    # Each of these commits adds about three 4 KiB pages (row, indexes): unchecked,
    # 1,000 commits grow the WAL past 3,000 pages; bounded, it peaks at a few
    # CHECKPOINT_INLINE commits' worth (about 200 pages here).
    assert wal_pages < 1000, wal_pages


def _wal_generation(db: Path) -> int | None:
    """The WAL header's checkpoint sequence number: +1 each time the WAL starts over."""
    wal = Path(f"{db}-wal")
    return int.from_bytes(wal.read_bytes()[12:16], "big") if wal.exists() else None


async def _writer_settled(store: SqlStore) -> None:
    """Until the writer's background checkpoint and WAL restart (if any) are done."""
    writer = store._sqlite_writer
    assert writer is not None
    for _ in range(1000):
        checkpoint = writer._checkpoint
        if (checkpoint is None or checkpoint.done()) and not getattr(writer, "_jobs", 0):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the writer never went idle")


async def test_wal_starts_over_after_checkpoints_a_reader_kept_from_restarting_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A complete checkpoint lets the next write start the WAL over only if no reader
    # still holds a snapshot of the old WAL (or a write transaction begun before the
    # checkpoint ended: the race under load behind test_wal_stays_bounded's 1,033 pages).
    # The flood guard's count went back to zero at every complete checkpoint, so with a
    # reader there each time (the search indexer, a history page) the WAL never started
    # over again: here 100 commits in one WAL.  It must start over within about
    # CHECKPOINT_INLINE commits whatever the checkpoints meet.
    monkeypatch.setattr(_SqliteWriter, "CHECKPOINT_EVERY", 10**9)  # only when told below
    monkeypatch.setattr(_SqliteWriter, "CHECKPOINT_INLINE", 20)
    monkeypatch.setattr(_SqliteWriter, "CHECKPOINT_INTERVAL", 0.0)
    db = tmp_path / "parley.db"
    store = SqlStore(f"sqlite+aiosqlite:///{db}")
    await store.start()
    reader = sqlite3.connect(db, isolation_level=None)
    writer = store._sqlite_writer
    assert writer is not None
    try:
        generation, run, longest = _wal_generation(db), 0, 0
        for n in range(100):
            await _append(store, n)
            now = _wal_generation(db)
            run = 0 if now != generation else run + 1
            generation, longest = now, max(longest, run)
            if n % 5 == 4:
                # A background checkpoint that completes while a reader holds the WAL.
                await _writer_settled(store)
                reader.execute("BEGIN")
                reader.execute("SELECT count(*) FROM messages").fetchone()
                writer.CHECKPOINT_EVERY = 5
                writer.idle()
                await _writer_settled(store)
                writer.CHECKPOINT_EVERY = 10**9
                reader.execute("COMMIT")
        page, _ = await store.history("r", None, 100, None)
    finally:
        reader.close()
        await store.close()
    assert [m.text for m in page] == [f"m{i}" for i in range(100)]
    assert longest <= 20 + 5, f"{longest} commits without the WAL starting over"


async def test_chat_commits_never_start_the_wal_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Starting the WAL over syncs its new header to disk even at synchronous=NORMAL
    # (a few ms): the first commit after a complete checkpoint did it, so one chat
    # message in every CHECKPOINT_EVERY waited for the disk.  The writer's thread now
    # starts the WAL over itself, right after the checkpoint, with no message waiting.
    monkeypatch.setattr(_SqliteWriter, "CHECKPOINT_EVERY", 5)
    monkeypatch.setattr(_SqliteWriter, "CHECKPOINT_INTERVAL", 0.0, raising=False)
    db = tmp_path / "parley.db"
    store = SqlStore(f"sqlite+aiosqlite:///{db}")
    await store.start()
    try:
        first = _wal_generation(db)
        during_chat = []
        for i in range(40):
            await _writer_settled(store)
            before = _wal_generation(db)
            await _append(store, i)
            after = _wal_generation(db)
            if before is not None and after != before:
                during_chat.append(i)
        await _writer_settled(store)
        last = _wal_generation(db)
        page, _ = await store.history("r", None, 100, None)
        assert last is not None
    finally:
        await store.close()
    assert [m.text for m in page] == [f"m{i}" for i in range(40)]
    assert last - (first or 0) >= 3, "the WAL never started over: no checkpoint completed"
    assert during_chat == [], f"chat commits started the WAL over: messages {during_chat}"


async def test_lone_message_waits_for_a_held_lock_off_the_loop(tmp_path: Path) -> None:
    # A lone message at low rates is committed on the event loop; if another connection
    # holds the write lock (another worker process, a room update), it must wait for it
    # in the writer's thread: the loop, and every other client, carries on meanwhile.
    db = tmp_path / "parley.db"
    store = SqlStore(f"sqlite+aiosqlite:///{db}")
    await store.start()
    blocker = sqlite3.connect(db, isolation_level=None)
    try:
        await _append(store, 0)  # opens the writer's connection
        await asyncio.sleep(0.2)  # a quiet spell: the next message goes in place
        blocker.execute("BEGIN IMMEDIATE")
        pending = asyncio.create_task(_append(store, 1))
        ticks = 0
        for _ in range(20):
            await asyncio.sleep(0.01)
            ticks += 1
        assert ticks == 20 and not pending.done()  # not stored yet, the loop still runs
        blocker.execute("COMMIT")
        await asyncio.wait_for(pending, 30)
        page, _ = await store.history("r", None, 10, None)
    finally:
        blocker.close()
        await store.close()
    assert [m.text for m in page] == ["m0", "m1"]


async def test_a_burst_is_stored_in_the_loop_turn_it_arrives(tmp_path: Path) -> None:
    # Messages read from several sockets in one poll reach the store in one loop turn.
    # Each is committed at once, so all of them are acknowledged and delivered in that
    # turn and the hub writes them to each client together (one write() per client,
    # not one per message); none waits turns for the writer task.
    db = tmp_path / "parley.db"
    store = SqlStore(f"sqlite+aiosqlite:///{db}")
    await store.start()
    try:
        await _append(store, 0)  # opens the writer's connection
        await asyncio.sleep(0.2)  # a quiet spell: low rate, commits go in place
        burst = [asyncio.create_task(_append(store, i, sender=f"p{i}")) for i in range(1, 6)]
        await asyncio.sleep(0)  # the five tasks run their first step before this returns
        assert all(task.done() for task in burst)
        ids = [task.result() for task in burst]
        page, _ = await store.history("r", None, 10, None)
    finally:
        await store.close()
    assert ids == sorted(ids)
    assert [m.text for m in page] == [f"m{i}" for i in range(6)]


async def test_a_burst_read_in_one_poll_shares_one_commit(tmp_path: Path) -> None:
    # With the read count wired (the server's Hub.reads), the messages read in one poll
    # wait for each other in that loop turn and are stored in one commit: the last
    # one's task goes on at once, the others in the next turn, before any flush the
    # last one scheduled.  A lone message commits at once, as without the count.
    db = tmp_path / "parley.db"
    store = SqlStore(f"sqlite+aiosqlite:///{db}")
    reads = 0
    store.reads = lambda: reads
    await store.start()
    try:
        reads += 1
        await _append(store, 0)  # opens the writer's connection
        await asyncio.sleep(0.2)  # a quiet spell: low rate, commits go in place
        commits = store.commits
        reads += 1
        turned: list[bool] = []
        asyncio.get_running_loop().call_soon(turned.append, True)
        await _append(store, 1)
        assert not turned and store.commits == commits + 1  # at once, in this turn
        reads += 5  # one poll reads five messages
        burst = [asyncio.create_task(_append(store, i, sender=f"p{i}")) for i in range(2, 7)]
        await asyncio.sleep(0)  # the five tasks run their first step before this returns
        assert burst[-1].done() and store.commits == commits + 2
        # A flush the last one scheduled finds all five delivered.
        flushed: list[bool] = []
        asyncio.get_running_loop().call_soon(
            lambda: flushed.append(all(task.done() for task in burst))
        )
        await asyncio.sleep(0)
        assert flushed == [True]
        ids = [task.result() for task in burst]
        page, _ = await store.history("r", None, 10, None)
    finally:
        await store.close()
    assert ids == sorted(ids)
    assert [m.text for m in page] == [f"m{i}" for i in range(7)]


async def test_a_message_read_with_one_that_is_no_chat_waits_one_turn(tmp_path: Path) -> None:
    # Read in the same poll as a message that never reaches the store (a ping): the
    # chat message waits for it one loop turn only.
    db = tmp_path / "parley.db"
    store = SqlStore(f"sqlite+aiosqlite:///{db}")
    reads = 0
    store.reads = lambda: reads
    await store.start()
    try:
        reads += 1
        await _append(store, 0)
        await asyncio.sleep(0.2)
        reads += 2  # a chat message and a ping
        task = asyncio.create_task(_append(store, 1))
        turns = 0
        while not task.done():
            await asyncio.sleep(0)
            turns += 1
        assert turns <= 3, turns  # its first step, the commit, its last step
        reads += 1
        await _append(store, 2)  # and the next message commits at once again
        page, _ = await store.history("r", None, 10, None)
    finally:
        await store.close()
    assert [m.text for m in page] == ["m0", "m1", "m2"]


async def test_a_message_pending_at_close_is_stored(tmp_path: Path) -> None:
    db = tmp_path / "parley.db"
    store = SqlStore(f"sqlite+aiosqlite:///{db}")
    await store.start()
    await _append(store, 0)
    await asyncio.sleep(0.2)
    pending = asyncio.create_task(_append(store, 1))
    await asyncio.sleep(0)  # its commit waits for the next turn
    await store.close()
    assert pending.done() and pending.result() > 0
    reopened = SqlStore(f"sqlite+aiosqlite:///{db}")
    await reopened.start()
    try:
        page, _ = await reopened.history("r", None, 10, None)
    finally:
        await reopened.close()
    assert [m.text for m in page] == ["m0", "m1"]


async def test_small_max_batch_splits(make_store: StoreFactory) -> None:
    store = await make_store.open(max_batch=7)
    records = await asyncio.gather(*(_append(store, i) for i in range(50)))
    assert len(set(records)) == 50
    assert store.commits >= 8  # ceil(50 / 7)


async def test_bad_row_fails_only_its_caller(store: SqlStore) -> None:
    good_before = [store.append_chat("r", "a", "A", f"ok{i}", None, i) for i in range(5)]
    # A lone surrogate cannot be encoded as UTF-8 by either driver.
    bad = store.append_chat("r", "a", "A", "bad \ud800", None, 5)
    good_after = [store.append_chat("r", "a", "A", f"ok{i}", None, i) for i in range(5, 10)]
    results = await asyncio.gather(*good_before, bad, *good_after, return_exceptions=True)
    assert isinstance(results[5], Exception)
    oks = [r for i, r in enumerate(results) if i != 5]
    assert all(not isinstance(r, BaseException) for r in oks)
    # The writer is still alive.
    await _append(store, 100)
    page, _ = await store.history("r", None, 100, None)
    assert [m.text for m in page] == [f"ok{i}" for i in range(10)] + ["m100"]


async def test_cancelled_caller_does_not_break_writer(store: SqlStore) -> None:
    tasks = [asyncio.create_task(_append(store, i)) for i in range(20)]
    await asyncio.sleep(0)
    tasks[3].cancel()
    done = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(done[3], asyncio.CancelledError)
    assert await _append(store, 99) > 0


async def test_close_flushes_pending(make_store: StoreFactory) -> None:
    store = await make_store.open()
    tasks = [asyncio.create_task(_append(store, i)) for i in range(100)]
    await asyncio.sleep(0)  # all enqueued, most not yet committed
    await store.close()
    ids = [t.result() for t in tasks]
    with pytest.raises(RuntimeError):
        await _append(store, 1)
    reopened = await make_store.open()
    page, _ = await reopened.history("r", None, 200, None)
    assert sorted(ids) == [m.id for m in page]


async def test_data_survives_close_and_reopen(make_store: StoreFactory) -> None:
    store = await make_store.open()
    await store.ensure_room("r", 42)
    ids = [await _append(store, i) for i in range(3)]
    await store.append_chat("r", "a", "A", "private", "b", 9)
    await store.close()

    reopened = await make_store.open()
    assert await reopened.room_created_at("r") == 42
    page, more = await reopened.history("r", None, 10, "b")
    assert [m.id for m in page][:3] == ids and page[-1].to == "b" and not more
    new_id = await _append(reopened, 3)
    assert new_id > max(ids)  # ids keep increasing after a restart


async def test_open_store_url(tmp_path: Path) -> None:
    store = open_store(f"sqlite+aiosqlite:///{tmp_path}/a/b/c.db")
    assert isinstance(store, SqlStore)
    typed: Store = store
    await typed.start()
    try:
        assert await typed.ensure_room("r", 1) == 1
        assert (tmp_path / "a" / "b" / "c.db").exists()
        async with store.engine.connect() as conn:
            mode = (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar()
            sync = (await conn.exec_driver_sql("PRAGMA synchronous")).scalar()
        assert mode == "wal" and sync == 1  # 1 = NORMAL
    finally:
        await typed.close()


_SRC_DIR = str(Path(parley.__file__).resolve().parents[1])

_CHILD = textwrap.dedent(
    """
    import asyncio, os, signal, sys
    from parley.store import open_store

    async def main(url: str, target: int) -> None:
        store = open_store(url)
        await store.start()
        acked = 0

        async def worker(w: int) -> None:
            nonlocal acked
            i = 0
            while True:
                rec = await store.append_chat("r", f"w{w}", "W", f"{w}-{i}", None, i)
                # The ack: once printed, the message must survive anything.
                os.write(1, f"{rec.id} {rec.text}\\n".encode())
                i += 1
                acked += 1
                if acked >= target:
                    # Die with other commits still queued or in flight.
                    os.kill(os.getpid(), signal.SIGKILL)

        await asyncio.gather(*(worker(w) for w in range(20)))

    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
    """
)


async def test_acked_messages_survive_sigkill(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/kill/parley.db"
    env = dict(os.environ, PYTHONPATH=_SRC_DIR)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _CHILD,
        url,
        "500",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == -signal.SIGKILL, err.decode()
    acked = dict(line.split(" ", 1) for line in out.decode().splitlines())
    assert len(acked) >= 500

    store = SqlStore(url)
    await store.start()
    try:
        page, _ = await store.history("r", None, 100_000, None)
    finally:
        await store.close()
    stored = {str(m.id): m.text for m in page}
    missing = {i: t for i, t in acked.items() if stored.get(i) != t}
    assert not missing, f"{len(missing)} acked messages lost or wrong: {list(missing)[:5]}"


async def test_concurrent_first_start(make_store: StoreFactory) -> None:
    # Two servers starting together on an empty database both end up migrated.
    a, b = await asyncio.gather(make_store.open(), make_store.open())
    assert await a.ensure_room("r", 1) == 1
    assert await b.room_created_at("r") == 1


async def test_room_settings_persist(make_store: StoreFactory) -> None:
    from parley.store import RoomRecord

    store = await make_store.open()
    assert await store.load_room("team") is None
    created = await store.ensure_room("team", 5_000)
    assert await store.load_room("team") == RoomRecord(created_at=created)
    await store.save_room_settings(
        "team", RoomRecord(created, locked=True, lobby=True, password_hash="h", max_participants=4)
    )
    await store.close()
    again = await make_store.open()
    assert await again.load_room("team") == RoomRecord(
        created_at=5_000, locked=True, lobby=True, password_hash="h", max_participants=4
    )
    # Stage mode and who may chat (core/stage.py), and back to their defaults.
    await again.save_room_settings("team", RoomRecord(5_000, stage=False, chat="questions"))
    assert await again.load_room("team") == RoomRecord(5_000, stage=False, chat="questions")
    await again.save_room_settings("team", RoomRecord(5_000))
    assert await again.load_room("team") == RoomRecord(5_000)


async def test_questions_are_read_by_the_stage_and_their_sender(make_store: StoreFactory) -> None:
    store = await make_store.open()
    await store.ensure_room("r", 1)
    await store.append_chat("r", "p_aud", "Aud", "When is lunch?", "stage", 2)
    await store.append_chat("r", "p_host", "Host", "Welcome", None, 3)
    texts = [m.text for m in (await store.history("r", None, 10, "p_other"))[0]]
    assert texts == ["Welcome"]
    texts = [m.text for m in (await store.history("r", None, 10, "p_aud"))[0]]
    assert texts == ["When is lunch?", "Welcome"]
    page, _ = await store.history("r", None, 10, "p_host", questions=True)
    assert [(m.text, m.to) for m in page] == [("When is lunch?", "stage"), ("Welcome", None)]


async def test_system_lines_are_marked(make_store: StoreFactory) -> None:
    store = await make_store.open()
    await store.ensure_room("r", 1)
    rec = await store.append_chat("r", "system", "Parley", "Ada locked the room", None, 2, True)
    assert rec.system
    page, _ = await store.history("r", None, 10, None)
    assert [(m.text, m.system) for m in page] == [("Ada locked the room", True)]


async def test_meeting_state_survives_a_restart(make_store: StoreFactory) -> None:
    """Who is in a running meeting, and who is barred: what a restart restores roles from."""
    from parley.store import MeetingState, RoomRecord

    store = await make_store.open()
    await store.ensure_room("team", 7)
    await store.ensure_room("other", 8)
    state = MeetingState({"p_a": "host", "p_b": "observer"}, ("addr:10.0.0.9", "pid:p_x"))
    await store.save_meetings({"team": state, "other": MeetingState({"p_c": "participant"})})
    await store.close()
    again = await make_store.open()
    assert await again.load_room("team") == RoomRecord(created_at=7, meeting=state)
    await again.save_meetings({"other": None})
    room = await again.load_room("other")
    assert room is not None and room.meeting is None


async def test_emptied_room_keeps_only_what_outlives_the_meeting(make_store: StoreFactory) -> None:
    from parley.store import MeetingState, RoomRecord

    store = await make_store.open()
    # A passer-by's settings, no history: the room leaves nothing, its row goes.
    await store.ensure_room("quiet", 1)
    await store.save_room_settings("quiet", RoomRecord(1, password_hash="h", max_participants=1))
    await store.room_emptied("quiet", None)
    assert await store.load_room("quiet") is None
    assert await store.room_created_at("quiet") is None  # the cache forgot it too
    # With history, the room stays, back to the default settings.
    await store.ensure_room("talked", 2)
    await store.save_room_settings("talked", RoomRecord(2, locked=True, password_hash="h"))
    await store.save_meetings({"talked": MeetingState({"p_a": "host"})})
    await store.append_chat("talked", "p_a", "Ada", "hello", None, 3)
    await store.room_emptied("talked", None)
    assert await store.load_room("talked") == RoomRecord(created_at=2)
    # A managed room keeps its settings (unlocked by the caller), and loses its meeting.
    await store.ensure_room("managed", 4)
    await store.save_meetings({"managed": MeetingState({"p_a": "host"})})
    keep = RoomRecord(4, lobby=True, password_hash="h", managed=True)
    await store.room_emptied("managed", keep)
    assert await store.load_room("managed") == keep
