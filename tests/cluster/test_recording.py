"""Recording in a cluster: the node that forwards the room's media writes the files.

Nodes A and B run ``--media sfu`` on one Redis and one PostgreSQL.  Bob (on B) publishes
first, so B is the room's media owner; Ada, the host, is on A.  Ada starts the recording
through A: everyone on both nodes sees it (``room-updated``, a late joiner's ``welcome``,
the pre-join page of either node), B writes the files, the operator stops it through A,
the recording is listed and downloaded through A (which asks B), and the files are
checked with ffprobe.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import av
import pytest
import redis.asyncio

from parley.sfu.aiortc import host_addresses
from tests.cluster.harness import Cluster, unique_room
from tests.sfu.sfu_media import Person
from tests.support.media_files import ffprobe
from tests.support.parley_process import ParleyProcess
from tests.support.ws_client import Clients, fetch_json

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(150)]

ADMIN = "cluster-recording-admin-token-0123456789"


@pytest.fixture(scope="module")
def rec_nodes(cluster: Cluster) -> tuple[ParleyProcess, ParleyProcess]:
    args = ("--media", "sfu", "--media-ip", "127.0.0.1", "--no-rate-limits")
    a, b = cluster.start("RA", "RB", args=(*args, "--admin-token", ADMIN))
    return a, b


@pytest.fixture
def loopback_only() -> Iterator[None]:
    host_addresses.restrict_host_addresses(["127.0.0.1"])
    yield
    host_addresses.restrict_host_addresses(None)


async def request(method: str, url: str, **kw: Any) -> tuple[int, Any, bytes]:
    headers = {"Authorization": f"Bearer {ADMIN}"}
    async with aiohttp.ClientSession() as s, s.request(method, url, headers=headers, **kw) as r:
        body = await r.read()
        try:
            return r.status, json.loads(body), body
        except ValueError:
            return r.status, None, body


async def finished(node: ParleyProcess, room: str) -> dict[str, Any]:
    """The node's one recording of ``room``, once its files are complete."""
    for _ in range(150):
        status, body, _ = await request("GET", f"{node.url}/api/v1/recordings?room={room}")
        assert status == 200, body
        if body["recordings"] and body["recordings"][0]["stop_reason"]:
            assert len(body["recordings"]) == 1, body
            return dict(body["recordings"][0])
        await asyncio.sleep(0.2)
    raise AssertionError(f"no finished recording of {room} on {node.node_id}")


async def test_host_on_one_node_records_a_room_whose_media_is_on_the_other(
    rec_nodes: tuple[ParleyProcess, ParleyProcess], clients: Clients, loopback_only: None
) -> None:
    a, b = rec_nodes
    room = unique_room("rec")
    ada_ws = await clients.join(a, room, "Ada")  # the first in: the host
    bob_ws = await clients.join(b, room, "Bob")
    assert ada_ws.welcome is not None and ada_ws.welcome["room"]["recording"] is False
    people = [Person("Bob", bob_ws), Person("Ada", ada_ws)]
    try:
        await people[0].publish()  # the first SFU signal: through B, so B forwards the room
        await people[1].publish()  # Ada's media goes to B too
        await asyncio.sleep(1.0)

        await ada_ws.send({"type": "record", "action": "start", "ref": "r1"})
        for ws in (ada_ws, bob_ws):  # both nodes' participants are told
            await ws.expect("room-updated", lambda m: m["recording"] is True)
        line = await bob_ws.expect("chat", lambda m: m["message"]["system"])
        assert line["message"]["text"] == "Ada started recording the meeting"
        # A late joiner on either node is told in its welcome; both pre-join pages say so.
        cy_ws = await clients.join(b, room, "Cy")
        assert cy_ws.welcome is not None and cy_ws.welcome["room"]["recording"] is True
        di_ws = await clients.join(a, room, "Di")
        assert di_ws.welcome is not None and di_ws.welcome["room"]["recording"] is True
        for node in (a, b):
            status, info = await fetch_json(f"{node.url}/api/v1/rooms/{room}")
            assert status == 200 and info["recording"] is True, (node.node_id, info)
        # Starting twice through the other node: the same clear error as on one server.
        status, body, _ = await request(
            "POST", f"{b.url}/api/v1/rooms/{room}/recording", json={"action": "start"}
        )
        assert status == 409 and body["error"]["code"] == "already_recording", body
        await bob_ws.chat("hello from B, recorded on B")
        await ada_ws.chat("hello from A, recorded on B")
        await asyncio.sleep(4.0)

        # The operator stops it through A (which writes nothing).
        status, body, _ = await request(
            "POST", f"{a.url}/api/v1/rooms/{room}/recording", json={"action": "stop"}
        )
        assert status == 200 and body["recording"] is False, body
        for ws in (bob_ws, cy_ws, di_ws):
            await ws.expect("room-updated", lambda m: m["recording"] is False)
        status, info = await fetch_json(f"{b.url}/api/v1/rooms/{room}")
        assert info["recording"] is False
    finally:
        for p in people:
            await p.close()

    entry = await finished(b, room)  # B, the media owner, wrote it
    assert entry["stop_reason"] == "stopped"
    rec_dir = b.data_dir / "recordings" / room / entry["id"]
    assert not (a.data_dir / "recordings" / room).exists()  # A wrote nothing
    # Listed and downloaded through A all the same: A asks B.
    status, body, _ = await request("GET", f"{a.url}/api/v1/recordings?room={room}")
    assert status == 200 and body["recordings"] == [entry], body
    for name in ("manifest.json", entry["files"][0]["name"]):
        url = f"{a.url}/api/v1/recordings/{entry['id']}/files/{name}"
        status, _, data = await request("GET", url)
        assert status == 200 and data == (rec_dir / name).read_bytes(), (name, status)
    status, _, _ = await request("GET", f"{a.url}/api/v1/recordings/{entry['id']}/files/nope.webm")
    assert status == 404
    async with (
        aiohttp.ClientSession() as s,
        s.get(f"{a.url}/api/v1/recordings?room={room}") as r,  # no token: A asks nobody
    ):
        assert r.status == 401
    manifest = json.loads((rec_dir / "manifest.json").read_text())
    tracks = {(t["participant"], t["track"]): t for t in manifest["tracks"]}
    ada, bob = ada_ws.id, bob_ws.id
    assert set(tracks) == {(ada, "mic"), (ada, "camera"), (bob, "mic"), (bob, "camera")}
    # Joins through either node are on the timeline, once each (Di joined through A).
    joins = [e["name"] for e in manifest["events"] if e["type"] == "join"]
    assert sorted(joins) == ["Ada", "Bob", "Cy", "Di"], joins
    chat = [e for e in manifest["events"] if e["type"] == "chat" and not e.get("system")]
    assert sorted(e["text"] for e in chat) == [
        "hello from A, recorded on B",
        "hello from B, recorded on B",
    ]
    for (_pid, track), t in tracks.items():
        probe = ffprobe(rec_dir / t["file"])
        (stream,) = probe["streams"]
        assert stream["codec_name"] == ("opus" if track == "mic" else "vp8"), stream
        assert float(probe["format"]["duration"]) > 2.0, probe["format"]


