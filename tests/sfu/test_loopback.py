"""End to end on 127.0.0.1: aiortc clients publish VP8 + Opus through the SFU and two
aiortc subscribers receive and DECODE them.  All ICE candidates are 127.0.0.1
(``restrict_host_addresses``); no STUN server, no other interface, no root needed.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import av
import pytest
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.mediastreams import AudioStreamTrack

from parley.sfu.peer import SfuRoom
from tests.sfu.sfu_media import SmallVideo

pytestmark = pytest.mark.timeout(60)


def client_pc() -> RTCPeerConnection:
    return RTCPeerConnection(RTCConfiguration(iceServers=[]))


async def publish(room: SfuRoom, pid: str) -> RTCPeerConnection:
    pc = client_pc()
    pc.addTransceiver(AudioStreamTrack(), direction="sendonly")
    pc.addTransceiver(SmallVideo(), direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    labels = {t.mid: ("mic" if t.kind == "audio" else "camera") for t in pc.getTransceivers()}
    replies = await room.handle_signal(
        pid, {"sfu": "publish", "sdp": pc.localDescription.sdp, "labels": labels}
    )
    assert [r["sfu"] for r in replies] == ["publish-answer"], replies
    assert "127.0.0.1" in replies[0]["sdp"]
    for line in replies[0]["sdp"].splitlines():  # only loopback candidates
        if line.startswith("a=candidate"):
            assert line.split()[4].startswith("127."), line
    await pc.setRemoteDescription(RTCSessionDescription(replies[0]["sdp"], "answer"))
    return pc


class Viewer:
    def __init__(self) -> None:
        self.pc = client_pc()
        self.frames: dict[str, int] = {"audio": 0, "video": 0}
        self.sizes: set[tuple[int, int]] = set()
        self.tasks: list[asyncio.Task[None]] = []

        @self.pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            self.tasks.append(asyncio.ensure_future(self._consume(track)))

    async def _consume(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                frame = await track.recv()
                self.frames[track.kind] += 1
                if isinstance(frame, av.VideoFrame):
                    self.sizes.add((frame.width, frame.height))
        except Exception:
            return

    async def join(self, room: SfuRoom, pid: str) -> None:
        [offer] = await room.handle_signal(pid, {"sfu": "subscribe"})
        assert offer["sfu"] == "subscribe-offer"
        await self.pc.setRemoteDescription(RTCSessionDescription(offer["sdp"], "offer"))
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        assert (
            await room.handle_signal(
                pid, {"sfu": "subscribe-answer", "sdp": self.pc.localDescription.sdp}
            )
            == []
        )

    async def close(self) -> None:
        for t in self.tasks:
            t.cancel()
        await self.pc.close()


async def wait_for(cond: Any, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.05)


async def test_two_subscribers_decode_forwarded_vp8_and_opus(loopback_only: None) -> None:
    signals: list[tuple[str, dict[str, Any]]] = []
    tracks: list[tuple[str, list[dict[str, Any]]]] = []
    room = SfuRoom(
        lambda pid, p: signals.append((pid, p)),
        last_n=2,
        audio_slots=2,
        on_tracks=lambda pid, t: tracks.append((pid, t)),
    )
    viewers = [Viewer(), Viewer()]
    pub_pc = None
    try:
        pub_pc = await publish(room, "alice")
        await viewers[0].join(room, "bob")
        await wait_for(lambda: viewers[0].frames["video"] >= 5, 20)
        await viewers[1].join(room, "carol")  # a late joiner: needs a key frame (PLI)
        await wait_for(
            lambda: all(v.frames["video"] >= 15 and v.frames["audio"] >= 20 for v in viewers), 20
        )
        before = [dict(v.frames) for v in viewers]
        await asyncio.sleep(0.5)
        for v, b in zip(viewers, before, strict=True):
            assert v.frames["video"] > b["video"] and v.frames["audio"] > b["audio"]
            assert v.sizes == {(160, 120)}
        # the publisher's tracks were announced, and each viewer got a layout
        assert tracks and tracks[0][0] == "alice"
        assert {t["track"] for t in tracks[0][1]} == {"mic", "camera"}
        layouts = {pid: p["slots"] for pid, p in signals if p["sfu"] == "layout"}
        assert set(layouts) == {"bob", "carol"}
        for slots in layouts.values():
            shown = {(s["kind"], s["pid"], s["track"]) for s in slots if s["pid"]}
            assert shown == {("audio", "alice", "mic"), ("video", "alice", "camera")}
        src = room.router.source("alice", "camera")
        assert src is not None and src.received > 30 and src.pli_sent >= 1
        # the aiortc decoders of the server-side receivers were never started
        assert room.peers["alice"].publish_pc is not None
        # a viewer that leaves stops being forwarded
        await room.remove_participant("carol")
        assert all(s.subscriber.pid != "carol" for s in src.sinks)
    finally:
        for v in viewers:
            await v.close()
        if pub_pc is not None:
            await pub_pc.close()
        await room.close()


async def test_screen_share_renegotiation_and_publisher_codec_choice(loopback_only: None) -> None:
    signals: list[tuple[str, dict[str, Any]]] = []
    room = SfuRoom(lambda pid, p: signals.append((pid, p)), last_n=2, audio_slots=0)
    viewer = Viewer()
    pc = client_pc()
    try:
        cam = pc.addTransceiver(SmallVideo(), direction="sendonly")
        caps = RTCRtpSender.getCapabilities("video").codecs
        # the publisher prefers H.264: the SFU answers H.264 only (the first forwarded
        # codec in the offer's order), and subscribers still decode it
        cam.setCodecPreferences(
            [c for c in caps if c.mimeType == "video/H264"]
            + [c for c in caps if c.mimeType == "video/VP8"]
        )
        await pc.setLocalDescription(await pc.createOffer())
        assert pc.localDescription.sdp.index("H264") < pc.localDescription.sdp.index("VP8")
        [ans] = await room.handle_signal(
            "alice",
            {"sfu": "publish", "sdp": pc.localDescription.sdp, "labels": {cam.mid: "camera"}},
        )
        video = ans["sdp"].split("m=video")[1]
        assert "H264/90000" in video and "VP8" not in video
        await pc.setRemoteDescription(RTCSessionDescription(ans["sdp"], "answer"))
        await viewer.join(room, "bob")
        await wait_for(lambda: viewer.frames["video"] >= 10, 20)
        publish_pc = room.peers["alice"].publish_pc
        # start a screen share: a second video track, renegotiated on the same connection
        screen = pc.addTransceiver(SmallVideo(320, 180), direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        [ans2] = await room.handle_signal(
            "alice",
            {
                "sfu": "publish",
                "sdp": pc.localDescription.sdp,
                "labels": {cam.mid: "camera", screen.mid: "screen"},
            },
        )
        await pc.setRemoteDescription(RTCSessionDescription(ans2["sdp"], "answer"))
        assert room.peers["alice"].publish_pc is publish_pc  # no new connection
        await wait_for(lambda: (320, 180) in viewer.sizes, 20)
        layout = [p["slots"] for pid, p in signals if pid == "bob" and p["sfu"] == "layout"][-1]
        assert {s["track"] for s in layout} == {"camera", "screen"}
        src = room.router.source("alice", "camera")
        assert src is not None and src.codec == "H264"
        assert room.router.source("alice", "screen").codec == "VP8"  # aiortc's default order
        before = viewer.frames["video"]
        await asyncio.sleep(0.5)
        assert viewer.frames["video"] > before
    finally:
        await viewer.close()
        await pc.close()
        await room.close()
