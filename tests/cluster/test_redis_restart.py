"""Redis goes away for ~3 s mid-meeting and comes back (empty: no persistence).

No node crashes, rooms keep working on each node during the outage, and cross-node
delivery and presence come back afterwards.
"""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections.abc import Iterator

import pytest

from tests.cluster.harness import Cluster, eventually, get_json, unique_room
from tests.support.parley_process import ParleyProcess
from tests.support.ws_client import Client, Clients

pytestmark = pytest.mark.postgres

OUTAGE = 3.0
#: Bound for cross-node delivery to resume after Redis is back.
RESUME_WITHIN = 15.0


@pytest.fixture
def nodes(cluster: Cluster) -> Iterator[tuple[ParleyProcess, ParleyProcess]]:
    """Two fresh nodes per test: each test starts from a healthy cluster."""
    n = len(cluster.nodes)
    a, b = cluster.start(f"A{n}", f"B{n}")
    yield a, b
    for node in (a, b):
        node.send_signal(signal.SIGTERM)
    for node in (a, b):
        node.stop()


async def roster(node: ParleyProcess, room: str) -> set[str]:
    status, info = await get_json(node.url, f"/api/v1/rooms/{room}")
    assert status == 200, info
    return {p["id"] for p in info["participants"]}


async def three_in_a_room(
    clients: Clients, nodes: tuple[ParleyProcess, ParleyProcess], prefix: str
) -> tuple[str, Client, Client, Client]:
    """A fresh room: A1 and A2 join it on node A, then B1 on node B."""
    a_node, b_node = nodes
    room = unique_room(prefix)
    a1, a2, b1 = await clients.join_all(room, (a_node, "A1"), (a_node, "A2"), (b_node, "B1"))
    return room, a1, a2, b1


async def chat_until_delivered(sender: Client, receiver: Client, within: float) -> float:
    """Send chats every 0.25 s until ``receiver`` gets one; return how long it took."""
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    sent: set[str] = set()
    while True:
        text = f"probe {uuid.uuid4().hex[:6]}"
        sent.add(text)
        await sender.chat(text)
        try:
            await receiver.expect("chat", lambda m: m["message"]["text"] in sent, within=0.25)
            return loop.time() - t0
        except AssertionError:
            if loop.time() - t0 > within:
                raise AssertionError(
                    f"no cross-node chat within {within}s after Redis came back"
                ) from None


async def test_redis_restart_no_crash_local_rooms_work_delivery_resumes(
    cluster: Cluster, nodes: tuple[ParleyProcess, ParleyProcess], clients: Clients
) -> None:
    b_node = nodes[1]
    room, a1, a2, b1 = await three_in_a_room(clients, nodes, "outage")
    await a1.chat("before")
    await b1.expect("chat", lambda m: m["message"]["text"] == "before")

    assert cluster.redis.stop() is not None
    t_down = time.monotonic()
    # During the outage: both nodes alive and healthy, and each node's clients still talk.
    await asyncio.sleep(0.5)
    for node in nodes:
        assert node.alive() and node.health() is not None, node.log()
    await a1.chat("during, on A")
    await a2.expect("chat", lambda m: m["message"]["text"] == "during, on A", within=5)
    await a2.send({"type": "media", "mic": True})
    await a1.expect("participant-updated", lambda m: m["participant"]["id"] == a2.id, within=5)
    # A join during the outage is admitted on the node's local view.
    b2 = await clients.join(b_node, room, "B2")
    await b1.expect("participant-joined", lambda m: m["participant"]["id"] == b2.id, within=5)
    await b2.chat("during, on B")
    await b1.expect("chat", lambda m: m["message"]["text"] == "during, on B", within=5)
    await asyncio.sleep(max(0.0, OUTAGE - (time.monotonic() - t_down)))

    cluster.redis.start()  # same port, empty
    took = await chat_until_delivered(a1, b1, RESUME_WITHIN)
    await chat_until_delivered(b2, a1, RESUME_WITHIN)
    # Both ways, and from now on every message.
    await b2.chat("after, from B")
    await a1.expect("chat", lambda m: m["message"]["text"] == "after, from B", within=10)
    await a1.chat("after, from A")
    await b2.expect("chat", lambda m: m["message"]["text"] == "after, from A", within=10)
    # Stored messages written during the outage are all there, on both nodes.
    for node in nodes:
        status, body = await get_json(node.url, f"/api/v1/rooms/{room}/messages?limit=200")
        texts = [m["text"] for m in body["messages"]]
        assert {"during, on A", "during, on B"} <= set(texts), texts

    # Presence after the outage: see test_presence_resynchronised_after_outage (a bug).
    # No node crashed; both logged the outage and the recovery.
    for node in nodes:
        assert node.alive() and node.health()["status"] == "ok"  # type: ignore[index]
        log = node.log()
        assert "redis unavailable" in log and "reachable again" in log, log
    print(f"cross-node delivery resumed {took:.2f} s after Redis restarted")


