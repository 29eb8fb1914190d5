"""The node-to-node media relay without servers: framing and tags, replays, refusals, and
two routers joined by two relays (in memory, then over real loopback UDP)."""

from __future__ import annotations

import asyncio
import hmac
import logging
import socket
from typing import Any

import pytest

from parley.sfu import rtp as R
from parley.sfu.forwarder import Router
from parley.sfu.relay import batch_recv
from parley.sfu.relay import wire as W
from parley.sfu.relay.node import MediaRelay, RefusalLog
from tests.sfu.sfu_packets import Wire, audio, parse, rtp, vp8_payload
from tests.sfu.test_forwarder import audio_slots, video_slots

KEY = W.relay_key("s3cret")


def test_a_sealed_datagram_opens_to_what_was_sealed() -> None:
    data = W.seal(KEY, W.RTP, 1700000000000, 7, "node-a", "standup", "p_ada", b"\x80rtp")
    d = W.open_datagram(KEY, data)
    assert (d.kind, d.epoch, d.counter, d.node, d.room, d.pid, d.payload) == (
        W.RTP, 1700000000000, 7, "node-a", "standup", "p_ada", b"\x80rtp",
    )  # fmt: skip
    assert len(data) == 20 + 7 + 8 + 6 + 4 + W.TAG  # header, 3 fields, payload, tag


def test_the_tag_is_hmac_sha256_cut_to_16_bytes() -> None:
    """The pre-keyed states (wire.Key) give exactly RFC 2104's HMAC, for any key length."""
    for key in (KEY, b"k", bytes(range(64)), bytes(100)):
        data = W.seal(key, W.RTP, 1, 2, "node-a", "standup", "p_ada", b"\x80" * 1100)
        body, tag = data[: -W.TAG], data[-W.TAG :]
        assert tag == hmac.digest(key, body, "sha256")[: W.TAG]
        assert W.open_datagram(W.Key(key), data).payload == b"\x80" * 1100


@pytest.mark.parametrize(
    ("mangle", "reason"),
    [
        (lambda d: d[:-1] + bytes([d[-1] ^ 1]), "tag"),  # a flipped tag bit
        (lambda d: d[:30] + b"X" + d[31:], "tag"),  # a changed byte of the body
        (lambda d: b"XX" + d[2:], "magic"),
        (lambda d: d[:10], "length"),
        (lambda d: d + b"\x00" * W.MAX_DATAGRAM, "length"),
    ],
)
def test_a_tampered_datagram_is_refused(mangle: Any, reason: str) -> None:
    data = W.seal(KEY, W.RTP, 1, 1, "node-a", "standup", "p_ada", b"\x80rtp")
    with pytest.raises(W.Refused) as refused:
        W.open_datagram(KEY, mangle(data))
    assert refused.value.reason == reason


def test_another_version_is_refused_as_such() -> None:
    """A node of another relay version (a cluster upgraded part way) is refused and
    named, never read as this version."""
    data = W.seal(KEY, W.RTP, 1, 1, "node-old", "standup", "p_ada", b"\x80rtp")
    for version in (0, 2, 255):
        with pytest.raises(W.Refused) as refused:
            W.open_datagram(KEY, data[:2] + bytes((version,)) + data[3:])
        assert (refused.value.reason, refused.value.node) == ("version", "node-old")


def test_another_secret_does_not_open_it() -> None:
    data = W.seal(W.relay_key("other"), W.RTP, 1, 1, "node-x", "standup", "", b"x")
    with pytest.raises(W.Refused) as refused:
        W.open_datagram(KEY, data)
    assert (refused.value.reason, refused.value.node) == ("tag", "node-x")


def test_an_opener_keeps_each_streams_fields_and_a_bounded_number_of_them() -> None:
    opener = W.Opener(KEY)
    for room, pid in (("standup", "ada"), ("standup", "bob"), ("retro", "ada"), ("standup", "ada")):
        data = W.seal(KEY, W.RTP, 1, 7, "node-a", room, pid, b"\x80" * 12)
        assert opener.open(data) == (W.RTP, 1, 7, ("node-a", room, pid), b"\x80" * 12)
    assert len(opener._routes) == 3
    for i in range(W.MAX_ROUTES + 5):
        opener.open(W.seal(KEY, W.RTP, 1, i, "node-a", "big", f"p{i}", b""))
    assert len(opener._routes) <= W.MAX_ROUTES
    # a bad tag adds nothing, whatever fields it claims
    forged = W.seal(W.relay_key("guess"), W.RTP, 1, 1, "node-a", "new", "x", b"")
    with pytest.raises(W.Refused):
        opener.open(forged)
    assert W.fields("node-a", "new", "x") not in opener._routes


