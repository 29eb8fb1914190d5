"""A server killed (SIGKILL) while it records: started again on the same data dir, it
finishes that recording (listing: finished, "interrupted", durations; the files read by
ffprobe; ``recording.finished`` in the event log)."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest

from tests.sfu.sfu_media import Person
from tests.support.ws_client import Clients

from .test_recording_server import _server, ffprobe, finished, request

pytestmark = pytest.mark.timeout(150)


async def test_a_server_killed_while_recording_finishes_it_when_restarted(
    tmp_path: Path, clients: Clients, loopback_only: None, room: str
) -> None:
    srv = _server(tmp_path, "sfu")
    srv.start()
    try:
        ada_ws = await clients.join(srv, room, "Ada")
        ada = Person("Ada", ada_ws)
        try:
            await ada.publish()
            await ada_ws.send({"type": "record", "action": "start", "ref": "r1"})
            await ada_ws.expect("room-updated", lambda m: m["recording"] is True)
            listing = f"{srv.url}/api/v1/recordings?room={room}"
            for _ in range(150):  # both files under way, a few seconds of each
                _, body, _ = await request("GET", listing)
                files = body["recordings"][0]["files"] if body["recordings"] else []
                durations = [f.get("duration") or 0 for f in files if f.get("kind")]
                if len(durations) == 2 and min(durations) > 2.5:
                    break
                await asyncio.sleep(0.2)
            else:
                raise AssertionError(f"the recording did not get going: {body}")
            rec_id = body["recordings"][0]["id"]
            assert body["recordings"][0]["stop_reason"] is None
            srv.stop(signal.SIGKILL)
        finally:
            await ada.close()
        srv.start()

        entry = await finished(srv, room, rec_id)
        assert entry["stop_reason"] == "interrupted" and entry["stopped_at"] is not None
        media = [f for f in entry["files"] if f.get("kind")]
        assert {f["kind"] for f in media} == {"audio", "video"}
        for f in media:
            assert f["duration"] > 2.5, f
            status, _, data = await request(
                "GET", f"{srv.url}/api/v1/recordings/{rec_id}/files/{f['name']}"
            )
            assert status == 200 and len(data) == f["size"]
            path = tmp_path / f["name"]
            path.write_bytes(data)
            probe = ffprobe(path)
            assert probe["streams"][0]["codec_name"] == ("opus" if f["kind"] == "audio" else "vp8")
            assert float(probe["format"]["duration"]) == pytest.approx(f["duration"], abs=0.5)
        done: list = []
        for _ in range(50):  # the event log is written in the background
            _, log, _ = await request("GET", f"{srv.url}/api/v1/events?limit=1000")
            done = [e for e in log["events"] if e["type"] == "recording.finished"]
            if done:
                break
            await asyncio.sleep(0.2)
        assert [(e["room"], e["data"]["id"], e["data"]["reason"]) for e in done] == [
            (room, rec_id, "interrupted")
        ]
    finally:
        srv.stop()
