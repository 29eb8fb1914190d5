"""Two Parley nodes on one Redis and one PostgreSQL: clients on different nodes share rooms.

Node A and node B run ``--broker redis://… --database-url postgresql+asyncpg://…`` with
``--max-participants 3``; every test uses rooms of its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from tests.cluster.harness import Cluster, eventually, get_json, unique_room
from tests.support.delay_proxy import DelayProxy
from tests.support.parley_process import ParleyProcess
from tests.support.postgres import dsn
from tests.support.ws_client import Client, Clients

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def nodes(cluster: Cluster) -> tuple[ParleyProcess, ParleyProcess]:
    a, b = cluster.start("A", "B", args=("--max-participants", "3"))
    assert a.health()["node"] == "A" and b.health()["node"] == "B"  # type: ignore[index]
    return a, b


HOST_RACE = (
    "regression (race, once seen under heavy load): two hosts after concurrent joins. "
    "Replicator.room_lock releases the Redis lock (awaited EVAL) while the admitted member's "
    "HSET is only queued for the broker's writer task, so the next node can take the lock and "
    "HGETALL a members hash that does not have the new host yet"
)


def check_one_host(hosts: list[Any]) -> None:
    assert len(hosts) == 1, (HOST_RACE, hosts)


async def room_count(node: ParleyProcess, room: str, n: int) -> bool:
    status, info = await get_json(node.url, f"/api/v1/rooms/{room}")
    return status == 200 and info["participant_count"] == n


async def settled(host: Any) -> None:
    """Wait for the system line a settings change writes (the change is shared after it)."""
    await host.expect("chat", lambda m: m["message"].get("system") is True)
    await asyncio.sleep(0.2)


async def change_settings(
    host: Client,
    settings: dict[str, Any],
    pred: Callable[[dict[str, Any]], bool] | None = None,
) -> dict[str, Any]:
    """Send ``room-settings``, read the ``room-updated`` (matching ``pred``) and wait until
    the change is shared (:func:`settled`); return the updated settings."""
    await host.send({"type": "room-settings", **settings})
    upd = await host.expect("room-updated", pred)
    await settled(host)
    return dict(upd["settings"])


def ids(participants: list[dict[str, Any]]) -> set[str]:
    return {p["id"] for p in participants}


async def join_outcome(clients: Clients, node: ParleyProcess, room: str, name: str) -> Any:
    """Join and return ("welcome", client) or ("error", code)."""
    c = await clients.connect(node, label=name)
    c.joined_name = name
    await c.send({"type": "join", "room": room, "name": name, "v": 1})
    msg = await c.take(lambda m: m["type"] in ("welcome", "error"), "welcome or error", 15)
    if msg["type"] == "welcome":
        c.welcome = msg
        return "welcome", c
    return "error", msg["code"]


async def test_presence_chat_private_signal_media_across_nodes(
    nodes: tuple[ParleyProcess, ParleyProcess], clients: Clients
) -> None:
    a_node, b_node = nodes
    room = unique_room("presence")
    ada = await clients.join(a_node, room, "Ada")
    bob = await clients.join(b_node, room, "Bob")
    # Bob (on B) sees Ada (on A) in his welcome, and Ada is told Bob joined.
    assert ids(bob.welcome["participants"]) == {ada.id, bob.id}  # type: ignore[index]
    joined = await ada.expect("participant-joined")
    assert joined["participant"]["id"] == bob.id and joined["participant"]["name"] == "Bob"
    cat = await clients.join(b_node, room, "Cat")
    await ada.expect("participant-joined", lambda m: m["participant"]["id"] == cat.id)
    await bob.expect("participant-joined", lambda m: m["participant"]["id"] == cat.id)

    # Public chat from A reaches everyone on both nodes (sender included).
    ack = await ada.chat("hello from A")
    for c in (ada, bob, cat):
        msg = await c.expect("chat", lambda m: m["message"]["text"] == "hello from A")
        assert msg["message"]["id"] == ack["id"] and msg["message"]["sender"] == ada.id
    # ... and from B.
    await cat.chat("hello from B")
    for c in (ada, bob, cat):
        await c.expect("chat", lambda m: m["message"]["text"] == "hello from B")

    # Private chat B -> A: only Ada and the sender; Cat (on the sender's node) sees nothing.
    await bob.chat("psst Ada", to=ada.id)
    got = await ada.expect("chat", lambda m: m["message"]["text"] == "psst Ada")
    assert got["message"]["to"] == ada.id
    await bob.expect("chat", lambda m: m["message"]["text"] == "psst Ada")
    # Private chat A -> B: Bob only, not Cat on the recipient's node.
    await ada.chat("psst Bob", to=bob.id)
    await bob.expect("chat", lambda m: m["message"]["text"] == "psst Bob")
    # A public sentinel after the private ones: once Cat has it, the privates would be there.
    await ada.chat("sentinel")
    await cat.expect("chat", lambda m: m["message"]["text"] == "sentinel")
    assert not cat.saw_chat("psst Ada") and not cat.saw_chat("psst Bob")
    await ada.expect("chat", lambda m: m["message"]["text"] == "psst Bob")

    # Signalling relayed unchanged across nodes, both ways, only to the addressee.
    offer = {"sdp": {"type": "offer", "sdp": "v=0\r\n"}, "n": [1, 2.5, None]}
    await ada.send({"type": "signal", "to": bob.id, "payload": offer})
    sig = await bob.expect("signal")
    assert sig == {"type": "signal", "from": ada.id, "payload": offer}
    await bob.send({"type": "signal", "to": ada.id, "payload": {"candidate": "c1"}})
    sig = await ada.expect("signal")
    assert sig["from"] == bob.id and sig["payload"] == {"candidate": "c1"}
    assert not cat.of_type("signal")

    # Media and hand updates are replicated to the other node's clients.
    await bob.send({"type": "media", "mic": True, "cam": True})
    upd = await ada.expect("participant-updated", lambda m: m["participant"]["id"] == bob.id)
    assert upd["participant"]["mic"] is True and upd["participant"]["cam"] is True
    await ada.send({"type": "hand", "raised": True})
    for c in (bob, cat):
        upd = await c.expect("participant-updated", lambda m: m["participant"]["id"] == ada.id)
        assert upd["participant"]["hand"] is True and upd["participant"]["hand_at"]
    # Reactions too.
    await cat.send({"type": "reaction", "emoji": "🎉"})
    r = await ada.expect("reaction")
    assert r["from"] == cat.id and r["emoji"] == "🎉"

    # A newcomer sees the replicated state of everyone.
    await cat.send({"type": "leave"})
    assert await cat.wait_closed() == 1000
    left = await ada.expect("participant-left", lambda m: m["id"] == cat.id)
    assert left["reason"] == "left"
    await bob.expect("participant-left", lambda m: m["id"] == cat.id)
    dan = await clients.join(a_node, room, "Dan")
    by_id = {p["id"]: p for p in dan.welcome["participants"]}  # type: ignore[index]
    assert set(by_id) == {ada.id, bob.id, dan.id}
    assert by_id[bob.id]["mic"] is True and by_id[ada.id]["hand"] is True


async def test_history_written_on_one_node_read_on_the_other(
    nodes: tuple[ParleyProcess, ParleyProcess], clients: Clients
) -> None:
    a_node, b_node = nodes
    room = unique_room("history")
    ada = await clients.join(a_node, room, "Ada")
    texts = [f"line {i} via A" for i in range(3)]
    acks = [await ada.chat(t) for t in texts]
    await ada.chat("private to nobody else", to=ada.id)
    # REST through the other node: the same stored messages (public only).
    status, body = await get_json(b_node.url, f"/api/v1/rooms/{room}/messages")
    assert status == 200, body
    assert [m["text"] for m in body["messages"]] == texts
    assert [m["id"] for m in body["messages"]] == [a["id"] for a in acks]
    # A joiner on B gets that history in its welcome.
    bob = await clients.join(b_node, room, "Bob")
    assert [m["text"] for m in bob.welcome["history"]] == texts  # type: ignore[index]
    # Both nodes now serve the room: both REST answers list both participants.
    for node in nodes:
        await eventually(
            lambda n=node: room_count(n, room, 2), 5, f"{node.node_id} lists 2 participants"
        )
    # Written on B, read on A.
    ack = await bob.chat("reply via B")
    status, body = await get_json(a_node.url, f"/api/v1/rooms/{room}/messages?limit=1")
    assert status == 200 and body["messages"][0]["id"] == ack["id"], body
    assert body["messages"][0]["text"] == "reply via B"


async def test_password_set_on_a_applies_on_b(
    nodes: tuple[ParleyProcess, ParleyProcess], clients: Clients
) -> None:
    a_node, b_node = nodes
    room = unique_room("password")
    host = await clients.join(a_node, room, "Host")
    assert host.welcome["participants"][0]["role"] == "host"  # type: ignore[index]
    assert (await change_settings(host, {"password": "open sesame"}))["has_password"] is True
    no_pw = await clients.join(b_node, room, "Eve", expect="none")
    await no_pw.error("password_required")
    wrong = await clients.join(b_node, room, "Eve", expect="none", password="nope")
    await wrong.error("bad_password")
    right = await clients.join(b_node, room, "Bob", password="open sesame")
    assert right.welcome["room"]["settings"]["has_password"] is True  # type: ignore[index]
    await host.expect("participant-joined", lambda m: m["participant"]["id"] == right.id)
    # Cleared on B by... only hosts: Bob is not one.
    await right.send({"type": "room-settings", "password": ""})
    await right.error("forbidden")


async def test_lock_set_on_a_refuses_joiner_on_b(
    nodes: tuple[ParleyProcess, ParleyProcess], clients: Clients
) -> None:
    a_node, b_node = nodes
    room = unique_room("lock")
    host = await clients.join(a_node, room, "Host")
    assert (await change_settings(host, {"locked": True}))["locked"] is True
    eve = await clients.join(b_node, room, "Eve", expect="none")
    await eve.error("locked")
    await change_settings(host, {"locked": False}, lambda m: m["settings"]["locked"] is False)
    bob = await clients.join(b_node, room, "Bob")
    assert bob.welcome["room"]["settings"]["locked"] is False  # type: ignore[index]


async def test_lobby_on_a_joiner_on_b_admitted_across_nodes(
    nodes: tuple[ParleyProcess, ParleyProcess], clients: Clients
) -> None:
    a_node, b_node = nodes
    room = unique_room("lobby")
    host = await clients.join(a_node, room, "Host")
    await change_settings(host, {"lobby": True}, lambda m: m["settings"]["lobby"] is True)
    guest = await clients.join(b_node, room, "Guest", expect="none")
    assert (await guest.expect("lobby-wait"))["room"] == room
    lobby = await host.expect("lobby", lambda m: bool(m["waiting"]))
    (entry,) = lobby["waiting"]
    assert entry["name"] == "Guest"
    # While waiting, the guest sees nothing of the room and may not chat.
    await guest.send({"type": "chat", "text": "let me in"})
    await guest.error("waiting")
    await host.send({"type": "admit", "to": entry["id"]})
    welcome = await guest.expect("welcome")
    guest.welcome = welcome
    assert welcome["id"] == entry["id"]
    assert host.id in ids(welcome["participants"])
    await host.expect("participant-joined", lambda m: m["participant"]["id"] == entry["id"])
    await host.expect("lobby", lambda m: m["waiting"] == [])
    # Once seen under load before the fix: the AdmitOp overtook the MemberOp.
    assert entry["id"] in ids(welcome["participants"])
    await guest.chat("thanks")
    await host.expect("chat", lambda m: m["message"]["text"] == "thanks")


async def test_lobby_deny_across_nodes(
    nodes: tuple[ParleyProcess, ParleyProcess], clients: Clients
) -> None:
    a_node, b_node = nodes
    room = unique_room("deny")
    host = await clients.join(a_node, room, "Host")
    await host.send({"type": "room-settings", "lobby": True})
    await host.expect("room-updated")
    eve = await clients.join(b_node, room, "Eve", expect="none")
    await eve.expect("lobby-wait")
    lobby = await host.expect("lobby", lambda m: bool(m["waiting"]))
    await host.send({"type": "deny", "to": lobby["waiting"][0]["id"]})
    await host.expect("lobby", lambda m: m["waiting"] == [])
    await eve.error("denied", within=5)
    assert await eve.wait_closed(5) == 4003


@pytest.mark.parametrize("attempt", range(3))
async def test_one_host_when_two_join_a_new_room_at_once_on_two_nodes(
    nodes: tuple[ParleyProcess, ParleyProcess], clients: Clients, attempt: int
) -> None:
    a_node, b_node = nodes
    room = unique_room(f"host{attempt}")
    x, y = await asyncio.gather(clients.join(a_node, room, "X"), clients.join(b_node, room, "Y"))
    roles = {}
    for c in (x, y):
        me = next(p for p in c.welcome["participants"] if p["id"] == c.id)  # type: ignore[index]
        roles[c.id] = me["role"]
    check_one_host([r for r in roles.values() if r == "host"])
    assert sorted(roles.values()) == ["host", "participant"], roles
    # Both nodes agree on the roster and roles.
    for node in nodes:
        await eventually(lambda n=node: room_count(n, room, 2), 5, f"{node.node_id}: 2 listed")
    # The second one admitted saw the first in its welcome. The first was told, unless
    # its welcome was built after the second's join reached its node: then both
    # welcomes list both, and the welcome lengths cannot say who came first.
    assert any(ids(c.welcome["participants"]) == {x.id, y.id} for c in (x, y))  # type: ignore[index]
    for c, other in ((x, y), (y, x)):
        if other.id not in ids(c.welcome["participants"]):  # type: ignore[index]
            await c.expect("participant-joined", lambda m, o=other: m["participant"]["id"] == o.id)


async def test_room_size_limit_holds_under_concurrent_joins_on_both_nodes(
    nodes: tuple[ParleyProcess, ParleyProcess], clients: Clients
) -> None:
    a_node, b_node = nodes
    room = unique_room("full")
    targets = [a_node, b_node, a_node, b_node, a_node]
    outcomes = await asyncio.gather(
        *(join_outcome(clients, n, room, f"P{i}") for i, n in enumerate(targets))
    )
    welcomed = [c for kind, c in outcomes if kind == "welcome"]
    refused = [c for kind, c in outcomes if kind == "error"]
    assert len(welcomed) == 3 and refused == ["room_full", "room_full"], outcomes
    hosts = [
        p for c in welcomed for p in c.welcome["participants"]
        if p["id"] == c.id and p["role"] == "host"
    ]  # fmt: skip
    check_one_host(hosts)
    for node in nodes:
        await eventually(lambda n=node: room_count(n, room, 3), 5, f"{node.node_id}: 3 listed")


async def test_host_on_a_mutes_participant_on_b(
    nodes: tuple[ParleyProcess, ParleyProcess], clients: Clients
) -> None:
    a_node, b_node = nodes
    room = unique_room("mute")
    host = await clients.join(a_node, room, "Host")
    bob = await clients.join(b_node, room, "Bob")
    await bob.send({"type": "media", "mic": True})
    await host.expect(
        "participant-updated",
        lambda m: m["participant"]["id"] == bob.id and m["participant"]["mic"],
    )
    await host.send({"type": "mute", "to": bob.id, "kind": "mic"})
    muted = await bob.expect("muted")
    assert muted == {"type": "muted", "kind": "mic", "by": host.id}
    upd = await bob.expect(
        "participant-updated",
        lambda m: m["participant"]["id"] == bob.id and not m["participant"]["mic"],
    )
    assert upd["participant"]["mic"] is False
    await host.expect(
        "participant-updated",
        lambda m: m["participant"]["id"] == bob.id and not m["participant"]["mic"],
    )
    note = await bob.expect("chat", lambda m: m["message"].get("system") is True)
    assert "Bob" in note["message"]["text"]


async def test_host_on_a_removes_participant_on_b(
    nodes: tuple[ParleyProcess, ParleyProcess], clients: Clients
) -> None:
    a_node, b_node = nodes
    room = unique_room("remove")
    host = await clients.join(a_node, room, "Host")
    bob = await clients.join(b_node, room, "Bob")
    cat = await clients.join(b_node, room, "Cat")
    await host.expect("participant-joined", lambda m: m["participant"]["id"] == cat.id)
    await host.send({"type": "remove", "to": bob.id, "ban": False})
    removed = await bob.expect("removed")
    assert removed["by"] == host.id and removed["ban"] is False
    for c in (host, cat):
        left = await c.expect("participant-left", lambda m: m["id"] == bob.id)
        assert left["reason"] == "removed"
    await host.chat("after the removal")
    await cat.expect("chat", lambda m: m["message"]["text"] == "after the removal")
    assert not bob.saw_chat("after the removal"), "a removed participant still hears the room"
    assert await bob.wait_closed(5) == 4001


async def test_rest_room_info_same_on_every_node(
    nodes: tuple[ParleyProcess, ParleyProcess], clients: Clients
) -> None:
    a_node, b_node = nodes
    room = unique_room("rest")
    ada = await clients.join(a_node, room, "Ada")
    await ada.chat("hi")
    status, on_a = await get_json(a_node.url, f"/api/v1/rooms/{room}")
    assert status == 200 and on_a["participant_count"] == 1
    await asyncio.sleep(0.5)
    status, on_b = await get_json(b_node.url, f"/api/v1/rooms/{room}")
    assert status == 200, on_b
    assert on_b["participant_count"] == 1 and on_b["participants"] == on_a["participants"], on_b


async def test_lock_holds_on_b_once_host_on_a_is_told(
    cluster: Cluster, nodes: tuple[ParleyProcess, ParleyProcess], clients: Clients
) -> None:
    import asyncpg

    a_node, b_node = nodes
    room = unique_room("lockrace")
    host = await clients.join(a_node, room, "Host")
    conn = await asyncpg.connect(dsn(cluster.database_url))
    tx = conn.transaction()
    await tx.start()
    try:
        # A slow database: node A's UPDATE of this room's row waits for our row lock.
        await conn.execute("SELECT 1 FROM rooms WHERE name = $1 FOR UPDATE", room)
        await host.send({"type": "room-settings", "locked": True})
        assert (await host.expect("room-updated"))["settings"]["locked"] is True
        eve = await clients.join(b_node, room, "Eve", expect="none")
        msg = await eve.take(lambda m: m["type"] in ("welcome", "error"), "answer", 10)
    finally:
        await tx.rollback()
        await conn.close()
    assert msg["type"] == "error" and msg["code"] == "locked", msg["type"]


@pytest.mark.parametrize(("setting", "answer"), [("lobby", "lobby-wait"), ("locked", "error")])
async def test_a_setting_the_host_was_told_of_holds_for_a_join_on_a_node_with_a_slow_redis_link(
    cluster: Cluster, clients: Clients, setting: str, answer: str
) -> None:
    """Regression (1 run in 17 in a full suite): node A told its host of the lobby while
    the room's new record still waited in its queue to Redis; a join on node B read the
    old record and was let in.  Here every write of A reaches Redis 0.4 s late."""
    with DelayProxy(cluster.redis.port, delay=0.4) as slow:
        a_node = cluster.node("SlowA", "--broker", slow.url, "--max-participants", "3", redis=False)
        b_node = cluster.node("FastB", "--max-participants", "3")
        a_node.wait_ready()
        b_node.wait_ready()
        try:
            room = unique_room(f"slow{setting}")
            host = await clients.join(a_node, room, "Host")
            await host.send({"type": "room-settings", setting: True})
            assert (await host.expect("room-updated"))["settings"][setting] is True
            eve = await clients.join(b_node, room, "Eve", expect="none")
            msg = await eve.take(lambda m: m["type"] in ("welcome", "lobby-wait", "error"), "?", 10)
            assert msg["type"] == answer, msg
        finally:
            for n in (a_node, b_node):
                n.stop()


async def test_a_poll_across_nodes(
    nodes: tuple[ParleyProcess, ParleyProcess], clients: Clients
) -> None:
    """A host on A, voters on A and B, a late joiner on B: one poll, one set of counts."""
    a_node, b_node = nodes
    room = unique_room("poll")
    host = await clients.join(a_node, room, "Host")
    bob = await clients.join(b_node, room, "Bob")
    await host.expect("participant-joined", lambda m: m["participant"]["id"] == bob.id)
    await host.send({"type": "poll-create", "question": "Go?", "options": ["Yes", "No"]})
    poll_id = (await bob.expect("poll"))["poll"]["id"]
    await settled(host)  # the "started a poll" line: the poll is shared after it
    await bob.send({"type": "poll-vote", "poll": poll_id, "choices": [1]})
    await bob.expect("poll-voted")
    await host.expect("poll", lambda m: m["poll"].get("counts") == [0, 1])

    # A late joiner on B gets the open poll from B's mirror, and votes there.
    late = await clients.join(b_node, room, "Late")
    assert (await late.expect("poll"))["poll"]["id"] == poll_id
    await late.send({"type": "poll-vote", "poll": poll_id, "choices": [1]})
    await late.expect("poll-voted")
    await host.expect("poll", lambda m: m["poll"].get("counts") == [0, 2])
    # Bob changes his vote on B: A's count follows.
    await bob.send({"type": "poll-vote", "poll": poll_id, "choices": [0]})
    await host.expect("poll", lambda m: m["poll"].get("counts") == [1, 1])
    await asyncio.sleep(0.2)  # the vote is shared with A

    await host.send({"type": "poll-close", "poll": poll_id})
    for client in (host, bob, late):
        closed = await client.expect("poll", lambda m: m["poll"].get("closed") is True)
        assert closed["poll"]["counts"] == [1, 1]
    # Closed everywhere: B refuses a vote on it.
    await eventually(
        lambda: _refused_vote(late, poll_id), 10, "B refuses a vote on the closed poll"
    )


async def _refused_vote(client: Client, poll_id: str) -> bool:
    await client.send({"type": "poll-vote", "poll": poll_id, "choices": [0], "ref": "late"})
    msg = await client.take(
        lambda m: m.get("ref") == "late" and m["type"] in ("error", "poll-voted"), "answer"
    )
    return msg["type"] == "error" and msg["code"] == "poll_closed"