def test_fields_are_bounded_when_sealing() -> None:
    with pytest.raises(ValueError):
        W.seal(KEY, W.RTP, 1, 1, "n" * 65, "room", "", b"")
    with pytest.raises(ValueError):
        W.seal(KEY, W.RTP, 1, 1, "", "room", "", b"")
    with pytest.raises(ValueError):
        W.seal(KEY, W.RTP, 1, 1, "n", "room", "", b"x" * (W.MAX_PAYLOAD + 1))


def test_the_replay_window() -> None:
    w = W.ReplayWindow()
    assert w.accept("a", 10, 5)
    assert not w.accept("a", 10, 5)  # the same datagram again
    assert w.accept("a", 10, 3)  # late, inside the window, first time
    assert not w.accept("a", 10, 3)
    assert w.accept("a", 10, 100)
    assert not w.accept("a", 10, 36)  # more than 64 behind
    assert w.accept("a", 10, 37)
    assert w.accept("a", 11, 1)  # a restarted process: a newer epoch starts over
    assert not w.accept("a", 10, 200)  # the previous process's traffic is over
    assert w.accept("b", 1, 1)  # per node


def test_track_descriptions_are_checked() -> None:
    good = W.Track("cam", "video", "VP8", 96, 90000, 0, False, [1, 2], ["l", "h"])
    assert W.decode_tracks(W.encode_tracks([good])) == [good]
    for bad in (
        W.Track("cam", "data", "VP8", 96, 90000, 0, False, [1], []),
        W.Track("cam", "video", "VP8", 200, 90000, 0, False, [1], []),
        W.Track("cam", "video", "VP8", 96, 90000, 0, False, [1, 2], ["l"]),
        W.Track("cam", "video", "VP8", 96, 90000, 0, False, [], []),
        W.Track("c" * 33, "video", "VP8", 96, 90000, 0, False, [1], []),
    ):
        with pytest.raises(W.Refused):
            W.decode_tracks(W.encode_tracks([bad]))
    with pytest.raises(W.Refused):
        W.decode_tracks(b"\xc1 not msgpack")


