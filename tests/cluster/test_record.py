"""The meeting record in a cluster: a deletion on one node reaches the other node's clients;
search and export through either node read the one PostgreSQL store."""

from __future__ import annotations

import pytest

from tests.cluster.harness import Cluster, get_json, unique_room
from tests.support.parley_process import ParleyProcess
from tests.support.ws_client import Clients

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def nodes(cluster: Cluster) -> tuple[ParleyProcess, ParleyProcess]:
    return cluster.start("A", "B")


async def test_deletion_on_a_reaches_clients_on_b_and_the_record(
    nodes: tuple[ParleyProcess, ParleyProcess], clients: Clients
) -> None:
    a_node, b_node = nodes
    room = unique_room("record")
    ada = await clients.join(a_node, room, "Ada")
    bob = await clients.join(b_node, room, "Bob")
    ack = await ada.chat("the vendor contract number is 4711")
    await bob.expect("chat", lambda m: m["message"]["id"] == ack["id"])
    status, body = await get_json(b_node.url, f"/api/v1/rooms/{room}/messages/search?q=vendor")
    assert status == 200 and [m["id"] for m in body["messages"]] == [ack["id"]]

    await ada.send({"type": "delete-message", "id": ack["id"]})
    gone = await bob.expect("message-deleted")
    assert gone == {"type": "message-deleted", "id": ack["id"], "room": room, "by": ada.id}
    await ada.expect("message-deleted")
    for node in nodes:
        status, body = await get_json(node.url, f"/api/v1/rooms/{room}/messages/search?q=vendor")
        assert status == 200 and body["messages"] == []
    status, body = await get_json(a_node.url, f"/api/v1/rooms/{room}/export?format=json")
    assert status == 200
    texts = [m["text"] for m in body["messages"]]
    assert "the vendor contract number is 4711" not in texts
    assert {"Ada joined", "Bob joined"} <= set(texts)
