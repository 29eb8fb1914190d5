"""Breakout rooms across two nodes (real redis-server, real PostgreSQL): people connected to
either node move into breakouts and back on their own sockets, a breakout's chat reaches
that breakout on both nodes only, the timers fire once, and a resume through the other
node lands back in the breakout."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from parley.sfu.aiortc import host_addresses
from tests.cluster.harness import Cluster, unique_room
from tests.sfu.sfu_media import WAIT, Person, wait_for
from tests.support.parley_process import ParleyProcess
from tests.support.ws_client import Client, Clients

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(180)]


#: A close's warning on these nodes (default 30 s, checked in tests/core): the suite
#: does not wait half a minute per test.
SHORT_WARNING = ("--breakout-close-warning", "5")


@pytest.fixture(scope="module")
def nodes(cluster: Cluster) -> tuple[ParleyProcess, ParleyProcess]:
    a, b = cluster.start("A", "B", args=SHORT_WARNING)
    return a, b


@pytest.fixture(scope="module")
def mesh_nodes(cluster: Cluster) -> tuple[ParleyProcess, ParleyProcess]:
    a, b = cluster.start("MA", "MB", args=("--media", "mesh", *SHORT_WARNING))
    return a, b


def in_room(client: Client, room: str, within: float | None = None) -> Any:
    return client.expect("welcome", lambda m: m["room"]["name"] == room, within=within)


def names(welcome: dict[str, Any]) -> list[str]:
    return sorted(p["name"] for p in welcome["participants"])


@pytest.mark.parametrize("media", ["sfu", "mesh"])
async def test_breakouts_over_two_nodes_move_chat_resume_and_close(
    media: str, request: pytest.FixtureRequest, clients: Clients
) -> None:
    nodes = request.getfixturevalue("nodes" if media == "sfu" else "mesh_nodes")
    a_node, b_node = nodes
    room = unique_room("breakouts")
    host = await clients.join(a_node, room, "Host")
    ann = await clients.join(a_node, room, "Ann")
    bob = await clients.join(b_node, room, "Bob")
    cy = await clients.join(b_node, room, "Cy")
    await host.expect("participant-joined", lambda m: m["participant"]["id"] == cy.id)
    await host.send(
        {
            "type": "breakouts-open",
            "names": ["Red", "Blue"],
            "assign": {ann.id: 0, bob.id: 0, cy.id: 1},
            "auto": False,
        }
    )
    # Sockets on both nodes are welcomed into their breakout, each with everyone there.
    ann_w, bob_w = await in_room(ann, f"{room}~1"), await in_room(bob, f"{room}~1")
    assert names(ann_w) == names(bob_w) == ["Ann", "Bob"]
    assert bob_w["breakout"] == {"main": room, "index": 0, "title": "Red"}
    assert bob_w["id"] == bob.id  # the same identity, on the same socket
    assert bob_w["room"]["created_at"] == ann_w["room"]["created_at"] > 0  # one start
    cy_w = await in_room(cy, f"{room}~2")
    assert names(cy_w) == ["Cy"] and cy_w["breakout"]["title"] == "Blue"
    state = await host.expect("breakouts", lambda m: len(m["state"]["rooms"][1]["members"]) == 1)
    assert set(state["state"]["rooms"][0]["members"]) == {ann.id, bob.id}
    # Node B knows the breakouts too: its people get the state.
    assert (await cy.expect("breakouts"))["state"]["open"] is True

    # Red's chat reaches Red on both nodes, and nobody else.
    await bob.chat("hello red from B")
    got = await ann.expect("chat", lambda m: m["message"]["text"] == "hello red from B")
    assert got["message"]["room"] == f"{room}~1"
    await ann.chat("hello red from A")
    await bob.expect("chat", lambda m: m["message"]["text"] == "hello red from A")
    await cy.chat("hello blue")
    await cy.roundtrip()
    await host.roundtrip()
    assert not cy.saw_chat("hello red from B") and not cy.saw_chat("hello red from A")
    assert not host.saw_chat("hello red from B") and not ann.saw_chat("hello blue")
    assert not bob.saw_chat("hello blue")

    # A host on A moves someone on B; a help call from B reaches the host on A.
    await host.send({"type": "breakout-assign", "to": cy.id, "room": 0})
    moved = await in_room(cy, f"{room}~1")
    assert names(moved) == ["Ann", "Bob", "Cy"]
    await ann.expect("participant-joined", lambda m: m["participant"]["id"] == cy.id)
    await bob.send({"type": "breakout-help"})
    call = await host.expect("breakout-help")
    assert (call["from"], call["title"]) == (bob.id, "Red")

    # Bob's connection to B drops; he comes back through A, with the main room's name.
    bob.drop()
    back = await clients.resume(a_node, bob, room)
    assert back.welcome is not None
    assert back.welcome["room"]["name"] == f"{room}~1" and back.welcome["resumed"] is True
    assert back.welcome["id"] == bob.id and back.welcome["breakout"]["title"] == "Red"
    await cy.chat("welcome back")  # from B to the resumed socket on A
    await back.expect("chat", lambda m: m["message"]["text"] == "welcome back")

    # Close: a warning everywhere, then everyone is back, on both nodes.
    await host.send({"type": "breakouts-close"})
    for client in (ann, back, cy):
        closing = await client.expect("breakouts", lambda m: "closing_at" in m["state"])
        assert closing["state"]["open"] is True
    for client in (ann, back, cy):
        home = await in_room(client, room, within=30)
        assert "breakout" not in home and names(home) == ["Ann", "Bob", "Cy", "Host"]
    done = await cy.expect("breakouts", lambda m: m["state"]["open"] is False, within=15)
    assert done["state"] == {"main": room, "open": False}
    # Back in the main room: chat from B reaches everyone on A again.
    await cy.chat("all together")
    for client in (host, ann, back):
        await client.expect("chat", lambda m: m["message"]["text"] == "all together")


async def test_a_duration_set_on_one_node_ends_the_breakouts_once_on_both(
    nodes: tuple[ParleyProcess, ParleyProcess], clients: Clients
) -> None:
    """A host on B opens them with a duration; node A (the lowest id among the meeting's
    nodes) brings everyone back when it ends, and each returns exactly once."""
    a_node, b_node = nodes
    room = unique_room("breakouts-timer")
    host = await clients.join(b_node, room, "Host")
    ann = await clients.join(a_node, room, "Ann")
    bob = await clients.join(b_node, room, "Bob")
    await host.expect("participant-joined", lambda m: m["participant"]["id"] == bob.id)
    await host.send({"type": "breakouts-open", "names": ["Only"], "duration": 10})
    assert "ends_at" in (await in_room(ann, f"{room}~1"))["breakout"]
    await in_room(bob, f"{room}~1")
    for client in (ann, bob):
        home = await in_room(client, room, within=30)
        assert names(home) == ["Ann", "Bob", "Host"]
    await host.expect("breakouts", lambda m: m["state"]["open"] is False)
    await ann.roundtrip()
    await bob.roundtrip()
    for client in (ann, bob):
        assert [w["room"]["name"] for w in client.of_type("welcome")] == [
            room,
            f"{room}~1",
            room,
        ]


async def test_when_the_node_acting_for_the_meeting_dies_another_takes_over_its_timer(
    cluster: Cluster, nodes: tuple[ParleyProcess, ParleyProcess], clients: Clients
) -> None:
    """Node "AA" (the lowest id among this meeting's nodes) would bring everyone back; it
    is killed. Once its participant is reaped, node B acts: the duration still ends."""
    _, b_node = nodes
    (aa_node,) = cluster.start("AA")
    room = unique_room("breakouts-takeover")
    host = await clients.join(b_node, room, "Host")
    ann = await clients.join(aa_node, room, "Ann")
    bob = await clients.join(b_node, room, "Bob")
    await host.expect("participant-joined", lambda m: m["participant"]["id"] == bob.id)
    await host.send({"type": "breakouts-open", "names": ["Only"], "duration": 10})
    await in_room(ann, f"{room}~1")
    await in_room(bob, f"{room}~1")
    aa_node.kill()
    home = await in_room(bob, room, within=60)
    assert names(home) == ["Bob", "Host"]  # Ann's node is gone: she was reaped
    done = await host.expect("breakouts", lambda m: m["state"]["open"] is False)
    assert done["state"] == {"main": room, "open": False}


@pytest.fixture
def loopback_only() -> Iterator[None]:
    host_addresses.restrict_host_addresses(["127.0.0.1"])  # this process's aiortc peers
    yield
    host_addresses.restrict_host_addresses(None)


async def test_media_in_a_breakout_meets_across_nodes(
    cluster: Cluster, clients: Clients, loopback_only: None
) -> None:
    """Ada (through node SA) and Bob (through SB) are moved into one breakout, then publish
    and subscribe there: the breakout's media meets on one node's SFU, as a room's does."""
    a, b = cluster.start(
        "SA", "SB", args=("--media", "sfu", "--media-ip", "127.0.0.1", "--no-rate-limits")
    )
    room = unique_room("breakouts-sfu")
    host = await clients.join(a, room, "Host")
    ada_ws = await clients.join(a, room, "Ada")
    bob_ws = await clients.join(b, room, "Bob")
    await host.expect("participant-joined", lambda m: m["participant"]["id"] == bob_ws.id)
    await host.send({"type": "breakouts-open", "names": ["Pair"]})  # auto: Ada and Bob
    await in_room(ada_ws, f"{room}~1")
    await in_room(bob_ws, f"{room}~1")
    people = [Person("Ada", ada_ws), Person("Bob", bob_ws)]
    try:
        ada, bob = people
        await ada.publish()
        await bob.publish()
        await asyncio.gather(ada.subscribe(), bob.subscribe())
        await wait_for(
            lambda: ada.decoded(bob.id) >= 10 and bob.decoded(ada.id) >= 10,
            WAIT,
            lambda: str({p.name: p.frames for p in people}),
        )
    finally:
        for p in people:
            await p.close()
