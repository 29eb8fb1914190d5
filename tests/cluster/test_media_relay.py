"""One room's media across two nodes through the media relay (``--relay-port``).

Nodes A and B run the SFU with the relay on one Redis and one PostgreSQL.  Ada joins
through A and publishes audio and video with the Python SDK; Bob joins through B and
subscribes: his peer connection is with B, and Ada's streams reach B over the relay
(a PLI from B for Bob's video slot goes back to A and on to Ada).  Then B is killed and
started again: Bob's SDK resumes and subscribes again, and Ada's media reaches him once
more without anything happening on A's side.  Forged relay datagrams sent to B (an
unknown node, a bad tag) are refused and logged, and disturb nobody.

A stage room (the second test): the host speaks on A, two of the audience watch on B
(one relayed copy for both).  A is SIGKILLed: the audience on B keeps the meeting (they
chat, nobody is told the meeting ended) while B drops the stand-in of the speaker, and
when A is started again the speaker's SDK resumes there, publishes again, and the
audience on B receives the speaker again through the new A's relay.
"""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import uuid
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
import redis.asyncio
from aiortc.mediastreams import AudioStreamTrack

from parley.client import Meeting, connect
from parley.client.media import ParticipantMedia
from parley.sfu.aiortc import host_addresses
from parley.sfu.relay import wire
from tests.client.test_connect import chat_saying
from tests.cluster.harness import Cluster, eventually, unique_room
from tests.sfu.sfu_media import SmallVideo
from tests.support.parley_process import ParleyProcess

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(180)]

SECRET = uuid.uuid4().hex
ARGS = (
    "--media", "sfu", "--media-ip", "127.0.0.1", "--no-rate-limits",
    "--relay-port", "0", "--relay-ip", "127.0.0.1",
)  # fmt: skip


@pytest.fixture
def loopback_only() -> Iterator[None]:
    host_addresses.restrict_host_addresses(["127.0.0.1"])  # this process's aiortc peers
    yield
    host_addresses.restrict_host_addresses(None)


@pytest.fixture
async def meetings() -> AsyncIterator[list[Meeting]]:
    joined: list[Meeting] = []
    yield joined
    for meeting in joined:
        await meeting.leave()


async def metric(node: ParleyProcess, name: str) -> int:
    async with aiohttp.ClientSession() as s, s.get(f"{node.url}/metrics") as r:
        text = await r.text()
    m = re.search(rf"^parley_{name}(?:_total)? (\S+)$", text, re.M)
    return int(float(m.group(1))) if m else 0


async def frames(media: ParticipantMedia, kind: str, more: int, within: float) -> None:
    """Wait until ``more`` frames of ``kind`` have come (reading them as they come)."""
    track = media.audio if kind == "audio" else media.video
    target = track.frames_received + more
    async with asyncio.timeout(within):
        while track.frames_received < target:
            await track.recv()


