"""The meeting record on SQLite and PostgreSQL: export order, search, deletion, retention."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from parley.core.protocol import ProtocolError
from parley.core.search_query import query_words
from parley.store import search_index
from parley.store.record import DAY_MS

if TYPE_CHECKING:
    from parley.store.sql import SqlStore
    from tests.store.conftest import StoreFactory


async def _say(
    store: SqlStore,
    text: str,
    sender: str = "alice",
    to: str | None = None,
    room: str = "r",
    ts: int = 1_000,
) -> int:
    return (await store.append_chat(room, sender, sender.title(), text, to, ts)).id


async def _texts(
    store: SqlStore, query: str, viewer: str | None = None, room: str = "r"
) -> list[str]:
    found, _more = await store.search(room, query_words(query), viewer, 50)
    return [r.text for r in found]


async def test_search_finds_words_newest_first_in_its_room_only(store: SqlStore) -> None:
    await store.ensure_room("r", 0)
    await _say(store, "the budget is approved")
    await _say(store, "Budget review on Friday")
    await _say(store, "lunch?")
    await _say(store, "budget elsewhere", room="other")
    assert await _texts(store, "budget") == ["Budget review on Friday", "the budget is approved"]
    assert await _texts(store, "BUDGET friday") == ["Budget review on Friday"]
    assert await _texts(store, "dinner") == []


async def test_search_pages_with_before(store: SqlStore) -> None:
    ids = [await _say(store, f"standup note {i}") for i in range(5)]
    page, more = await store.search("r", ("standup",), None, 2)
    assert [r.id for r in page] == ids[:-3:-1] and more
    page, more = await store.search("r", ("standup",), None, 10, before=page[-1].id)
    assert [r.id for r in page] == ids[2::-1] and not more


async def test_private_messages_are_found_only_by_their_two_participants(store: SqlStore) -> None:
    await _say(store, "secret plan", sender="alice", to="bob")
    await _say(store, "public plan", sender="carol")
    assert await _texts(store, "plan", viewer="alice") == ["public plan", "secret plan"]
    assert await _texts(store, "plan", viewer="bob") == ["public plan", "secret plan"]
    assert await _texts(store, "plan", viewer="carol") == ["public plan"]
    assert await _texts(store, "plan", viewer=None) == ["public plan"]


@pytest.mark.parametrize(
    "query",
    [
        '"unbalanced',
        "plan NEAR(x y)",
        "pla*",
        "(plan OR",
        "-plan",
        "text:plan",
        "plan AND NOT",
        "^plan",
        "plan & | ! <-> :*",
        "'';DROP TABLE messages;--",
        "{text}: plan",
    ],
)
async def test_query_syntax_is_searched_literally(store: SqlStore, query: str) -> None:
    await _say(store, "the plan is set")
    # Operators are no operators: whatever words are there are searched for, no error.
    found = await _texts(store, query)
    assert found in ([], ["the plan is set"])
    assert await _texts(store, "plan") == ["the plan is set"]


def test_bad_queries_are_typed_errors() -> None:
    with pytest.raises(ProtocolError) as exc:
        query_words("x" * 10_000)
    assert exc.value.code == "too_long"
    with pytest.raises(ProtocolError) as exc:
        query_words('"*() -:')
    assert exc.value.code == "empty"


async def test_export_iterates_everything_visible_in_order(store: SqlStore) -> None:
    ids = [await _say(store, f"m{i}") for i in range(7)]
    await _say(store, "psst", sender="alice", to="bob")
    joined = await store.append_chat("r", "system", "", "Bob joined", None, 2_000, True, "joined")
    batches = [b async for b in store.iter_records("r", "carol", batch=3)]
    assert [len(b) for b in batches] == [3, 3, 2]
    flat = [r for b in batches for r in b]
    assert [r.id for r in flat] == [*ids, joined.id]
    assert flat[-1].kind == "joined" and flat[-1].system
    bob = [r.text async for b in store.iter_records("r", "bob") for r in b]
    assert "psst" in bob
    # Attendance is in the record, not in the chat's history pages.
    page, _ = await store.history("r", None, 50, None)
    assert "Bob joined" not in [r.text for r in page]


async def test_system_entry_kind_and_data_round_trip(store: SqlStore) -> None:
    rec = await store.append_chat(
        "r", "system", "", "Poll closed", None, 5, True, "poll", {"counts": [3, 1]}
    )
    assert rec.data == {"counts": [3, 1]}
    page, _ = await store.history("r", None, 10, None)
    assert page[0].kind == "poll" and page[0].data == {"counts": [3, 1]}


async def test_deleted_message_is_gone_from_history_export_and_search(store: SqlStore) -> None:
    keep = await _say(store, "keep this budget")
    gone = await _say(store, "delete this budget")
    assert (await store.message("r", gone)) is not None
    assert await store.delete_message("r", gone)
    assert not await store.delete_message("r", gone)
    assert not await store.delete_message("other", keep)
    assert await store.message("r", gone) is None
    page, _ = await store.history("r", None, 10, None)
    assert [r.id for r in page] == [keep]
    assert await _texts(store, "budget") == ["keep this budget"]
    assert [r.id async for b in store.iter_records("r", None) for r in b] == [keep]


async def test_retention_deletes_old_messages_per_room_and_by_default(store: SqlStore) -> None:
    now = 100 * DAY_MS
    for room in ("short", "default", "forever"):
        await store.ensure_room(room, 0)
    await store.set_retention("short", 1)
    await store.set_retention("forever", 36500)
    assert await store.retention_of("short") == 1
    for room in ("short", "default", "forever"):
        await _say(store, "ancient", room=room, ts=now - 40 * DAY_MS)
        await _say(store, "last week", room=room, ts=now - 7 * DAY_MS)
        await _say(store, "today", room=room, ts=now - 1000)
    # No server default: only rooms with their own setting.
    assert await store.purge_expired(None, now, batch=1) == 2
    assert await store.purge_expired(30, now, batch=2) == 1
    left = {}
    for room in ("short", "default", "forever"):
        page, _ = await store.history(room, None, 10, None)
        left[room] = [r.text for r in page]
    assert left == {
        "short": ["today"],
        "default": ["last week", "today"],
        "forever": ["ancient", "last week", "today"],
    }
    assert await _texts(store, "ancient", room="default") == []


async def test_room_with_only_attendance_is_forgotten(store: SqlStore) -> None:
    await store.ensure_room("r", 0)
    await store.append_chat("r", "system", "", "Ada joined", None, 1, True, "joined")
    await store.room_emptied("r", None)
    assert await store.load_room("r") is None
    assert [r async for r in store.iter_records("r", None)] == []


async def test_search_index_survives_deleting_the_newest_and_unindexed_messages(
    store: SqlStore,
) -> None:
    # SQLite reuses the id of a deleted newest row; the index must not keep the old text.
    first = await _say(store, "alpha words here")
    await store.index_pending()
    assert await store.delete_message("r", first)
    again = await _say(store, "bravo words here")
    assert await _texts(store, "alpha") == []
    assert await _texts(store, "bravo") == ["bravo words here"]
    # Deleted before the indexer ran: never indexed, and nothing breaks.
    unindexed = await _say(store, "charlie words")
    assert await store.delete_message("r", unindexed)
    assert await _texts(store, "charlie") == []
    assert [r.id for r in (await store.search("r", ("words",), None, 10))[0]] == [again]
    if store.engine.dialect.name == "sqlite":
        async with store.engine.connect() as conn:
            check = "INSERT INTO search.messages_fts(messages_fts, rank) VALUES (?, 1)"
            await conn.exec_driver_sql(check, ("integrity-check",))


async def test_messages_are_indexed_by_the_background_indexer_too(store: SqlStore) -> None:
    await _say(store, "delta message")
    await store.index_pending()
    assert await store.index_pending() == 0  # nothing left pending
    assert await _texts(store, "delta") == ["delta message"]


async def _indexed_rows(store: SqlStore) -> int:
    async with store.engine.connect() as conn:
        count = "SELECT count(*) FROM search.messages_fts"
        return int((await conn.exec_driver_sql(count)).scalar_one())


async def test_the_background_step_indexes_and_applies_deletions(
    store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The periodic step reads at normal priority and writes the index at the lowest;
    # with deletions waiting it runs whole.  Either way the index ends up exact.
    if store.engine.dialect.name != "sqlite":
        pytest.skip("SQLite's index is filled in the background")
    monkeypatch.setattr(search_index, "READ_LIMIT", 2)
    loop_task = store._fts_task  # steps run here only, so each one's count is known
    assert loop_task is not None
    loop_task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await loop_task
    first = await _say(store, "hotel one")
    await _say(store, "hotel two")
    await _say(store, "hotel three")
    assert await store.index_pending(background=True) == 2  # at most READ_LIMIT a step
    assert await store.index_pending(background=True) == 1
    assert await store.index_pending(background=True) == 0
    assert await _indexed_rows(store) == 3  # indexed before any search asked for it
    assert await store.delete_message("r", first)
    await _say(store, "hotel four")
    await store.index_pending(background=True)  # the deletion first, in a whole step
    assert await _indexed_rows(store) == 3
    assert await store.index_pending() == 0
    assert await _texts(store, "hotel") == ["hotel four", "hotel three", "hotel two"]


@pytest.mark.parametrize("room", ["---", "_", ".", "a.b", "a-b", "a_b", "A1"])
async def test_search_in_rooms_of_any_valid_name(store: SqlStore, room: str) -> None:
    for other in ("---", "_", ".", "a.b", "a-b", "a_b", "A1"):
        await _say(store, f"hello from {other}", room=other)
    assert await _texts(store, "hello", room=room) == [f"hello from {room}"]


def _remove_search_index(database: str) -> None:
    for suffix in ("-search", "-search-wal", "-search-shm"):
        Path(database + suffix).unlink(missing_ok=True)


async def test_search_index_file_is_rebuilt_when_missing(make_store: StoreFactory) -> None:
    if make_store.backend != "sqlite":
        pytest.skip("SQLite keeps its search index in a file of its own")
    store = await make_store.open()
    await _say(store, "echo in the record")
    assert await _texts(store, "echo") == ["echo in the record"]
    await store.close()
    make_store.opened.remove(store)
    _remove_search_index(store.url.database or "")
    again = await make_store.open()
    assert await _texts(again, "echo") == ["echo in the record"]


async def test_chat_is_stored_while_the_search_index_is_locked(store: SqlStore) -> None:
    """Chat commits never wait for the search index: its writes take another file's lock."""
    if store.engine.dialect.name != "sqlite":
        pytest.skip("SQLite keeps its search index in a file of its own")
    await _say(store, "first")
    holder = sqlite3.connect((store.url.database or "") + "-search", isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # what an index step holds while it writes
        for n in range(40):  # in place and through the writer's thread alike
            await asyncio.wait_for(_say(store, f"during {n}"), timeout=5)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert len(await _texts(store, "during")) == 40


async def test_deletions_leave_the_index_once(store: SqlStore) -> None:
    ids = [await _say(store, f"foxtrot {n}") for n in range(5)]
    await store.index_pending()
    for msg_id in ids[:3]:
        assert await store.delete_message("r", msg_id)
    assert await _texts(store, "foxtrot") == ["foxtrot 4", "foxtrot 3"]
    if store.engine.dialect.name == "sqlite":
        async with store.engine.connect() as conn:
            left = await conn.exec_driver_sql("SELECT count(*) FROM search_deleted")
            assert left.scalar_one() == 0  # applied, then cleared
            count = "SELECT count(*) FROM search.messages_fts"
            assert (await conn.exec_driver_sql(count)).scalar_one() == 2


@pytest.mark.parametrize("background", [False, True], ids=["whole", "background"])
async def test_two_processes_index_one_file(make_store: StoreFactory, background: bool) -> None:
    """``--workers``: every process indexes the same file; none fails, none duplicates."""
    a, b = await make_store.open(), await make_store.open()

    async def say_and_index(store: SqlStore, sender: str) -> None:
        for n in range(60):
            await _say(store, f"golf {sender} {n}", sender=sender)
            if n % 7 == 0:
                await store.index_pending(background=background)

    await asyncio.gather(
        say_and_index(a, "alice"),
        say_and_index(b, "bob"),
        *[s.index_pending(background=background) for s in (a, b) for _ in range(10)],
    )
    for store in (a, b):
        found, _ = await store.search("r", query_words("golf"), None, 200)
        assert len({r.id for r in found}) == len(found) == 120
