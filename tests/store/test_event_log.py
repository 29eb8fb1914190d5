"""The event log in the store, on SQLite and PostgreSQL: logged in the commit of its
cause, ids in commit order (a reader following the log never misses one), retention,
and the webhook receivers' cursors and leases."""

from __future__ import annotations

import asyncio

from parley.core.events import MeetingEvent
from parley.store import MeetingState
from parley.store.sql import SqlStore
from tests.store.conftest import StoreFactory


def joined(room: str, name: str, at: int = 1_000) -> MeetingEvent:
    return MeetingEvent("participant.joined", room, at, {"participant": {"name": name}})


async def test_events_are_logged_with_the_meeting_state_and_read_in_order(
    store: SqlStore,
) -> None:
    await store.ensure_room("team", 1)
    assert await store.last_event_id() == 0
    await store.save_meetings(
        {"team": MeetingState({"p_a": "host"})},
        [MeetingEvent("room.started", "team", 1_000, {}), joined("team", "Ada")],
    )
    await store.room_emptied(
        "team", None, [MeetingEvent("room.finished", "team", 2_000, {"duration_ms": 1000})]
    )
    events = await store.events_after(0, 10)
    assert [(e.type, e.room, e.at) for e in events] == [
        ("room.started", "team", 1_000),
        ("participant.joined", "team", 1_000),
        ("room.finished", "team", 2_000),
    ]
    assert events[1].data == {"participant": {"name": "Ada"}}
    assert events[2].data == {"duration_ms": 1000}
    ids = [e.id for e in events]
    assert ids == sorted(ids) and len(set(ids)) == 3
    assert await store.last_event_id() == ids[-1]
    assert [e.id for e in await store.events_after(ids[0], 1)] == [ids[1]]
    assert await store.events_after(ids[-1], 10) == []


async def test_chat_messages_are_logged_in_the_chat_commit_only_when_asked(
    store: SqlStore,
) -> None:
    await store.ensure_room("team", 1)
    await store.append_chat("team", "p_a", "Ada", "before", None, 10)
    assert await store.events_after(0, 10) == []
    store.chat_events = True
    said = await store.append_chat("team", "p_a", "Ada", "hello", "p_b", 11)
    await store.append_chat("team", "system", "Parley", "Ada joined", None, 12, system=True)
    burst = await asyncio.gather(
        *(store.append_chat("team", "p_b", "Bob", f"m{i}", None, 20 + i) for i in range(50))
    )
    events = await store.events_after(0, 100)
    assert [e.type for e in events] == ["chat.message"] * 51  # the system line is not
    first = events[0].data["message"]
    assert first == {
        "id": said.id,
        "sender": "p_a",
        "name": "Ada",
        "text": "hello",
        "to": "p_b",
        "ts": 11,
    }
    logged = [e.data["message"]["id"] for e in events[1:]]
    assert sorted(logged) == sorted(r.id for r in burst)


async def test_a_reader_following_the_log_misses_nothing_while_two_nodes_write(
    make_store: StoreFactory,
) -> None:
    # Two stores on one database are two nodes.  A reader that asks for "after my
    # cursor" while they commit must see every event: ids are drawn in commit order.
    a, b = await make_store.open(), await make_store.open()
    for s in (a, b):
        s.chat_events = True
    await a.ensure_room("r", 1)
    done = asyncio.Event()
    seen: list[int] = []

    async def follow() -> None:
        cursor = 0
        while True:
            finished = done.is_set()
            page = await a.events_after(cursor, 1000)
            seen.extend(e.id for e in page)
            if page:
                cursor = page[-1].id
            elif finished:
                return
            await asyncio.sleep(0)

    async def chats(s: SqlStore, who: str) -> None:
        for i in range(60):
            await asyncio.gather(
                *(s.append_chat("r", who, who, f"{i}.{j}", None, i) for j in range(3))
            )

    async def meetings(s: SqlStore, who: str) -> None:
        for i in range(60):
            await s.save_meetings({"r": MeetingState({who: "host"})}, [joined("r", f"{who}{i}")])

    reader = asyncio.create_task(follow())
    await asyncio.gather(chats(a, "a"), chats(b, "b"), meetings(a, "ma"), meetings(b, "mb"))
    done.set()
    await reader
    everything = [e.id for e in await a.events_after(0, 10_000)]
    assert len(everything) == 2 * 180 + 2 * 60
    assert seen == everything  # nothing skipped, nothing twice, in order


async def test_retention_deletes_old_events_and_ids_are_never_reused(store: SqlStore) -> None:
    await store.ensure_room("team", 1)
    await store.save_meetings({}, [joined("team", "Old", at=100), joined("team", "New", at=900)])
    before = await store.last_event_id()
    assert await store.delete_events_before(500) == 1
    assert [e.data["participant"]["name"] for e in await store.events_after(0, 10)] == ["New"]
    assert await store.delete_events_before(10_000) == 1
    await store.save_meetings({}, [joined("team", "Later", at=20_000)])
    (later,) = await store.events_after(0, 10)
    assert later.id > before  # even with the log emptied: receivers de-duplicate by id


async def test_receiver_leases_let_one_node_deliver_at_a_time(
    make_store: StoreFactory,
) -> None:
    a, b = await make_store.open(), await make_store.open()
    await a.save_meetings({}, [joined("team", "Before")])
    start = await a.last_event_id()
    # A new receiver starts at the newest event: it is told what happens from now on.
    assert await a.claim_receiver("rx", "node-a", now_ms=1_000, lease_ms=30_000) == start
    assert await b.claim_receiver("rx", "node-b", now_ms=2_000, lease_ms=30_000) is None
    assert await a.advance_receiver("rx", "node-a", start + 5)
    # node-a dies: its lease runs out and node-b takes over from the stored cursor.
    assert await b.claim_receiver("rx", "node-b", now_ms=40_000, lease_ms=30_000) == start + 5
    assert not await a.advance_receiver("rx", "node-a", start + 9)  # too late: not its own
    assert await a.claim_receiver("rx", "node-a", now_ms=41_000, lease_ms=30_000) is None
    # A node that stops gives its lease up: the other takes over at once.
    await b.release_receiver("rx", "node-b")
    assert await a.claim_receiver("rx", "node-a", now_ms=42_000, lease_ms=30_000) == start + 5
    # Receivers are independent.
    assert await b.claim_receiver("other", "node-b", now_ms=42_000, lease_ms=30_000) == start
