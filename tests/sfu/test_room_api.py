"""The SFU room's public controls, as the server uses them: ``SfuRoom.unpublish(pid)``
(a participant made an observer) and ``SfuRoom.stats()`` (/metrics).  aiortc clients on
127.0.0.1 publish and subscribe for real; no wire message drives the SFU here.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiortc import MediaStreamTrack, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack

from parley.sfu.forwarder import ForwardingStats
from parley.sfu.peer import SfuRoom
from tests.sfu.sfu_media import WAIT, SmallVideo, client_pc, wait_for

pytestmark = pytest.mark.timeout(90)


async def test_unpublish_stops_forwarding_and_stats_follow(loopback_only: None) -> None:
    signals: list[tuple[str, dict[str, Any]]] = []
    room = SfuRoom(lambda pid, payload: signals.append((pid, payload)), last_n=2, audio_slots=2)
    pub, sub = client_pc(), client_pc()
    frames = {"video": 0}
    tasks: list[asyncio.Task[None]] = []

    async def count(track: MediaStreamTrack) -> None:
        while True:
            await track.recv()
            frames[track.kind] = frames.get(track.kind, 0) + 1

    @sub.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        tasks.append(asyncio.ensure_future(count(track)))

    def layout() -> list[dict[str, Any]]:
        return next((p["slots"] for pid, p in reversed(signals) if p["sfu"] == "layout"), [])

    try:
        assert room.stats() == ForwardingStats()  # nothing yet
        pub.addTransceiver(AudioStreamTrack(), direction="sendonly")
        pub.addTransceiver(SmallVideo(), direction="sendonly")
        await pub.setLocalDescription(await pub.createOffer())
        labels = {t.mid: t.kind for t in pub.getTransceivers()}
        [answer] = await room.handle_signal(
            "ada", {"sfu": "publish", "sdp": pub.localDescription.sdp, "labels": labels}
        )
        await pub.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
        [offer] = await room.handle_signal("bob", {"sfu": "subscribe"})
        await sub.setRemoteDescription(RTCSessionDescription(offer["sdp"], "offer"))
        await sub.setLocalDescription(await sub.createAnswer())
        await room.handle_signal(
            "bob", {"sfu": "subscribe-answer", "sdp": sub.localDescription.sdp}
        )
        await wait_for(lambda: frames["video"] >= 10, WAIT, lambda: f"frames {frames}")
        stats = room.stats()
        assert stats.packets_received > 0 and stats.plis_sent >= 1, stats
        assert {s["pid"] for s in layout()} == {"ada", None}

        assert await room.unpublish("ada") is True
        # bob is told ada's slots are empty, and her packets are no longer counted
        assert {s["pid"] for s in layout()} == {None}
        assert room.stats().packets_received == 0
        await asyncio.sleep(0.5)  # frames already on their way are decoded
        seen = frames["video"]
        await asyncio.sleep(1.0)
        assert frames["video"] == seen  # and then none
        # ada keeps her place in the room: she can publish again
        assert room.peers["ada"].publish_pc is None and "ada" in room.peers
        assert await room.unpublish("nobody") is False
    finally:
        for t in tasks:
            t.cancel()
        await pub.close()
        await sub.close()
        await room.close()