async def test_a_viewer_on_another_node_gets_the_speaker_through_the_relay(
    cluster: Cluster, meetings: list[Meeting], loopback_only: None
) -> None:
    a, b = cluster.start("RA", "RB", args=ARGS, env={"PARLEY_RELAY_SECRET": SECRET})
    room = unique_room("relay")
    ada = await connect(a.url, room, "Ada")
    meetings.append(ada)
    bob = await connect(b.url, room, "Bob")
    meetings.append(bob)
    await ada.publish(AudioStreamTrack(), label="mic")
    await ada.publish(SmallVideo(), label="camera")
    media = await bob.subscribe(ada.id)
    await frames(media, "video", 10, 40)  # B asked A for a key frame for Bob's slot
    await frames(media, "audio", 50, 20)
    # Bob's media is with B; Ada's streams came to B over the relay
    assert await metric(a, "relay_datagrams_sent") > 0
    assert await metric(b, "relay_datagrams_accepted") > 0
    assert await metric(b, "relay_datagrams_refused") == 0

    # -- forged datagrams to B's relay port: refused, logged, nobody disturbed --------
    r = redis.asyncio.Redis.from_url(cluster.redis.url)
    try:
        raw = await r.get("parley:relay:addr:RB")
    finally:
        await r.aclose()
    assert raw is not None
    host, _, port = raw.decode().rpartition(":")
    good = wire.relay_key(SECRET)
    forged = [
        # the right secret, but no member of this cluster: an unknown node
        wire.seal(good, wire.DESCRIBE, 1, 1, "mallory", room, ada.id, wire.encode_tracks([])),
        # A's name without the secret: a bad tag
        wire.seal(wire.relay_key("guess"), wire.RTP, 2**62, 1, "RA", room, ada.id, b"\x80" * 40),
        b"\x00" * 50,
        # a node of another relay version (a cluster upgraded part way): refused as such
        b"PR\x02" + wire.seal(good, wire.RTP, 2**62, 1, "RA", room, ada.id, b"\x80" * 40)[3:],
    ]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for datagram in forged:
            s.sendto(datagram, (host, int(port)))
    await eventually(lambda: metric(b, "relay_datagrams_refused"), 10, "B counts the refusals")
    assert await metric(b, "relay_datagrams_refused") == 4
    await eventually(lambda: "datagram refused (unknown node)" in b.full_log(), 10, "logged")
    assert "datagram refused (tag)" in b.full_log()
    assert "datagram refused (version)" in b.full_log()
    await frames(media, "video", 10, 20)  # Ada is still forwarded to Bob
    await frames(media, "audio", 25, 20)

    # -- B restarts: Bob resumes there, subscribes again, and receives Ada again ------
    b.stop(signal.SIGKILL)
    b.start()
    await asyncio.wait_for(bob.say("back"), 60)  # the signalling is back
    await frames(media, "audio", 50, 40)
    await frames(media, "video", 10, 40)
    assert media.video.readyState == "live"
    assert await metric(b, "relay_datagrams_accepted") > 0  # the new B, through the relay


async def test_a_stage_on_one_node_its_audience_on_another_and_the_stage_node_dies(
    cluster: Cluster, meetings: list[Meeting], loopback_only: None
) -> None:
    a, b = cluster.start("TA", "TB", args=ARGS, env={"PARLEY_RELAY_SECRET": SECRET})
    room = unique_room("stage-relay")
    host = await connect(a.url, room, "Host")  # the room's first: a host, on stage
    meetings.append(host)
    await host.update_settings(stage=True)
    audience = []
    for name in ("Bob", "Cy"):
        viewer = await connect(b.url, room, name)
        meetings.append(viewer)
        assert viewer.role == "observer"  # stage mode: joiners are the audience
        audience.append(viewer)
    bob, cy = audience
    await host.publish(AudioStreamTrack(), label="mic")
    await host.publish(SmallVideo(), label="camera")
    views = [await viewer.subscribe(host.id) for viewer in audience]
    for media in views:
        await frames(media, "video", 10, 40)
        await frames(media, "audio", 50, 20)
    assert await metric(b, "relay_datagrams_accepted") > 0  # both views came over the relay

    # -- the stage's node dies: the audience on B keeps the meeting --------------------
    a.stop(signal.SIGKILL)
    await bob.say("is the speaker gone?")
    await chat_saying(cy, "is the speaker gone?", within=15)
    await eventually(
        lambda: f"{host.id} of {room} no longer described" in b.full_log(),
        15,
        "B drops the relayed speaker once A stops describing it",
    )
    assert not bob.closed and not cy.closed  # nobody was told the meeting ended

    # -- A comes back: the speaker resumes there and is relayed to B again --------------
    a.start()
    for media in views:
        await frames(media, "audio", 50, 60)
        await frames(media, "video", 10, 40)
        assert media.video.readyState == "live"
    assert host.role == "host" and host.id in bob.participants  # resumed, not rejoined
    await host.say("back on stage")
    await chat_saying(bob, "back on stage", within=15)
