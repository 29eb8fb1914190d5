"""One SFU room across two nodes: whoever's WebSocket landed where, the media meets on one node.

Nodes A and B run ``--media sfu --media-ip 127.0.0.1`` on one Redis and one PostgreSQL.
Ada joins through A, Bob and Cy through B; all publish and subscribe with aiortc.  The
room's media owner (the node of the first SFU signal) forwards everyone's media; the
other node relays its participants' signalling through the room channel.
"""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from cluster_harness import Clients, Cluster, NodeProc, unique_room

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sfu"))
from sfu_media import WAIT, Person, wait_for  # noqa: E402

from parley.sfu import aiortc_hooks  # noqa: E402

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def sfu_nodes(cluster: Cluster) -> tuple[NodeProc, NodeProc]:
    a, b = cluster.start(
        "SA", "SB", args=("--media", "sfu", "--media-ip", "127.0.0.1", "--no-rate-limits")
    )
    return a, b


@pytest.fixture
def loopback_only() -> Iterator[None]:
    aiortc_hooks.restrict_host_addresses(["127.0.0.1"])  # this process's aiortc peers
    yield
    aiortc_hooks.restrict_host_addresses(None)


async def forwarded(node: NodeProc) -> int:
    """Packets this node's SFU has received from publishers (from /metrics)."""
    async with aiohttp.ClientSession() as s, s.get(f"{node.url}/metrics") as r:
        text = await r.text()
    m = re.search(r"^parley_sfu_packets_received(?:_total)? (\S+)$", text, re.M)
    return int(float(m.group(1))) if m else 0


async def test_media_of_one_room_meets_on_one_node(
    sfu_nodes: tuple[NodeProc, NodeProc], clients: Clients, loopback_only: None
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