async def _roster_is(node: ParleyProcess, room: str, expected: set[str]) -> bool:
    return await roster(node, room) == expected


async def test_room_first_used_after_restart_works_across_nodes(
    cluster: Cluster, nodes: tuple[ParleyProcess, ParleyProcess], clients: Clients
) -> None:
    a_node, b_node = nodes
    old_room = unique_room("before-restart")
    a1, b1 = await clients.join_all(old_room, (a_node, "A1"), (b_node, "B1"))
    assert cluster.redis.stop() is not None
    await asyncio.sleep(OUTAGE)
    cluster.redis.start()
    await chat_until_delivered(a1, b1, RESUME_WITHIN)
    await chat_until_delivered(b1, a1, RESUME_WITHIN)

    room = unique_room("after-restart")
    x, y = await clients.join_all(room, (a_node, "X"), (b_node, "Y"))
    assert {p["id"] for p in y.welcome["participants"]} == {x.id, y.id}  # type: ignore[index]
    await x.expect("participant-joined", lambda m: m["participant"]["id"] == y.id, within=5)
    await y.chat("from B in a new room")
    await x.expect("chat", lambda m: m["message"]["text"] == "from B in a new room", within=5)


async def test_presence_resynchronised_after_outage(
    cluster: Cluster, nodes: tuple[ParleyProcess, ParleyProcess], clients: Clients
) -> None:
    b_node = nodes[1]
    room, a1, a2, b1 = await three_in_a_room(clients, nodes, "outage-presence")
    await a1.expect("participant-joined", lambda m: m["participant"]["id"] == b1.id)

    assert cluster.redis.stop() is not None
    await asyncio.sleep(0.5)
    b2 = await clients.join(b_node, room, "B2")  # joins on B during the outage
    await a2.send({"type": "leave"})  # leaves A during the outage
    await b1.expect("participant-joined", lambda m: m["participant"]["id"] == b2.id, within=5)
    await asyncio.sleep(OUTAGE - 0.5)
    cluster.redis.start()
    await chat_until_delivered(a1, b1, RESUME_WITHIN)

    # Both nodes (REST) list the same participants: the state is resynchronised ...
    everyone = {a1.id, b1.id, b2.id}
    for node in nodes:
        await eventually(
            lambda n=node: _roster_is(n, room, everyone), 10, f"{node.node_id}'s roster"
        )
    # ... and the clients of each node are told what changed on the other meanwhile.
    await a1.expect("participant-joined", lambda m: m["participant"]["id"] == b2.id, within=5)
    await b1.expect("participant-left", lambda m: m["id"] == a2.id, within=5)
    # A later joiner gets the full roster whichever node it lands on.
    for node in nodes:
        late = await clients.join(node, room, f"Late{node.node_id}")
        assert {p["id"] for p in late.welcome["participants"]} >= everyone  # type: ignore[index]
