"""``parley serve --media sfu --media-port … [--media-public-ip …]`` end to end.

The real server as a subprocess (``--media-ip 127.0.0.1``), WebSocket clients for
signalling and aiortc peers (candidates on 127.0.0.1 only) for media:

* one port: a busy port makes the SFU negotiation fail with a clear ``error`` and the
  server goes on; once free, two participants publish and subscribe (four peer
  connections) through that single UDP port, and each decodes the other;
* a two-port range and a public address: the SFU's candidates use ports of the range
  and also name the public address (that candidate is removed before the client sees
  it: no packet goes anywhere but 127.0.0.1); media flows;
* bad values are refused by the command line with a clear message.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import av
import pytest
from aiortc import (
    MediaStreamTrack,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import AudioStreamTrack

from parley import cli
from parley.config import Settings
from tests.sfu.sfu_media import (
    SmallVideo,
    candidates,
    client_pc,
    free_udp_ports,
    loopback_candidates,
    wait_for,
)
from tests.support.parley_process import ParleyProcess as ServerProc
from tests.support.processes import free_port
from tests.support.ws_client import Client, Clients

pytestmark = pytest.mark.timeout(90)

WAIT = 20.0
PUBLIC = "203.0.113.7"  # TEST-NET-3: written into SDP by the server, never sent to


class Person:
    """A participant: WebSocket signalling, a publish and a subscribe connection."""

    def __init__(self, ws: Client) -> None:
        self.ws = ws
        self.pcs: list[RTCPeerConnection] = []
        self.sdps: list[str] = []  # every SDP the SFU sent (answer, offer)
        self.frames: dict[str, int] = {"audio": 0, "video": 0}
        self.tasks: list[asyncio.Future[None]] = []

    async def signal(self, payload: dict[str, Any]) -> None:
        await self.ws.send({"type": "signal", "to": "sfu", "payload": payload, "ref": "sfu"})

    async def reply(self, kind: str) -> dict[str, Any]:
        msg = await self.ws.expect(
            "signal",
            lambda m: m.get("from") == "sfu" and m["payload"].get("sfu") in (kind, "error"),
            within=WAIT,
        )
        return dict(msg["payload"])

    async def publish(self) -> dict[str, Any]:
        """Offer to publish; the SFU's reply (``publish-answer`` applied, or ``error``)."""
        pc = client_pc()
        self.pcs.append(pc)
        pc.addTransceiver(AudioStreamTrack(), direction="sendonly")
        pc.addTransceiver(SmallVideo(), direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        labels = {t.mid: ("mic" if t.kind == "audio" else "camera") for t in pc.getTransceivers()}
        await self.signal({"sfu": "publish", "sdp": pc.localDescription.sdp, "labels": labels})
        answer = await self.reply("publish-answer")
        if answer["sfu"] == "publish-answer":
            self.sdps.append(answer["sdp"])
            await pc.setRemoteDescription(
                RTCSessionDescription(loopback_candidates(answer["sdp"]), "answer")
            )
        return answer

    async def subscribe(self) -> None:
        pc = client_pc()
        self.pcs.append(pc)

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            self.tasks.append(asyncio.ensure_future(self._consume(track)))

        await self.signal({"sfu": "subscribe"})
        offer = await self.reply("subscribe-offer")
        assert offer["sfu"] == "subscribe-offer", offer
        self.sdps.append(offer["sdp"])
        await pc.setRemoteDescription(
            RTCSessionDescription(loopback_candidates(offer["sdp"]), "offer")
        )
        await pc.setLocalDescription(await pc.createAnswer())
        await self.signal({"sfu": "subscribe-answer", "sdp": pc.localDescription.sdp})

    async def _consume(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                frame = await track.recv()
                kind = "video" if isinstance(frame, av.VideoFrame) else "audio"
                self.frames[kind] += 1
        except Exception:
            return

    async def close(self) -> None:
        for t in self.tasks:
            t.cancel()
        for pc in self.pcs:
            await pc.close()


def start_server(base: Path, *args: str) -> ServerProc:
    srv = ServerProc(
        port=free_port(),
        data_dir=base / "data",
        args=("--media", "sfu", "--media-ip", "127.0.0.1", "--no-rate-limits", *args),
        log_path=base / "server.log",
    )
    return srv.start()


async def healthy(srv: ServerProc) -> bool:
    async with aiohttp.ClientSession() as http:
        async with http.get(srv.url + "/healthz") as resp:
            return resp.status == 200


async def meet(srv: ServerProc, clients: Clients, room: str) -> list[Person]:
    """Two people who publish, subscribe and decode each other's audio and video."""
    people = [Person(await clients.join(srv, room, name)) for name in ("Ada", "Bob")]
    for p in people:
        answer = await p.publish()
        assert answer["sfu"] == "publish-answer", answer
    for p in people:
        await p.subscribe()

    def decoding(n: int) -> bool:
        return all(p.frames["video"] >= n and p.frames["audio"] >= n for p in people)

    await wait_for(lambda: decoding(10), WAIT, lambda: f"{[p.frames for p in people]}")
    assert all(pc.connectionState == "connected" for p in people for pc in p.pcs)
    return people


async def test_single_media_port(tmp_path: Path, clients: Clients, loopback_only: None) -> None:
    port = free_udp_ports(1)
    squatter = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    squatter.bind(("127.0.0.1", port))  # another program holds the port at first
    srv = start_server(tmp_path, "--media-port", str(port))
    people: list[Person] = []
    try:
        # -- the port is busy: a clear error for this negotiation, the server goes on
        early = Person(await clients.join(srv, "busy-port", "Early"))
        people.append(early)
        refused = await early.publish()
        assert refused == {"sfu": "error", "message": "publish failed: no UDP media port is free"}
        assert await healthy(srv)
        await early.ws.roundtrip()
        log_text = srv.log()
        assert (
            f"no UDP port of --media-port {port} can be bound on 127.0.0.1"
            f" (port {port}: Address already in use)"
        ) in log_text
        squatter.close()

        # -- free now: 2 people x (publish + subscribe) = 4 peer connections, ONE port
        people += await meet(srv, clients, "one-port")
        for p in people[1:]:
            assert len(p.sdps) == 2
            for sdp in p.sdps:
                # (repeated in each bundled m-section)
                assert {(c[4], int(c[5]), c[7]) for c in candidates(sdp)} == {
                    ("127.0.0.1", port, "host")
                }, sdp
    finally:
        squatter.close()
        for p in people:
            await p.close()
        srv.stop()
    assert srv.proc is not None and srv.proc.returncode == 0, srv.log()


async def test_media_port_range_and_public_ip(
    tmp_path: Path, clients: Clients, loopback_only: None
) -> None:
    first = free_udp_ports(2)
    ports = {first, first + 1}
    srv = start_server(
        tmp_path, "--media-port", f"{first}-{first + 1}", "--media-public-ip", PUBLIC
    )
    people: list[Person] = []
    try:
        people = await meet(srv, clients, "port-range")
        used: set[int] = set()
        for p in people:
            for sdp in p.sdps:
                lines = {tuple(c) for c in candidates(sdp)}  # one set per bundled m-section
                [host] = [c for c in lines if c[7] == "host"]
                [srflx] = [c for c in lines if c[7] == "srflx"]
                assert host[4] == "127.0.0.1" and int(host[5]) in ports, sdp
                # the public address, with the port of the private one it maps to
                assert srflx[4:6] == (PUBLIC, host[5]), sdp
                assert srflx[8:12] == ("raddr", "127.0.0.1", "rport", host[5]), sdp
                used.add(int(host[5]))
        assert used == ports  # 4 connections spread over both ports, then share them
        assert "sfu: media on UDP ports" in srv.log()
    finally:
        for p in people:
            await p.close()
        srv.stop()


# -- the command line -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("70000", "argument --media-port: 70000: port 70000 is outside 1-65535"),
        ("5-3", "argument --media-port: 5-3: the first port is above the last"),
        ("abc", "argument --media-port: 'abc' is not a UDP port or port range"),
        ("0", "argument --media-port: 0: port 0 is outside 1-65535"),
        ("40000-", "argument --media-port: '40000-' is not a UDP port or port range"),
    ],
)
def test_bad_media_port(value: str, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["serve", "--media", "sfu", "--media-port", value])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_bad_media_port_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PARLEY_MEDIA_PORT", "5-3")
    with pytest.raises(SystemExit) as exc:
        cli.main(["serve", "--media", "sfu"])
    assert exc.value.code == 2
    assert "argument --media-port: 5-3: the first port is above the last" in (
        capsys.readouterr().err
    )


