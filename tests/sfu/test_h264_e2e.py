"""H.264 end to end on 127.0.0.1: aiortc clients publish H.264 (libx264 through PyAV) and
VP8 through the SFU (in-process ``SfuRoom``), aiortc subscribers receive and DECODE them.

What a user notices: a subscriber sees and decodes an H.264 publisher's video, next to
a VP8 publisher's, each arriving with the payload type the subscriber negotiated for its
codec; a subscriber that does not accept H.264 (Firefox without OpenH264) gets the VP8
video and everyone's audio at once, and the H.264 publisher is asked to publish again
(``{"sfu":"republish"}``) and answered with VP8, so that subscriber sees it too.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from typing import Any

import av
import pytest
from aiortc import (
    MediaStreamTrack,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.mediastreams import AudioStreamTrack

from parley.sfu.peer import SfuRoom
from tests.sfu.sfu_media import SmallVideo, client_pc, count_frames

pytestmark = pytest.mark.timeout(90)

WAIT = 30.0  # one media event on a loaded 2-core box


@pytest.fixture(autouse=True)
def libx264() -> None:
    try:
        av.codec.Codec("libx264", "w")
    except Exception:  # pragma: no cover - PyAV built without libx264
        pytest.skip("PyAV has no libx264 encoder")


def video_pts(sdp: str) -> dict[str, list[int]]:
    """Codec name -> payload types of the (first) video section, in the SDP's order."""
    video = sdp.split("m=video", 1)[1].split("\nm=", 1)[0]
    out: dict[str, list[int]] = {}
    for pt, name in re.findall(r"a=rtpmap:(\d+) ([\w-]+)/", video):
        out.setdefault(name.upper(), []).append(int(pt))
    return out


def without_codec(sdp: str, name: str) -> str:
    """``sdp`` with codec ``name`` (and the RTX streams repairing it) taken out."""
    pts = set(re.findall(rf"a=rtpmap:(\d+) {name}/", sdp))
    pts |= {rtx for rtx, apt in re.findall(r"a=fmtp:(\d+) apt=(\d+)", sdp) if apt in pts}
    lines = []
    for line in sdp.splitlines():
        m = re.match(r"a=(?:rtpmap|fmtp|rtcp-fb):(\d+)", line)
        if m and m.group(1) in pts:
            continue
        if line.startswith("m=video"):
            words = line.split()
            line = " ".join(words[:3] + [w for w in words[3:] if w not in pts])
        lines.append(line)
    return "\r\n".join(lines) + "\r\n"


async def publish(room: SfuRoom, pid: str, codec: str) -> tuple[RTCPeerConnection, str]:
    """Publish Opus + a small video, preferring ``codec``; returns (pc, answer SDP)."""
    pc = client_pc()
    pc.addTransceiver(AudioStreamTrack(), direction="sendonly")
    cam = pc.addTransceiver(SmallVideo(), direction="sendonly")
    caps = RTCRtpSender.getCapabilities("video").codecs
    mime = f"video/{codec}"
    cam.setCodecPreferences(
        [c for c in caps if c.mimeType == mime] + [c for c in caps if c.mimeType != mime]
    )
    await pc.setLocalDescription(await pc.createOffer())
    labels = {t.mid: ("mic" if t.kind == "audio" else "camera") for t in pc.getTransceivers()}
    [reply] = await room.handle_signal(
        pid, {"sfu": "publish", "sdp": pc.localDescription.sdp, "labels": labels}
    )
    assert reply["sfu"] == "publish-answer", reply
    await pc.setRemoteDescription(RTCSessionDescription(reply["sdp"], "answer"))
    return pc, str(reply["sdp"])


class Viewer:
    """An aiortc subscriber: decoded frames and received payload types, per slot mid."""

    def __init__(self, room: SfuRoom, pid: str, signals: list[tuple[str, dict[str, Any]]]):
        self.room, self.pid, self.signals = room, pid, signals
        self.pc = client_pc()  # max-bundle: all slots on the one transport, as browsers do
        self.frames: dict[str, int] = {}
        self.sizes: dict[str, tuple[int, int]] = {}
        self.pts: dict[str, set[int]] = {}
        self.answer = ""
        self.tasks: list[asyncio.Task[None]] = []

        @self.pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            mid = next(t.mid for t in self.pc.getTransceivers() if t.receiver.track is track)
            self.tasks.append(
                asyncio.ensure_future(count_frames(track, str(mid), self.frames, self.sizes))
            )

    def _record_payload_types(self) -> None:
        for t in self.pc.getTransceivers():
            receiver, mid = t.receiver, str(t.mid)
            original = receiver._handle_rtp_packet

            async def handle(packet: Any, arrival_time_ms: int, mid: str = mid, o: Any = original):
                self.pts.setdefault(mid, set()).add(packet.payload_type)
                await o(packet, arrival_time_ms=arrival_time_ms)

            receiver._handle_rtp_packet = handle  # type: ignore[method-assign]

    async def join(self, *, accept: Callable[[str], str] = lambda sdp: sdp) -> None:
        [offer] = await self.room.handle_signal(self.pid, {"sfu": "subscribe"})
        assert offer["sfu"] == "subscribe-offer"
        await self.pc.setRemoteDescription(RTCSessionDescription(accept(offer["sdp"]), "offer"))
        self._record_payload_types()
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        self.answer = self.pc.localDescription.sdp
        reply = await self.room.handle_signal(
            self.pid, {"sfu": "subscribe-answer", "sdp": self.answer}
        )
        assert reply == []

    def layout(self) -> list[dict[str, Any]]:
        layouts = [
            p["slots"] for pid, p in self.signals if pid == self.pid and p["sfu"] == "layout"
        ]
        return layouts[-1] if layouts else []

    def mid_of(self, pid: str, kind: str = "video") -> str | None:
        return next(
            (s["mid"] for s in self.layout() if s["pid"] == pid and s["kind"] == kind), None
        )

    def decoded(self, pid: str, kind: str = "video") -> int:
        mid = self.mid_of(pid, kind)
        return self.frames.get(mid, 0) if mid is not None else 0

    async def close(self) -> None:
        for t in self.tasks:
            t.cancel()
        await self.pc.close()