async def test_the_media_owner_dies_while_recording(
    cluster: Cluster, clients: Clients, loopback_only: None
) -> None:
    """D records; D is killed; when the room's media moves to C the recording is marked
    finished there (everyone is told), and what D wrote still plays."""
    args = ("--media", "sfu", "--media-ip", "127.0.0.1", "--no-rate-limits")
    c, d = cluster.start("RC", "RD", args=(*args, "--admin-token", ADMIN))
    room = unique_room("rec-dies")
    ada_ws = await clients.join(c, room, "Ada")
    bob_ws = await clients.join(d, room, "Bob")
    bob, ada = Person("Bob", bob_ws), Person("Ada", ada_ws)
    try:
        await bob.publish()  # D forwards the room
        await ada.publish()
        status, body, _ = await request(
            "POST", f"{c.url}/api/v1/rooms/{room}/recording", json={"action": "start"}
        )
        assert status == 200, body
        rec_dir = d.data_dir / "recordings" / room / body["id"]
        await asyncio.sleep(7.0)  # files and a manifest written (it is rewritten every 5 s)
        d.kill()
        await bob.close()
        # Once D counts as stopped, Ada's next publish makes C the media owner.
        r = redis.asyncio.Redis.from_url(cluster.redis.url)
        try:
            for _ in range(200):
                if not await r.exists("parley:node:RD"):
                    break
                await asyncio.sleep(0.1)
        finally:
            await r.aclose()
        assert ada.pub is not None
        await ada.pub.close()
        await ada.publish()
        await ada_ws.expect("room-updated", lambda m: m["recording"] is False)
        line = await ada_ws.expect("chat", lambda m: m["message"]["text"].startswith("Recording"))
        assert "went away" in line["message"]["text"]
        status, info = await fetch_json(f"{c.url}/api/v1/rooms/{room}")
        assert info["recording"] is False
    finally:
        await bob.close()
        await ada.close()
    # What D wrote before it died plays: both of Ada's and Bob's tracks.
    manifest = json.loads((rec_dir / "manifest.json").read_text())
    assert len(manifest["tracks"]) == 4, manifest["tracks"]
    for t in manifest["tracks"]:
        # No index (D never closed it), but every frame up to its last cluster decodes.
        (stream,) = ffprobe(rec_dir / t["file"])["streams"]
        assert stream["codec_name"] == ("opus" if t["track"] == "mic" else "vp8"), stream
        assert decoded_until(rec_dir / t["file"]) > 1.0, t


def decoded_until(path: Path) -> float:
    """The time of the last frame PyAV decodes (it raises on a corrupt one)."""
    last = 0.0
    with av.open(str(path)) as container:
        for frame in container.decode(container.streams[0]):
            last = float(frame.time or 0.0)
    return last
