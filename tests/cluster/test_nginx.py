"""Clients reach two nodes through nginx; the node a client landed on dies; it resumes.

nginx runs from a config generated here (upstream of both nodes, least_conn,
WebSocket upgrade headers, ``proxy_next_upstream error``), not the deploy/ file.
"""

from __future__ import annotations

import pytest

from tests.cluster.harness import Cluster, NginxProc, get_json, unique_room
from tests.support.parley_process import ParleyProcess
from tests.support.processes import free_port, require_binary
from tests.support.ws_client import Client, Clients

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def front(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    require_binary("nginx")
    a, b = cluster.start("A", "B")
    nginx = NginxProc(
        prefix=tmp_path_factory.mktemp("nginx"), port=free_port(), upstreams=[a.port, b.port]
    ).start()
    try:
        yield nginx, {a.port: a, b.port: b}
    finally:
        nginx.stop()


def node_of(client: Client, by_port: dict[int, ParleyProcess]) -> ParleyProcess:
    assert client.upstream, "nginx did not say which node answered"
    # $upstream_addr lists every node tried, the last one answered: "127.0.0.1:1, 127.0.0.1:2".
    last = client.upstream.split(",")[-1].strip()
    return by_port[int(last.rsplit(":", 1)[1])]


async def test_through_nginx_kill_landing_node_and_resume_on_survivor(
    front: tuple[NginxProc, dict[int, ParleyProcess]], clients: Clients
) -> None:
    nginx, by_port = front
    room = unique_room("nginx")
    # Join through nginx until both nodes serve someone (least_conn alternates).
    joined: list[Client] = []
    for i in range(6):
        joined.append(await clients.join(nginx, room, f"P{i}"))
        if len({node_of(c, by_port).node_id for c in joined}) == 2:
            break
    landed = {c.id: node_of(c, by_port) for c in joined}
    assert len({n.node_id for n in landed.values()}) == 2, nginx.error_log()
    victim_client = joined[0]
    victim = landed[victim_client.id]
    observer = next(c for c in joined if landed[c.id] is not victim)
    survivor = landed[observer.id]

    # The room, its participants and chat are shared through nginx.
    await victim_client.chat("before the crash")
    await observer.expect("chat", lambda m: m["message"]["text"] == "before the crash")
    status, info = await get_json(nginx.url, f"/api/v1/rooms/{room}")
    assert status == 200 and info["participant_count"] == len(joined), info

    victim.kill()
    await victim_client.wait_closed(5)
    # Reconnect through nginx: the dead node refuses, nginx passes it to the survivor.
    again = await clients.resume(nginx, victim_client, room)
    assert node_of(again, by_port) is survivor, again.upstream
    w = again.welcome
    assert w is not None and w["resumed"] is True and w["id"] == victim_client.id, w
    assert "before the crash" in [m["text"] for m in w["history"]]
    assert {p["id"] for p in w["participants"]} >= {victim_client.id, observer.id}

    await again.chat("after the crash")
    await observer.expect("chat", lambda m: m["message"]["text"] == "after the crash")
    assert victim_client.id not in observer.left_ids()
    assert victim_client.id not in observer.joined_ids()  # it joined first: never announced
    # New joins through nginx keep working, on the survivor.
    late = await clients.join(nginx, room, "Late")
    assert node_of(late, by_port) is survivor
    await again.expect("participant-joined", lambda m: m["participant"]["id"] == late.id)
    status, health = await get_json(nginx.url, "/healthz")
    assert status == 200 and health["node"] == survivor.node_id
