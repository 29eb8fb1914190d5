"""Recording through the real server: ``parley serve --media sfu`` as a subprocess,
WebSocket clients for the protocol, aiortc peers publishing VP8 + Opus, the REST API,
and the files checked with ffprobe."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.sfu.sfu_media import Person
from tests.support.media_files import ffprobe
from tests.support.parley_process import ParleyProcess as ServerProc
from tests.support.processes import free_port
from tests.support.ws_client import Clients, fetch_json

pytestmark = pytest.mark.timeout(120)

ADMIN = "recording-admin-token-0123456789"


def _server(base: Path, media: str) -> ServerProc:
    args = ("--media", media, "--no-rate-limits", "--admin-token", ADMIN)
    if media == "sfu":
        args += ("--media-ip", "127.0.0.1")
    return ServerProc(
        port=free_port(), data_dir=base / "data", args=args, log_path=base / "server.log"
    )


@pytest.fixture(scope="module")
def sfu_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProc]:
    srv = _server(tmp_path_factory.mktemp("rec-sfu"), "sfu")
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


async def request(
    method: str, url: str, token: str | None = ADMIN, **kw: Any
) -> tuple[int, Any, bytes]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as s:
        async with s.request(method, url, headers=headers, **kw) as r:
            body = await r.read()
            try:
                return r.status, json.loads(body), body
            except ValueError:
                return r.status, None, body


async def finished(srv: ServerProc, room: str, rec_id: str) -> dict[str, Any]:
    """The listing entry of ``rec_id`` once its files are complete."""
    for _ in range(100):
        status, body, _ = await request("GET", f"{srv.url}/api/v1/recordings?room={room}")
        assert status == 200, body
        entry = next((r for r in body["recordings"] if r["id"] == rec_id), None)
        if entry is not None and entry["stop_reason"]:
            return dict(entry)
        await asyncio.sleep(0.2)
    raise AssertionError(f"recording {rec_id} did not finish")


async def test_a_host_records_two_participants(
    sfu_server: ServerProc, clients: Clients, loopback_only: None, room: str, tmp_path: Path
) -> None:
    srv = sfu_server
    ada_ws = await clients.join(srv, room, "Ada")  # the first in is the host
    bob_ws = await clients.join(srv, room, "Bob")
    assert ada_ws.welcome is not None and ada_ws.welcome["room"]["recording"] is False
    people = [Person("Ada", ada_ws), Person("Bob", bob_ws)]
    try:
        await asyncio.gather(*(p.publish() for p in people))
        await asyncio.sleep(1.0)  # media flowing before the recording starts
        await ada_ws.send({"type": "record", "action": "start", "ref": "r1"})
        updated = await bob_ws.expect("room-updated", lambda m: m["recording"] is True)
        assert updated["settings"]["max_participants"] > 0
        line = await bob_ws.expect("chat", lambda m: m["message"]["system"])
        assert line["message"]["text"] == "Ada started recording the meeting"
        # the pre-join page of the room says so; a late joiner's welcome too
        status, info = await fetch_json(f"{srv.url}/api/v1/rooms/{room}")
        assert status == 200 and info["recording"] is True
        await bob_ws.chat("hello, recording")
        await bob_ws.send({"type": "rename", "name": "Robert"})
        cy_ws = await clients.join(srv, room, "Cy")
        assert cy_ws.welcome is not None and cy_ws.welcome["room"]["recording"] is True
        await asyncio.sleep(6.0)  # > 3 s of each track even if a busy machine starts one late
        # starting twice, or by someone who is not a host: clear errors, nothing changes
        await ada_ws.send({"type": "record", "action": "start", "ref": "r2"})
        assert (await ada_ws.error("already_recording"))["ref"] == "r2"
        await bob_ws.send({"type": "record", "action": "stop", "ref": "r3"})
        assert (await bob_ws.error("forbidden"))["ref"] == "r3"
        await ada_ws.send({"type": "record", "action": "stop", "ref": "r4"})
        await bob_ws.expect("room-updated", lambda m: m["recording"] is False)
        await ada_ws.send({"type": "record", "action": "stop", "ref": "r5"})
        assert (await ada_ws.error("not_recording"))["ref"] == "r5"
    finally:
        for p in people:
            await p.close()

    status, body, _ = await request("GET", f"{srv.url}/api/v1/recordings?room={room}")
    assert status == 200 and len(body["recordings"]) == 1
    entry = await finished(srv, room, body["recordings"][0]["id"])
    assert entry["stop_reason"] == "stopped"
    rec_id = entry["id"]
    # a host downloads with the resume token the client holds
    base = f"{srv.url}/api/v1/recordings/{rec_id}/files"
    status, manifest, _ = await request("GET", f"{base}/manifest.json", ada_ws.resume_token)
    assert status == 200, manifest
    ada, bob = ada_ws.id, bob_ws.id
    tracks = {(t["participant"], t["track"]): t for t in manifest["tracks"]}
    assert set(tracks) == {(ada, "mic"), (ada, "camera"), (bob, "mic"), (bob, "camera")}
    for (_pid, track), t in tracks.items():
        status, _, data = await request("GET", f"{base}/{t['file']}", ada_ws.resume_token)
        assert status == 200
        path = tmp_path / t["file"]
        path.write_bytes(data)
        probe = ffprobe(path)
        stream = probe["streams"][0]
        assert stream["codec_name"] == ("opus" if track == "mic" else "vp8"), probe
        duration = float(probe["format"]["duration"])
        assert 3.0 < duration < 30.0, (t["file"], duration)
        assert t["duration"] == pytest.approx(duration, abs=0.5)
        assert t["clock"] == "rtcp-sr", t  # aligned through the sender reports
        size = next(f for f in entry["files"] if f["name"] == t["file"])["size"]
        assert size == len(data)
    # the timeline: who was there, the chat, the rename, the late joiner
    events = manifest["events"]
    kinds = {(e["type"], e.get("participant")) for e in events}
    assert {("join", ada), ("join", bob), ("join", cy_ws.id), ("rename", bob)} <= kinds
    assert any(e["type"] == "chat" and e["text"] == "hello, recording" for e in events)
    assert manifest["participants"][bob] == "Robert"
    assert manifest["started_by"]["name"] == "Ada" and manifest["stop_reason"] == "stopped"
    # audio and video of one participant start within the same moment (one clock)
    starts = {k: t["start"] for k, t in tracks.items()}
    assert abs(starts[(ada, "mic")] - starts[(ada, "camera")]) < 1.0


async def test_the_rest_api_refuses_what_it_must(
    sfu_server: ServerProc, clients: Clients, room: str
) -> None:
    srv = sfu_server
    url = f"{srv.url}/api/v1/rooms/{room}/recording"
    assert (await request("POST", url, None, json={"action": "start"}))[0] == 401
    assert (await request("POST", url, "wrong-token", json={"action": "start"}))[0] == 401
    status, body, _ = await request("POST", url, json={"action": "start"})
    assert status == 404 and body["error"]["code"] == "not_found"  # no meeting there
    host = await clients.join(srv, room, "Ada")
    bob = await clients.join(srv, room, "Bob")
    assert (await request("POST", url, json={"action": "pause"}))[0] == 400
    assert (await request("POST", url, json={"nope": 1}))[0] == 400
    status, body, _ = await request("POST", url, json={"action": "stop"})
    assert status == 409 and body["error"]["code"] == "not_recording"
    status, body, _ = await request("POST", url, json={"action": "start"})
    assert status == 200 and body["id"]
    rec_id = body["id"]
    await host.expect("room-updated", lambda m: m["recording"] is True)
    line = await host.expect("chat", lambda m: m["message"]["system"])
    assert line["message"]["text"] == "An administrator started recording the meeting"
    status, body, _ = await request("POST", url, json={"action": "start"})
    assert status == 409 and body["error"]["code"] == "already_recording"
    status, body, _ = await request("POST", url, json={"action": "stop"})
    assert status == 200 and body["id"] == rec_id
    await finished(srv, room, rec_id)
    listing = f"{srv.url}/api/v1/recordings?room={room}"
    files = f"{srv.url}/api/v1/recordings/{rec_id}/files"
    # listing and files: not without a token, not for a participant who is not a host
    assert (await request("GET", listing, None))[0] == 401
    assert (await request("GET", listing, bob.resume_token))[0] == 401
    assert (await request("GET", listing, host.resume_token))[0] == 200
    assert (await request("GET", f"{srv.url}/api/v1/recordings", host.resume_token))[0] == 401
    assert (await request("GET", f"{files}/manifest.json", bob.resume_token))[0] == 401
    assert (await request("GET", f"{files}/manifest.json", "wrong"))[0] == 401
    assert (await request("GET", f"{files}/manifest.json"))[0] == 200
    # path traversal, in every spelling: 404, never a file outside the recording
    for name in ("..%2F..%2Fparley.db", "%2E%2E", ".manifest.json", "..", "manifest.json.tmp",
                 "..%5Csecret", "%2Fetc%2Fpasswd"):  # fmt: skip
        status, _, data = await request("GET", f"{files}/{name}")
        assert status in (400, 404), (name, status)
        assert b"SQLite" not in data
    bad_id = f"{srv.url}/api/v1/recordings/..%2F..%2F/files/secret"
    assert (await request("GET", bad_id))[0] in (400, 404)


async def test_a_mesh_server_says_why_it_cannot_record(
    tmp_path: Path, clients: Clients, room: str
) -> None:
    srv = _server(tmp_path, "mesh")
    srv.start()
    try:
        host = await clients.join(srv, room, "Ada")
        await host.send({"type": "record", "action": "start", "ref": "m1"})
        error = await host.error("recording_unavailable")
        assert "mesh" in error["message"] and error["ref"] == "m1"
        url = f"{srv.url}/api/v1/rooms/{room}/recording"
        status, body, _ = await request("POST", url, json={"action": "start"})
        assert status == 501 and body["error"]["code"] == "recording_unavailable"
    finally:
        srv.stop()


async def test_the_sdk_starts_and_stops_a_recording(sfu_server: ServerProc, room: str) -> None:
    from parley.client import RequestRefused, connect, events

    async def recording_state(meeting: Any) -> bool:
        async def first() -> bool:
            async for event in meeting:
                if isinstance(event, events.RoomUpdated):
                    return bool(event.recording)
            raise AssertionError("the meeting ended")

        return await asyncio.wait_for(first(), 10)

    async with connect(sfu_server.url, room=room, name="Recorder") as bot:  # the host
        await bot.record("start")
        assert await recording_state(bot) is True
        with pytest.raises(RequestRefused) as refused:
            await bot.record("start")
        assert refused.value.code == "already_recording"
        await bot.record("stop")
        assert await recording_state(bot) is False