async def wait_for(cond: Callable[[], bool], what: Callable[[], str]) -> None:
    deadline = time.monotonic() + WAIT
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out: {what()}")
        await asyncio.sleep(0.05)


async def test_h264_publisher_decoded_by_a_subscriber_with_its_payload_type(
    loopback_only: None,
) -> None:
    signals: list[tuple[str, dict[str, Any]]] = []
    room = SfuRoom(lambda pid, p: signals.append((pid, p)), last_n=2, audio_slots=2)
    bob = Viewer(room, "bob", signals)
    pub: RTCPeerConnection | None = None
    try:
        pub, answer = await publish(room, "ada", "H264")
        assert set(video_pts(answer)) == {"H264", "RTX"}  # the publisher's choice, only it
        await bob.join()
        await wait_for(lambda: bob.decoded("ada") >= 10, lambda: f"{bob.frames} {bob.layout()}")
        src = room.router.source("ada", "camera")
        assert src is not None and src.codec == "H264"
        bob_h264 = video_pts(bob.answer)["H264"][0]
        assert bob_h264 != src.payload_type  # the rewrite is visible
        mid = bob.mid_of("ada")
        assert mid is not None and bob.sizes[mid] == (160, 120)
        assert bob.pts[mid] == {bob_h264}
        assert bob.decoded("ada", "audio") > 0
    finally:
        await bob.close()
        if pub is not None:
            await pub.close()
        await room.close()


async def test_mixed_room_vp8_and_h264_publishers(loopback_only: None) -> None:
    signals: list[tuple[str, dict[str, Any]]] = []
    room = SfuRoom(lambda pid, p: signals.append((pid, p)), last_n=3, audio_slots=3)
    cy = Viewer(room, "cy", signals)  # accepts VP8 and H.264 (like every browser)
    dee = Viewer(room, "dee", signals)  # accepts VP8 only
    pubs: list[RTCPeerConnection] = []
    try:
        for pid, codec in (("ada", "VP8"), ("bob", "H264")):
            pc, _ = await publish(room, pid, codec)
            pubs.append(pc)
        await cy.join()
        await dee.join(accept=lambda sdp: without_codec(sdp, "H264"))
        assert "H264" not in video_pts(dee.answer)

        def both_decode() -> bool:
            return cy.decoded("ada") >= 10 and cy.decoded("bob") >= 10 and dee.decoded("ada") >= 10

        await wait_for(both_decode, lambda: f"cy {cy.frames} {cy.layout()} dee {dee.frames}")
        assert room.router.source("ada", "camera").codec == "VP8"  # type: ignore[union-attr]
        assert room.router.source("bob", "camera").codec == "H264"  # type: ignore[union-attr]
        cy_pts = video_pts(cy.answer)
        for pid, codec in (("ada", "VP8"), ("bob", "H264")):
            mid = cy.mid_of(pid)
            assert mid is not None and cy.sizes[mid] == (160, 120)
            assert cy.pts[mid] == {cy_pts[codec][0]}, (pid, cy.pts, cy_pts)
        # frames keep coming for both
        before = (cy.decoded("ada"), cy.decoded("bob"))
        await wait_for(
            lambda: cy.decoded("ada") > before[0] and cy.decoded("bob") > before[1],
            lambda: f"cy {cy.frames}",
        )
        # the VP8-only subscriber: Bob's audio at once; Bob (and only he) is asked to
        # publish again, is answered with VP8 although he still prefers H.264, and Dee
        # decodes his video
        assert dee.mid_of("bob", "audio") is not None
        await wait_for(lambda: dee.decoded("bob", "audio") > 0, lambda: f"dee {dee.frames}")
        asked = [pid for pid, p in signals if p["sfu"] == "republish"]
        assert asked == ["bob"], signals
        await room.handle_signal("bob", {"sfu": "unpublish"})
        await pubs.pop().close()
        pc, answer = await publish(room, "bob", "H264")
        pubs.append(pc)
        assert set(video_pts(answer)) == {"VP8", "RTX"}
        await wait_for(
            lambda: dee.decoded("bob") >= 10 and cy.decoded("bob") >= 10,
            lambda: f"dee {dee.frames} {dee.layout()} cy {cy.frames}",
        )
        assert room.router.source("bob", "camera").codec == "VP8"  # type: ignore[union-attr]
        # Dee leaves: new publishes get H.264 again
        await dee.close()
        await room.remove_participant("dee")
        carl, answer = await publish(room, "carl", "H264")
        pubs.append(carl)
        assert set(video_pts(answer)) == {"H264", "RTX"}
    finally:
        for v in (cy, dee):
            await v.close()
        for pc in pubs:
            await pc.close()
        await room.close()
