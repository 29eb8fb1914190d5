"""Webhooks from a cluster: one event log for all nodes (ids strictly increasing in the
order of commits, whatever node made them), one node delivering to a receiver at a
time, and another taking over when that node dies."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator

import pytest

from tests.cluster.harness import Cluster, unique_room
from tests.support.webhook_receiver import Receiver
from tests.support.ws_client import Clients

pytestmark = pytest.mark.timeout(180)

SECRET = "a-cluster-webhook-secret"


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rx = await Receiver(SECRET).start()
    yield rx
    await rx.close()


async def test_one_ordered_log_across_nodes_and_a_survivor_takes_over(
    cluster: Cluster, receiver: Receiver, clients: Clients
) -> None:
    room = unique_room("hooks")
    hooks = ("--webhook-url", receiver.url, "--webhook-secret", SECRET, "--media", "mesh")
    a = cluster.node("hook-a", *hooks).wait_ready()
    ada = await clients.join(a, room, "Ada")

    def mine(events: list[dict[str, object]]) -> list[dict[str, object]]:
        """This room's events (the database is shared), each id once: delivery is at
        least once (an event sent just before a SIGKILL is sent again), and receivers
        de-duplicate by id."""
        unique = {e["id"]: e for e in events if e["room"] == room}
        return [unique[i] for i in sorted(unique)]  # type: ignore[type-var]

    def names(events: list[dict[str, object]]) -> list[str]:
        return [
            e["data"]["participant"]["name"]  # type: ignore[index]
            for e in mine(events)
            if e["type"] == "participant.joined"
        ]

    await receiver.wait_for(lambda evs: names(evs) == ["Ada"], "Ada's join, from node a")
    # Node a holds the receiver's lease; node b starts and stands by.
    b = cluster.node("hook-b", *hooks).wait_ready()
    await clients.join(b, room, "Bob")
    await clients.join(a, room, "Cy")
    await clients.join(b, room, "Dee")
    await receiver.wait_for(lambda evs: names(evs) == ["Ada", "Bob", "Cy", "Dee"], "four joins")
    # Node a dies: after its lease runs out, node b delivers (the same log, same cursor).
    assert a.proc is not None
    a.proc.send_signal(signal.SIGKILL)
    assert await asyncio.to_thread(a.proc.wait, 15) == -signal.SIGKILL
    await clients.join(b, room, "Eve")
    events = await receiver.wait_for(
        lambda evs: "Eve" in names(evs), "Eve's join, delivered by node b", within=60
    )
    assert names(events) == ["Ada", "Bob", "Cy", "Dee", "Eve"]
    ids = [e["id"] for e in receiver.accepted]
    # In order; an id seen again is only ever the resend of the last one before the kill.
    assert all(x <= y for x, y in zip(ids, ids[1:], strict=False)), ids
    assert len(ids) - len(set(ids)) <= 1, ids
    for r in receiver.requests:
        assert receiver.signed(r)
    del ada