def test_bad_media_public_ip(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["serve", "--media", "sfu", "--media-public-ip", "meet.example.com"])
    assert exc.value.code == 2
    assert "argument --media-public-ip: 'meet.example.com' is not an IP address" in (
        capsys.readouterr().err
    )


def test_media_flags_need_the_sfu(monkeypatch: pytest.MonkeyPatch) -> None:
    args = cli.build_parser().parse_args(["serve", "--media", "mesh", "--media-port", "40000"])
    with pytest.raises(SystemExit, match="need --media sfu"):
        cli.settings_from(args)
    monkeypatch.setenv("PARLEY_MEDIA", "mesh")
    args = cli.build_parser().parse_args(["serve", "--media-public-ip", "203.0.113.7"])
    with pytest.raises(SystemExit, match="need --media sfu"):
        cli.settings_from(args)


def test_media_is_the_sfu_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """Plain ``parley serve`` forwards media (rooms of 50); ``--media mesh`` or
    ``PARLEY_MEDIA=mesh`` opts out (rooms of 6); --max-participants wins over both."""
    for name in ("PARLEY_MEDIA", "PARLEY_MAX_PARTICIPANTS", "PARLEY_MEDIA_PORT"):
        monkeypatch.delenv(name, raising=False)

    def settings(*argv: str) -> Settings:  # the parser reads PARLEY_* when it is built
        return cli.settings_from(cli.build_parser().parse_args(["serve", *argv]))

    assert Settings().media == "sfu"
    s = settings()
    assert (s.media, s.limits.max_participants, s.media_ips) == ("sfu", 50, None)
    assert settings("--max-participants", "8").limits.max_participants == 8
    s = settings("--media", "mesh")
    assert (s.media, s.limits.max_participants) == ("mesh", 6)
    monkeypatch.setenv("PARLEY_MEDIA", "mesh")
    s = settings()
    assert (s.media, s.limits.max_participants) == ("mesh", 6)
    assert settings("--media", "sfu").media == "sfu"  # the flag wins
    monkeypatch.setenv("PARLEY_MEDIA", "p2p")
    with pytest.raises(SystemExit, match="PARLEY_MEDIA"):
        settings()


def test_media_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    parse = cli.build_parser().parse_args
    s = cli.settings_from(parse(["serve", "--media", "sfu", "--media-port", " 40000-40099 "]))
    assert s.media_ports == (40000, 40099) and s.media_public_ip is None
    s = cli.settings_from(parse(["serve", "--media", "sfu"]))
    assert s.media_ports is None and s.media_public_ip is None  # the default: as before
    monkeypatch.setenv("PARLEY_MEDIA_PORT", "40000")
    monkeypatch.setenv("PARLEY_MEDIA_PUBLIC_IP", "2001:db8::0:7")
    s = cli.settings_from(cli.build_parser().parse_args(["serve", "--media", "sfu"]))
    assert s.media_ports == (40000, 40000) and s.media_public_ip == "2001:db8::7"


def test_bad_media_port_through_the_real_command(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
    proc = subprocess.run(
        [sys.executable, "-m", "parley", "serve", "--media", "sfu", "--media-port", "70000"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=env,
    )
    assert proc.returncode == 2, proc
    assert "argument --media-port: 70000: port 70000 is outside 1-65535" in proc.stderr
    assert "Traceback" not in proc.stderr