def test_refusals_are_logged_at_most_once_per_period(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    log = RefusalLog(every=10.0, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, "parley.sfu.relay.node"):
        logged = [log.refused("tag", "x", "10.0.0.9:5") for _ in range(1000)]
        now[0] = 10.5
        logged.append(log.refused("tag", "x", "10.0.0.9:5"))
        logged.append(log.refused("unknown node", "y", "10.0.0.9:5"))
    assert logged.count(True) == 3
    assert len(caplog.records) == 3
    counts = [r.getMessage().split("; ")[1].split(" ")[0] for r in caplog.records]
    assert counts == ["1", "1000", "1"]  # the 999 silent ones are counted in the next line


# -- two nodes -------------------------------------------------------------------------


class Network:
    """An in-memory UDP network: ``sendto`` hands the datagram to the relay at that address."""

    def __init__(self) -> None:
        self.at: dict[tuple[str, int], MediaRelay] = {}
        self.dropping = False

    def attach(self, relay: MediaRelay) -> None:
        self.at[(relay.host, relay.port)] = relay
        network = self

        class Transport:
            def sendto(self, data: bytes, address: tuple[str, int]) -> None:
                target = network.at.get(address)
                if target is not None and not network.dropping:
                    target.received(data, (relay.host, relay.port))

            def close(self) -> None:
                pass

        relay.transport = Transport()  # type: ignore[assignment]


def two_nodes(net: Network) -> tuple[MediaRelay, MediaRelay, Router, Router]:
    a = MediaRelay("node-a", "s3cret", "10.0.0.1", 7000, clock=lambda: 0.0)
    b = MediaRelay("node-b", "s3cret", "10.0.0.2", 7000, clock=lambda: 0.0)
    for relay in (a, b):
        net.attach(relay)
    a.set_peers({"node-b": ("10.0.0.2", 7000)})
    b.set_peers({"node-a": ("10.0.0.1", 7000)})
    ra, rb = Router(), Router()
    a.open_room("standup", ra)
    b.open_room("standup", rb)
    return a, b, ra, rb


def key(seq: int, ts: int, ssrc: int) -> bytes:
    return rtp(seq, ts, ssrc, payload=vp8_payload(True))


def delta(seq: int, ts: int, ssrc: int) -> bytes:
    return rtp(seq, ts, ssrc, payload=vp8_payload(False))


def test_a_subscriber_on_another_node_gets_the_stream_and_its_pli_reaches_the_publisher() -> None:
    net = Network()
    a, b, ra, rb = two_nodes(net)
    up = Wire()
    pub = ra.add_publisher("ada", up)
    pub.add_source("cam", "video", 1111, 100, "VP8", 90000)
    pub.add_source("mic", "audio", 2222, 111, "opus", 48000, audio_level_ext=1)
    a.set_targets("standup", ["node-b"])  # described to B at once
    stand_in = rb.publishers["ada"]
    assert stand_in.relayed_from == "node-a"
    assert sorted(stand_in.sources) == ["cam", "mic"]
    down = Wire()
    rb.add_subscriber("bob", down, audio_slots(1, 6000) + video_slots(1, 5000))
    # Bob's slot waits for a key frame: B asked A's publisher for one, over the relay
    assert up.plis() == [1111]
    pub.on_rtp(delta(10, 0, 1111), 0.0)
    pub.on_rtp(key(11, 3000, 1111), 0.03)
    pub.on_rtp(delta(12, 6000, 1111), 0.06)
    pub.on_rtp(audio(1, 960, 2222, 30), 0.06)
    got = [parse(p) for p in down.rtp()]
    assert [(g[0], g[3]) for g in got] == [(96, 5000), (96, 5000), (111, 6000)]
    # one copy per node: a second subscriber on B costs A nothing more
    sent = a.rooms["standup"].out.sent
    rb.add_subscriber("cy", Wire(), video_slots(1, 7000))
    pub.on_rtp(delta(13, 9000, 1111), 0.09)
    assert a.rooms["standup"].out.sent == sent + 1
    # a relayed stream is not relayed again (B has no target anyway, but not even tapped)
    assert all(src.tap is None for src in stand_in.all_sources())


def test_a_nack_from_the_far_node_is_answered_from_the_origins_cache() -> None:
    net = Network()
    a, b, ra, rb = two_nodes(net)
    pub = ra.add_publisher("ada", Wire())
    pub.add_source("cam", "video", 1111, 100, "VP8", 90000)
    a.set_targets("standup", ["node-b"])
    down = Wire()
    rb.add_subscriber("bob", down, video_slots(1, 5000))
    pub.on_rtp(key(1, 0, 1111), 0.0)
    net.dropping = True
    pub.on_rtp(delta(2, 3000, 1111), 0.03)  # lost between the nodes
    net.dropping = False
    # B sees the gap and NACKs; A resends 2 from its cache (here, before B forwards 3)
    pub.on_rtp(delta(3, 6000, 1111), 0.06)
    assert [parse(p)[1] - parse(down.rtp()[0])[1] for p in down.rtp()] == [0, 1, 2]
    assert a.rooms["standup"].out.resent == 1


def test_a_publisher_that_stops_or_goes_silent_is_dropped_on_the_far_node() -> None:
    net = Network()
    a, b, ra, rb = two_nodes(net)
    pub = ra.add_publisher("ada", Wire())
    pub.add_source("mic", "audio", 2222, 111, "opus", 48000)
    a.set_targets("standup", ["node-b"])
    assert "ada" in rb.publishers
    ra.remove_publisher("ada")  # its last track ended: an empty description
    assert "ada" not in rb.publishers
    pub = ra.add_publisher("ada", Wire())
    pub.add_source("mic", "audio", 2222, 111, "opus", 48000)
    a.tracks_changed("standup", "ada")
    assert "ada" in rb.publishers
    inbound = b.rooms["standup"].inbound
    inbound.expire(3.0)
    assert "ada" in rb.publishers
    inbound.expire(4.0)  # node A stopped describing it (A died)
    assert "ada" not in rb.publishers


def test_unknown_nodes_bad_tags_and_replays_disturb_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    net = Network()
    a, b, ra, rb = two_nodes(net)
    pub = ra.add_publisher("ada", Wire())
    pub.add_source("mic", "audio", 2222, 111, "opus", 48000)
    a.set_targets("standup", ["node-b"])
    down = Wire()
    rb.add_subscriber("bob", down, audio_slots(1, 6000))
    pub.on_rtp(audio(1, 960, 2222, 30), 0.0)
    assert len(down.rtp()) == 1
    mallory = MediaRelay("node-m", "s3cret", "10.0.0.66", 7000)  # the secret, not a member
    forged = mallory.seal(W.DESCRIBE, "standup", "ada", W.encode_tracks([]))
    bad_tag = W.seal(W.relay_key("guess"), W.RTP, 1, 1, "node-a", "standup", "ada", b"x" * 20)
    spoofed = a.seal(W.RTP, "standup", "ada", audio(2, 1920, 2222, 30))
    fresh = a.seal(W.RTP, "standup", "ada", audio(2, 1920, 2222, 30))
    other_version = fresh[:2] + b"\x02" + fresh[3:]  # a node upgraded before this one
    with caplog.at_level(logging.WARNING, "parley.sfu.relay.node"):
        b.received(forged, ("10.0.0.66", 7000))
        b.received(bad_tag, ("10.0.0.1", 7000))
        b.received(b"\x00" * 3, ("10.0.0.1", 7000))
        b.received(other_version, ("10.0.0.1", 7000))
        b.received(spoofed, ("10.0.0.66", 7000))  # A's datagram, from another address
        b.received(spoofed, ("10.0.0.1", 7000))  # now from A: accepted once
        b.received(spoofed, ("10.0.0.1", 7000))  # the same again: a replay
    assert dict(b.refused) == {
        "unknown node": 1, "tag": 1, "length": 1, "version": 1, "address": 1, "replay": 1,
    }  # fmt: skip
    assert "unknown node" in caplog.text and "'node-m'" in caplog.text
    assert "refused (version)" in caplog.text and "'node-a'" in caplog.text
    assert "ada" in rb.publishers  # the forged "stopped publishing" changed nothing
    assert len(down.rtp()) == 2  # the one accepted packet; nothing else reached Bob
    pub.on_rtp(audio(3, 2880, 2222, 30), 0.04)
    assert len(down.rtp()) == 3


async def test_two_relays_over_loopback_udp() -> None:
    a = MediaRelay("node-a", "s3cret", "127.0.0.1", 0)
    b = MediaRelay("node-b", "s3cret", "127.0.0.1", 0)
    await a.start()
    await b.start()
    try:
        a.set_peers({"node-b": ("127.0.0.1", b.port)})
        b.set_peers({"node-a": ("127.0.0.1", a.port)})
        ra, rb = Router(), Router()
        a.open_room("standup", ra)
        b.open_room("standup", rb)
        up = Wire()
        pub = ra.add_publisher("ada", up)
        pub.add_source("mic", "audio", 2222, 111, "opus", 48000)
        a.set_targets("standup", ["node-b"])
        for _ in range(100):
            if "ada" in rb.publishers:
                break
            await asyncio.sleep(0.01)
        down = Wire()
        rb.add_subscriber("bob", down, audio_slots(1, 6000))
        for seq in range(1, 6):
            pub.on_rtp(audio(seq, 960 * seq, 2222, 30), 0.02 * seq)
        for _ in range(100):
            if len(down.rtp()) == 5:
                break
            await asyncio.sleep(0.01)
        assert [parse(p)[3] for p in down.rtp()] == [6000] * 5
        assert b.accepted >= 6 and not b.refused
        _ = R  # (rtp helpers imported for the module's readers)
    finally:
        a.close()
        b.close()


def _loopback6() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.parametrize("batched", [True, False], ids=["recvmmsg", "event-loop-endpoint"])
@pytest.mark.parametrize("host", ["127.0.0.1", "::1"], ids=["ipv4", "ipv6"])
async def test_a_started_relay_takes_a_burst_and_refuses_bad_datagrams_on_its_socket(
    batched: bool, host: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Both read paths, over IPv4 and IPv6 (a private network may be either): the sender's
    # address each path reports must match the peer's as the directory has it.
    if not batched:
        monkeypatch.setattr(batch_recv, "available", lambda: False)
    elif not batch_recv.available():
        pytest.skip("no recvmmsg on this system")
    if ":" in host and not _loopback6():
        pytest.skip("no IPv6 loopback here")
    a = MediaRelay("node-a", "s3cret", host, 0)
    b = MediaRelay("node-b", "s3cret", host, 0)
    await a.start()
    await b.start()
    mallory = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
    try:
        assert (b.receiver is not None) is batched
        a.set_peers({"node-b": (host, b.port)})
        b.set_peers({"node-a": (host, a.port)})
        # more than one batch's worth, back to back, for a room not open on B
        burst = [
            a.seal(W.RTP, "standup", "ada", b"\x80" * 200) for _ in range(batch_recv.BATCH * 2 + 6)
        ]
        for datagram in burst:
            a.send("node-b", datagram)
        for _ in range(200):
            if b.unrouted == len(burst):
                break
            await asyncio.sleep(0.01)
        assert b.accepted == b.unrouted == len(burst)
        # from another socket of the same host: too long, garbage, a replay of A's
        mallory.sendto(burst[0][:20] + b"\x00" * W.MAX_DATAGRAM, (host, b.port))
        mallory.sendto(b"\x00" * 40, (host, b.port))
        mallory.sendto(burst[5], (host, b.port))
        for _ in range(200):
            if sum(b.refused.values()) == 3:
                break
            await asyncio.sleep(0.01)
        assert dict(b.refused) == {"length": 1, "magic": 1, "replay": 1}
        assert b.accepted == len(burst)
    finally:
        mallory.close()
        a.close()
        b.close()


# -- the options ---------------------------------------------------------------------


def relay_settings(monkeypatch: pytest.MonkeyPatch, *argv: str, secret: str | None) -> Any:
    from parley.cli import build_parser, settings_from

    for name in ("PARLEY_RELAY_SECRET", "PARLEY_RELAY_PORT", "PARLEY_BROKER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PARLEY_SECRET", "x" * 32)
    if secret is not None:
        monkeypatch.setenv("PARLEY_RELAY_SECRET", secret)
    return settings_from(build_parser().parse_args(["serve", *argv]))


def test_the_relay_options_and_their_clear_refusals(monkeypatch: pytest.MonkeyPatch) -> None:
    cluster = ("--broker", "redis://127.0.0.1:6379/0")
    s = relay_settings(
        monkeypatch, *cluster, "--relay-port", "41000", "--relay-ip", "10.0.0.5", secret="k"
    )
    assert (s.relay_port, s.relay_ip, s.relay_secret) == (41000, "10.0.0.5", "k")
    six = relay_settings(
        monkeypatch, *cluster, "--relay-port", "0", "--relay-ip", "[fd00::5]", secret="k"
    )
    assert six.relay_ip == "fd00::5"  # as MediaRelay binds it
    assert relay_settings(monkeypatch, *cluster, secret="k").relay_port is None  # off
    for argv, secret, says in (
        ((*cluster, "--relay-port", "41000"), None, "PARLEY_RELAY_SECRET"),
        (("--relay-port", "41000"), "k", "--broker"),
        ((*cluster, "--media", "mesh", "--relay-port", "41000"), "k", "--media sfu"),
        ((*cluster, "--relay-port", "70000"), "k", "UDP port"),
        # the other nodes send to it: this node's own address, not a wildcard or a name
        ((*cluster, "--relay-port", "0", "--relay-ip", "0.0.0.0"), "k", "not a wildcard"),
        ((*cluster, "--relay-port", "0", "--relay-ip", "::"), "k", "not a wildcard"),
        ((*cluster, "--relay-port", "0", "--relay-ip", "node-b.internal"), "k", "IP address"),
        ((*cluster, "--relay-port", "0", "--relay-ip", "239.1.2.3"), "k", "multicast"),
    ):
        with pytest.raises(SystemExit) as stop:
            relay_settings(monkeypatch, *argv, secret=secret)
        assert says in str(stop.value), stop.value
