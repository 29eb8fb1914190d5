"""The SFU through the real server: ``parley serve --media sfu --media-ip 127.0.0.1`` as a
subprocess, WebSocket clients for signalling and aiortc peers for media.

Three participants each publish VP8 + Opus over the protocol's ``signal`` messages (to
``"sfu"``) and subscribe with ONE RTCPeerConnection (the server's fixed slots); each
decodes the other two participants' video.  A participant who leaves stops being
forwarded (layouts drop them, their slot is freed); an observer cannot publish.

All ICE candidates are 127.0.0.1 on both sides (the server by ``--media-ip``, this
process by ``host_addresses.restrict_host_addresses``): no STUN, no other interface.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from aiortc import RTCSessionDescription

from tests.sfu.sfu_media import WAIT, Person, SmallVideo, client_pc, wait_for
from tests.support.parley_process import ParleyProcess as ServerProc
from tests.support.processes import free_port
from tests.support.ws_client import Clients

pytestmark = pytest.mark.timeout(70)  # includes starting the server on a loaded box


@pytest.fixture(scope="module")
def sfu_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProc]:
    base = tmp_path_factory.mktemp("parley-sfu")
    srv = ServerProc(
        port=free_port(),
        data_dir=base / "data",
        args=("--media", "sfu", "--media-ip", "127.0.0.1", "--no-rate-limits"),
        log_path=base / "server.log",
    )
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def _report(people: list[Person]) -> str:
    return json.dumps(
        {
            p.name: {
                "id": p.id,
                "layout": [s for s in p.layout() if s["pid"]],
                "frames": p.frames,
            }
            for p in people
        }
    )


async def test_three_participants_through_the_server_sfu(
    sfu_server: ServerProc, clients: Clients, loopback_only: None, room: str
) -> None:
    t0 = time.monotonic()
    people: list[Person] = []
    try:
        for name in ("Ada", "Bob", "Cy"):
            ws = await clients.join(sfu_server, room, name)
            assert ws.welcome is not None and ws.welcome["room"]["media"] == "sfu"
            people.append(Person(name, ws))
        ada, bob, cy = people
        # publish and subscribe concurrently, as browsers would
        await asyncio.gather(*(p.publish() for p in people))
        await asyncio.gather(*(p.subscribe() for p in people))
        for p in people:
            assert p.sub is not None
            kinds = [t.kind for t in p.sub.getTransceivers()]
            assert kinds.count("video") >= 2 and kinds.count("audio") >= 2, kinds

        def everyone_decodes(minimum: int) -> bool:
            return all(p.decoded(o.id) >= minimum for p in people for o in people if o is not p)

        await wait_for(lambda: everyone_decodes(10), WAIT, lambda: _report(people))
        # each sees exactly the two others (video and audio), never themself
        for p in people:
            others = {o.id for o in people if o is not p}
            assert set(p.shown("video")) == others, _report(people)
            assert set(p.shown("audio")) == others, _report(people)
            for pid in others:
                assert p.sizes[p.shown("video")[pid]] == (160, 120)
        # frames keep increasing, for every (viewer, publisher) pair; audio decodes too
        before = {(p.name, o.id): p.decoded(o.id) for p in people for o in people if o is not p}
        audio_before = {
            (p.name, o.id): p.decoded(o.id, "audio") for p in people for o in people if o is not p
        }
        await wait_for(
            lambda: all(
                p.decoded(o.id) > before[(p.name, o.id)]
                and p.decoded(o.id, "audio") > audio_before[(p.name, o.id)]
                for p in people
                for o in people
                if o is not p
            ),
            WAIT,
            lambda: _report(people),
        )
        # ONE subscribe connection per participant (plus the publish one), all connected
        for p in people:
            assert p.sub is not None and p.sub.connectionState == "connected"
            assert p.pub is not None and p.pub.connectionState == "connected"

        # -- the operator sees the forwarding in /metrics
        async with aiohttp.ClientSession() as http:
            async with http.get(sfu_server.url + "/metrics") as resp:
                metrics = await resp.text()
        received = [
            float(line.split()[-1])
            for line in metrics.splitlines()
            if line.startswith("parley_sfu_packets_received_total ")
        ]
        assert received and received[0] > 0, metrics[-2000:]

        # -- Cy leaves: the others' layouts drop Cy, Cy's slots are freed, no more frames
        cy_slots = {p.name: (p.shown("video")[cy.id], p.shown("audio")[cy.id]) for p in (ada, bob)}
        cy_id = cy.id
        await cy.ws.send({"type": "leave"})
        for p in (ada, bob):
            await p.ws.expect("participant-left", lambda m: m["id"] == cy_id, within=WAIT)
        await asyncio.sleep(0.5)  # packets in flight
        stopped = {
            (p.name, mid): p.frames.get(mid, 0) for p in (ada, bob) for mid in cy_slots[p.name]
        }
        alive = {p.name: p.decoded(o.id) for p, o in ((ada, bob), (bob, ada))}
        await asyncio.sleep(1.0)
        for (name, mid), n in stopped.items():
            person = ada if name == "Ada" else bob
            assert person.frames.get(mid, 0) == n, f"{name} still gets Cy's stream on mid {mid}"
        # ... while Ada and Bob still see each other
        assert ada.decoded(bob.id) > alive["Ada"] and bob.decoded(ada.id) > alive["Bob"]

        # the layouts drop Cy: Cy's slots are announced free
        def cy_gone() -> bool:
            return all(cy_id not in {s["pid"] for s in p.layout()} for p in (ada, bob))

        # (Once a bug: a removed source emptied its slots before relayout, so no new
        # layout was sent and subscribers kept naming the leaver.)
        await wait_for(cy_gone, 10.0, lambda: _report(people))
        for p in (ada, bob):
            vmid, amid = cy_slots[p.name]
            freed = {s["mid"]: s for s in p.layout()}
            assert freed[vmid]["pid"] is None and freed[amid]["pid"] is None, p.layout()
    finally:
        for p in people:
            await p.close()
    elapsed = time.monotonic() - t0
    print(f"3-party SFU test through the server: {elapsed:.1f} s")


async def test_observer_cannot_publish(
    sfu_server: ServerProc, clients: Clients, loopback_only: None, room: str
) -> None:
    host = await clients.join(sfu_server, room, "Host")
    assert host.welcome is not None
    [me] = [p for p in host.welcome["participants"] if p["id"] == host.id]
    assert me["role"] == "host"
    watcher = await clients.join(sfu_server, room, "Watcher")
    await host.send({"type": "set-role", "to": watcher.id, "role": "observer", "ref": "r"})
    await watcher.expect(
        "participant-updated",
        lambda m: m["participant"]["id"] == watcher.id and m["participant"]["role"] == "observer",
    )
    pc = client_pc()
    try:
        pc.addTransceiver(SmallVideo(), direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        mid = pc.getTransceivers()[0].mid
        await watcher.send(
            {
                "type": "signal",
                "to": "sfu",
                "payload": {
                    "sfu": "publish",
                    "sdp": pc.localDescription.sdp,
                    "labels": {mid: "camera"},
                },
                "ref": "pub",
            }
        )
        err = await watcher.error("forbidden")
        assert err.get("ref") == "pub"
        # no answer came, and the observer may still watch (subscribe works)
        await watcher.send(
            {"type": "signal", "to": "sfu", "payload": {"sfu": "subscribe"}, "ref": "s"}
        )
        offer = await watcher.expect(
            "signal", lambda m: m.get("from") == "sfu" and m["payload"].get("sfu") != "layout"
        )
        assert offer["payload"]["sfu"] == "subscribe-offer", offer
        assert not [
            m
            for m in watcher.received
            if m["type"] == "signal" and m["payload"].get("sfu") == "publish-answer"
        ]
    finally:
        await pc.close()


async def test_plain_server_offers_loopback(
    tmp_path: Path, clients: Clients, loopback_only: None, room: str
) -> None:
    """Plain ``parley serve`` (no --media, no --media-ip): SFU rooms, and the SFU's host
    candidates include 127.0.0.1 (aioice alone leaves it out), so a peer that has nothing
    but loopback -- a browser tab on a machine with no other interface up -- connects."""
    srv = ServerProc(
        port=free_port(), data_dir=tmp_path / "data", args=(), log_path=tmp_path / "server.log"
    ).start()
    pc = client_pc()
    try:
        ws = await clients.join(srv, room, "Ada")
        assert ws.welcome is not None and ws.welcome["room"]["media"] == "sfu"
        pc.addTransceiver(SmallVideo(), direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        mid = pc.getTransceivers()[0].mid
        payload = {"sfu": "publish", "sdp": pc.localDescription.sdp, "labels": {mid: "camera"}}
        await ws.send({"type": "signal", "to": "sfu", "payload": payload})
        answer = await ws.expect(
            "signal",
            lambda m: m.get("from") == "sfu" and m["payload"].get("sfu") != "layout",
            within=WAIT,
        )
        assert answer["payload"]["sfu"] == "publish-answer", answer
        sdp = answer["payload"]["sdp"]
        hosts = [ln.split()[4] for ln in sdp.splitlines() if ln.startswith("a=candidate")]
        assert "127.0.0.1" in hosts, hosts
        await pc.setRemoteDescription(RTCSessionDescription(sdp, "answer"))
        await wait_for(lambda: pc.connectionState == "connected", WAIT, lambda: pc.connectionState)
    finally:
        await pc.close()
        srv.stop()


@pytest.fixture
def room(request: pytest.FixtureRequest) -> str:
    base = "".join(c if c.isalnum() else "-" for c in request.node.name)[:40].strip("-")
    return f"{base}-{int(time.time() * 1000) % 10**8}"
