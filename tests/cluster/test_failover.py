"""A node dies (SIGKILL) or is drained (SIGTERM): the meeting goes on on the survivor.

Three nodes share one Redis and PostgreSQL: A is killed, C is drained, B survives.
"""

from __future__ import annotations

import asyncio
import signal
import time

import msgspec
import pytest
import redis.asyncio as aioredis

from tests.cluster.harness import Cluster, eventually, unique_room
from tests.support.parley_process import ParleyProcess
from tests.support.ws_client import Clients

pytestmark = pytest.mark.postgres

#: The spec: participants of a dead node are announced as left within 30 s.
LEFT_WITHIN = 30.0


@pytest.fixture(scope="module")
def nodes(cluster: Cluster) -> dict[str, ParleyProcess]:
    started = cluster.start("A", "B", "C")
    return {n.node_id: n for n in started}


async def test_killed_node_participants_left_and_resume_on_survivor(
    nodes: dict[str, ParleyProcess], clients: Clients
) -> None:
    a_node, b_node = nodes["A"], nodes["B"]
    room = unique_room("kill")
    stays = await clients.join(a_node, room, "Stays")  # will not come back
    mover = await clients.join(a_node, room, "Mover")  # resumes on B
    bob = await clients.join(b_node, room, "Bob")
    for c in (stays, mover):
        await c.expect("participant-joined", lambda m: m["participant"]["id"] == bob.id)
    await mover.chat("said on A before the crash")
    await bob.expect("chat", lambda m: m["message"]["text"] == "said on A before the crash")
    roster = {p["id"] for p in bob.welcome["participants"]}  # type: ignore[index]
    assert roster == {stays.id, mover.id, bob.id}

    t0 = time.monotonic()
    a_node.kill()  # SIGKILL: no goodbye to anyone
    await mover.wait_closed(5)
    # The mover reconnects to the survivor with its resume token.
    again = await clients.resume(b_node, mover, room)
    w = again.welcome
    assert w is not None and w["resumed"] is True and w["id"] == mover.id, w
    assert {p["id"] for p in w["participants"]} >= {mover.id, bob.id}
    assert "said on A before the crash" in [m["text"] for m in w["history"]]

    # The one that does not come back is announced as left, within 30 s.
    left = await bob.expect(
        "participant-left", lambda m: m["id"] == stays.id, within=LEFT_WITHIN + 2
    )
    took = time.monotonic() - t0
    assert left["reason"] == "disconnected", left
    assert took <= LEFT_WITHIN, f"announced after {took:.1f} s"
    await again.expect("participant-left", lambda m: m["id"] == stays.id, within=5)

    # The mover kept its identity: nobody saw it leave or rejoin.
    assert mover.id not in bob.left_ids(), bob.of_type("participant-left")
    assert mover.id not in bob.joined_ids(), bob.of_type("participant-joined")
    await again.chat("said on B after the crash")
    await bob.expect("chat", lambda m: m["message"]["sender"] == mover.id)
    assert b_node.alive() and b_node.health() is not None


async def test_drained_node_clients_resume_elsewhere_with_identity_and_chat(
    nodes: dict[str, ParleyProcess], clients: Clients, cluster: Cluster
) -> None:
    b_node, c_node = nodes["B"], nodes["C"]
    room = unique_room("drain")
    carol = await clients.join(c_node, room, "Carol")
    dave = await clients.join(c_node, room, "Dave")
    bob = await clients.join(b_node, room, "Bob")
    await carol.expect("participant-joined", lambda m: m["participant"]["id"] == bob.id)
    await carol.chat("public before the drain")
    await carol.chat("private to Bob before the drain", to=bob.id)
    await bob.expect("chat", lambda m: m["message"]["text"] == "private to Bob before the drain")

    c_node.send_signal(signal.SIGTERM)
    codes = [await c.wait_closed(10) for c in (carol, dave)]
    assert all(code in (1001, 1012) for code in codes), codes
    movers = await asyncio.gather(
        clients.resume(b_node, carol, room), clients.resume(b_node, dave, room)
    )
    for old, new in zip((carol, dave), movers, strict=True):
        w = new.welcome
        assert w is not None and w["resumed"] is True and w["id"] == old.id, w
        assert {p["id"] for p in w["participants"]} == {carol.id, dave.id, bob.id}
    texts = [m["text"] for m in movers[0].welcome["history"]]  # type: ignore[index]
    assert "public before the drain" in texts and "private to Bob before the drain" in texts
    assert "private to Bob before the drain" not in [
        m["text"]
        for m in movers[1].welcome["history"]  # type: ignore[index]
    ]
    assert c_node.stop(timeout=15) is not None  # it exits by itself after draining

    await movers[0].chat("hello again")
    await bob.expect("chat", lambda m: m["message"]["sender"] == carol.id)

    # Redis's record now has the movers on B, so no survivor will reap them as
    # participants of the stopped node C (the kill test waits the reaping window out).
    r = aioredis.Redis.from_url(cluster.redis.url)
    try:
        for mover in (carol, dave):
            await eventually(
                lambda pid=mover.id: _served_by(r, room, pid, "B"), 5, f"{mover.label} on B"
            )
    finally:
        await r.aclose()
    await asyncio.sleep(2)
    for mover in (carol, dave):
        assert mover.id not in bob.left_ids(), bob.of_type("participant-left")
        assert mover.id not in bob.joined_ids(), bob.of_type("participant-joined")
    assert not movers[0].of_type("participant-left")
    await movers[1].chat("still here")
    await bob.expect("chat", lambda m: m["message"]["sender"] == dave.id)


async def _served_by(r: aioredis.Redis, room: str, pid: str, node: str) -> bool:
    """The node in the participant's replicated record (msgpack array: info, room, node, …)."""
    raw = await r.hget(f"parley:members:{room}", pid)
    return raw is not None and msgspec.msgpack.decode(raw)[2] == node
