"""Synthetic media and an aiortc participant for the SFU tests.

``Person`` speaks to the SFU through any WebSocket test client with the
harnesses' ``send`` / ``take`` / ``expect`` / ``id`` (tests/server's and tests/cluster's).
"""

from __future__ import annotations

import asyncio
import fractions
import socket
import time
from collections.abc import Callable
from typing import Any

import av
from aiortc import (
    MediaStreamTrack,
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import AudioStreamTrack


class SmallVideo(MediaStreamTrack):
    """A small moving synthetic picture (cheap to encode), 30 fps."""

    kind = "video"

    def __init__(self, width: int = 160, height: int = 120) -> None:
        super().__init__()
        self.width, self.height = width, height
        self.n = 0
        self.t0: float | None = None

    async def recv(self) -> av.VideoFrame:
        if self.t0 is None:
            self.t0 = time.monotonic()
        delay = self.t0 + self.n / 30 - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        frame = av.VideoFrame(self.width, self.height, "yuv420p")
        for plane in frame.planes:
            plane.update(bytes([(self.n * 7) % 256]) * plane.buffer_size)
        frame.pts = self.n * 3000
        frame.time_base = fractions.Fraction(1, 90000)
        self.n += 1
        return frame


WAIT = 20.0  # generous bound for any one media event on a loaded 2-core box


async def wait_for(cond: Callable[[], bool], seconds: float, what: Callable[[], str]) -> None:
    deadline = time.monotonic() + seconds
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds}s: {what()}")
        await asyncio.sleep(0.05)


def client_pc() -> RTCPeerConnection:
    # max-bundle: with aiortc's default ("balanced"), answering an offer with several
    # video m-lines leaves the 2nd..nth video transceivers on an orphan transport that
    # never connects (aiortc 1.16 bundles them to the first *video* transport before
    # applying the offer's BUNDLE group).  Browsers follow the offer's group.
    return RTCPeerConnection(
        RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
    )


async def count_frames(
    track: MediaStreamTrack,
    mid: str,
    frames: dict[str, int],
    sizes: dict[str, tuple[int, int]],
) -> None:
    """Receive ``track`` until it ends: ``frames[mid]`` counts its decoded frames,
    ``sizes[mid]`` holds the latest video frame's (width, height)."""
    try:
        while True:
            frame = await track.recv()
            frames[mid] = frames.get(mid, 0) + 1
            if isinstance(frame, av.VideoFrame):
                sizes[mid] = (frame.width, frame.height)
    except Exception:
        return


class Person:
    """A participant: a WebSocket client plus a publish and ONE subscribe connection."""

    def __init__(self, name: str, ws: Any) -> None:
        self.name = name
        self.ws = ws
        self.pub: RTCPeerConnection | None = None
        self.sub: RTCPeerConnection | None = None
        self.frames: dict[str, int] = {}  # mid -> decoded frames (video and audio)
        self.kinds: dict[str, str] = {}  # mid -> kind
        self.sizes: dict[str, tuple[int, int]] = {}
        self.layouts: list[list[dict[str, Any]]] = []
        self.tasks: list[asyncio.Task[None]] = []
        self._reader = asyncio.get_running_loop().create_task(self._collect_layouts())

    @property
    def id(self) -> str:
        return self.ws.id

    async def _collect_layouts(self) -> None:
        """Take every ``layout`` signal from the sfu as it arrives (others stay pending)."""
        while True:
            msg = await self.ws.take(
                lambda m: (
                    m["type"] == "signal"
                    and m.get("from") == "sfu"
                    and m["payload"].get("sfu") == "layout"
                ),
                "layout",
                3600,
            )
            self.layouts.append(msg["payload"]["slots"])

    async def signal(self, payload: dict[str, Any], ref: str = "sfu") -> None:
        await self.ws.send({"type": "signal", "to": "sfu", "payload": payload, "ref": ref})

    async def sfu_reply(self, kind: str) -> dict[str, Any]:
        msg = await self.ws.expect(
            "signal",
            lambda m: m.get("from") == "sfu" and m["payload"].get("sfu") in (kind, "error"),
            within=WAIT,
        )
        assert msg["payload"]["sfu"] == kind, msg
        return dict(msg["payload"])

    async def publish(self) -> None:
        pc = self.pub = client_pc()
        pc.addTransceiver(AudioStreamTrack(), direction="sendonly")
        pc.addTransceiver(SmallVideo(), direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())  # aiortc gathers all candidates
        labels = {t.mid: ("mic" if t.kind == "audio" else "camera") for t in pc.getTransceivers()}
        await self.signal({"sfu": "publish", "sdp": pc.localDescription.sdp, "labels": labels})
        answer = await self.sfu_reply("publish-answer")
        candidates = [ln for ln in answer["sdp"].splitlines() if ln.startswith("a=candidate")]
        assert candidates and all(ln.split()[4] == "127.0.0.1" for ln in candidates), candidates
        await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))

    async def subscribe(self) -> None:
        pc = self.sub = client_pc()

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            mid = next(t.mid for t in pc.getTransceivers() if t.receiver.track is track)
            self.kinds[str(mid)] = track.kind
            self.tasks.append(
                asyncio.ensure_future(count_frames(track, str(mid), self.frames, self.sizes))
            )

        await self.signal({"sfu": "subscribe"})
        offer = await self.sfu_reply("subscribe-offer")
        await pc.setRemoteDescription(RTCSessionDescription(offer["sdp"], "offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        await self.signal({"sfu": "subscribe-answer", "sdp": pc.localDescription.sdp})

    def layout(self) -> list[dict[str, Any]]:
        return self.layouts[-1] if self.layouts else []

    def shown(self, kind: str) -> dict[str, str]:
        """pid -> mid of the slots of ``kind`` that show someone, per the latest layout."""
        return {s["pid"]: s["mid"] for s in self.layout() if s["kind"] == kind and s["pid"]}

    def decoded(self, pid: str, kind: str = "video") -> int:
        mid = self.shown(kind).get(pid)
        return self.frames.get(mid, 0) if mid is not None else 0

    async def close(self) -> None:
        self._reader.cancel()
        for t in self.tasks:
            t.cancel()
        for pc in (self.pub, self.sub):
            if pc is not None:
                await pc.close()


# -- UDP ports and ICE candidates (the --media-port tests) ------------------------------


def free_udp_ports(count: int) -> int:
    """First of ``count`` consecutive UDP ports free on 127.0.0.1 right now."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("127.0.0.1", 0))
            first = int(probe.getsockname()[1])
        if first + count > 65535:
            continue
        socks: list[socket.socket] = []
        try:
            for port in range(first, first + count):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind(("127.0.0.1", port))
            return first
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free UDP port range")


def candidates(sdp: str) -> list[list[str]]:
    """``a=candidate`` lines split: [4] address, [5] port, [7] type."""
    return [ln.split() for ln in sdp.splitlines() if ln.startswith("a=candidate")]


def loopback_candidates(sdp: str) -> str:
    """The SDP without candidates naming anything but 127.0.0.1."""
    return "".join(
        ln
        for ln in sdp.splitlines(keepends=True)
        if not ln.startswith("a=candidate") or ln.split()[4] == "127.0.0.1"
    )
