"""One SFU room across two nodes: whoever's WebSocket landed where, the media meets on one node.

Nodes A and B run ``--media sfu --media-ip 127.0.0.1`` on one Redis and one PostgreSQL.
Ada joins through A, Bob and Cy through B; all publish and subscribe with aiortc.  The
room's media owner (the node of the first SFU signal) forwards everyone's media; the
other node relays its participants' signalling through the room channel.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator

import aiohttp
import pytest
import redis.asyncio

from parley.sfu.aiortc import host_addresses
from tests.cluster.harness import Cluster, unique_room
from tests.sfu.sfu_media import WAIT, Person, wait_for
from tests.support.parley_process import ParleyProcess
from tests.support.ws_client import Clients

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def sfu_nodes(cluster: Cluster) -> tuple[ParleyProcess, ParleyProcess]:
    a, b = cluster.start(
        "SA", "SB", args=("--media", "sfu", "--media-ip", "127.0.0.1", "--no-rate-limits")
    )
    return a, b


@pytest.fixture
def loopback_only() -> Iterator[None]:
    host_addresses.restrict_host_addresses(["127.0.0.1"])  # this process's aiortc peers
    yield
    host_addresses.restrict_host_addresses(None)


async def forwarded(node: ParleyProcess) -> int:
    """Packets this node's SFU has received from publishers (from /metrics)."""
    async with aiohttp.ClientSession() as s, s.get(f"{node.url}/metrics") as r:
        text = await r.text()
    m = re.search(r"^parley_sfu_packets_received(?:_total)? (\S+)$", text, re.M)
    return int(float(m.group(1))) if m else 0


async def test_media_of_one_room_meets_on_one_node(
    sfu_nodes: tuple[ParleyProcess, ParleyProcess], clients: Clients, loopback_only: None
) -> None:
    a, b = sfu_nodes
    room = unique_room("sfu")
    people: list[Person] = []
    try:
        for node, name in ((a, "Ada"), (b, "Bob"), (b, "Cy")):
            ws = await clients.join(node, room, name)
            assert ws.welcome is not None and ws.welcome["room"]["media"] == "sfu"
            people.append(Person(name, ws))
        ada, bob, cy = people
        await ada.publish()  # first SFU signal: through A, so A forwards this room
        await asyncio.gather(bob.publish(), cy.publish())
        await asyncio.gather(*(p.subscribe() for p in people))

        def everyone_decodes(minimum: int) -> bool:
            return all(p.decoded(o.id) >= minimum for p in people for o in people if o is not p)

        def report() -> str:
            return str({p.name: p.frames for p in people})

        await wait_for(lambda: everyone_decodes(10), WAIT, report)
        # All of it went through A's SFU; B relayed signalling only.
        assert await forwarded(a) > 0
        assert await forwarded(b) == 0

        # Bob leaves through B: A stops forwarding him, the others keep decoding each other.
        await bob.close()
        await bob.ws.close()
        await wait_for(
            lambda: bob.id not in ada.shown("video") and bob.id not in cy.shown("video"),
            WAIT,
            lambda: str([ada.layout(), cy.layout()]),
        )
        before = (ada.decoded(cy.id), cy.decoded(ada.id))
        await wait_for(
            lambda: ada.decoded(cy.id) > before[0] and cy.decoded(ada.id) > before[1],
            WAIT,
            report,
        )
    finally:
        for p in people:
            await p.close()


async def test_media_moves_to_a_surviving_node_when_its_owner_dies(
    cluster: Cluster, clients: Clients, loopback_only: None
) -> None:
    """The owner is SIGKILLed: a participant on the other node publishes again, and that
    node takes the room's media over once the dead node's liveness key has expired."""
    a, b = cluster.start(
        "SC", "SD", args=("--media", "sfu", "--media-ip", "127.0.0.1", "--no-rate-limits")
    )
    room = unique_room("sfu-owner")
    people: list[Person] = []
    try:
        ada = Person("Ada", await clients.join(a, room, "Ada"))
        bob = Person("Bob", await clients.join(b, room, "Bob"))
        cy = Person("Cy", await clients.join(b, room, "Cy"))
        people = [ada, bob, cy]
        await ada.publish()  # A owns the room's media
        await bob.publish()
        a.kill()  # SIGKILL: no goodbye, the ownership key still names A
        for p in (bob, cy):  # their peer connections (and layout readers) are done
            await p.close()
        # Until A's liveness key expires (10 s) the room's media is still A's.
        r = redis.asyncio.Redis.from_url(cluster.redis.url)
        try:
            deadline = asyncio.get_running_loop().time() + 30
            while await r.exists("parley:node:SC"):
                assert asyncio.get_running_loop().time() < deadline, "A's key never expired"
                await asyncio.sleep(0.2)
        finally:
            await r.aclose()
        # Bob and Cy (on B) publish and subscribe again, as the web client does when its
        # peer connections fail; B answers once it has taken the room's media over.
        bob, cy = Person("Bob", bob.ws), Person("Cy", cy.ws)
        people = [ada, bob, cy]
        await asyncio.gather(bob.publish(), cy.publish())
        await asyncio.gather(bob.subscribe(), cy.subscribe())
        await wait_for(
            lambda: bob.decoded(cy.id) >= 10 and cy.decoded(bob.id) >= 10,
            WAIT + 15,
            lambda: str({p.name: p.frames for p in (bob, cy)}),
        )
        assert await forwarded(b) > 0
    finally:
        for p in people:
            await p.close()


async def test_a_status_question_claims_no_media(
    sfu_nodes: tuple[ParleyProcess, ParleyProcess], cluster: Cluster, clients: Clients
) -> None:
    """After a reconnect the client asks what the SFU still has; asking takes nothing."""
    a, _ = sfu_nodes
    room = unique_room("sfu-status")
    ws = await clients.join(a, room, "Ada")
    await ws.send({"type": "signal", "to": "sfu", "payload": {"sfu": "status", "id": 7}})
    reply = await ws.expect("signal", lambda m: m.get("from") == "sfu")
    assert reply["payload"] == {"sfu": "status", "id": 7, "publish": False, "subscribe": False}
    r = redis.asyncio.Redis.from_url(cluster.redis.url)
    try:
        assert await r.get(f"parley:sfu:{room}") is None
    finally:
        await r.aclose()
