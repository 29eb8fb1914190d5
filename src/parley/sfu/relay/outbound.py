"""The origin side of one room's relay: streams published here go to the other nodes.

:class:`RelayOut` is the room router's relay tap (:meth:`Router.set_relay`): each RTP
packet of a stream published on this node is sealed once and sent to every *target*
node (a node with media participants in the room), whatever number of subscribers it
has.  Sender reports follow the same way (lip sync on the far side).  Every second, and
whenever a publisher's tracks change, each publisher's tracks are *described* to the
targets (:class:`~parley.sfu.relay.wire.Track`): that is what lets a node build a
stand-in publisher, and an empty description says the publisher stopped.

Feedback from a target (:meth:`RelayOut.feedback`): a PLI or FIR asks the publisher for
a key frame (through :meth:`Source.request_keyframe`, so at most one per ``pli_interval``
however many nodes ask); a NACK is answered from this node's retransmission cache, to
that node only; receiver reports and REMB end here (the publisher's rate is this node's
business: its own subscribers and transport-cc).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from ..forwarder import Publisher, Router, Source
from ..rtp import build_sr, parse_rtcp
from .wire import DESCRIBE, RTCP, RTP, Track, encode_tracks

__all__ = ["RelayOut", "Wire", "describe"]

#: NACKed packets resent per feedback packet at most (a NACK lists at most 17 per entry).
MAX_RESEND = 64


class Wire(Protocol):
    """What a room's relay needs of the node's relay socket."""

    def seal(self, kind: int, room: str, pid: str, payload: bytes | bytearray) -> bytes: ...

    def send(self, node: str, datagram: bytes) -> None: ...


def describe(pub: Publisher) -> list[Track]:
    """``pub``'s tracks as the relay forwards them."""
    tracks = []
    for main in pub.sources.values():
        streams = main.streams()
        tracks.append(
            Track(
                track_id=main.track_id,
                kind=main.kind,
                codec=main.codec,
                payload_type=main.payload_type,
                clock_rate=main.clock_rate,
                audio_level_ext=main.audio_level_ext,
                screen=main.screen,
                ssrcs=[s.ssrc for s in streams],
                rids=[s.rid for s in streams] if main.layers is not None else [],
            )
        )
    return tracks


class RelayOut:
    """One room's streams published here, towards the target nodes (a router :class:`Tap`)."""

    def __init__(self, room: str, router: Router, wire: Wire) -> None:
        self.room = room
        self.router = router
        self.wire = wire
        self.targets: tuple[str, ...] = ()
        self.sent = 0  # datagrams sent (all targets)
        self.resent = 0  # packets resent for NACKs
        self.keyframes_asked = 0  # PLIs/FIRs received from targets

    # -- the tap (hot path) --------------------------------------------------------
    def rtp(self, src: Source, data: bytes, now: float) -> None:
        targets = self.targets
        if not targets:
            return
        datagram = self.wire.seal(RTP, self.room, src.pid, data)
        send = self.wire.send
        for node in targets:
            send(node, datagram)
        self.sent += len(targets)

    def sr(self, src: Source, ntp: int, rtp_ts: int, now: float) -> None:
        if self.targets:
            report = build_sr(src.ssrc, ntp, rtp_ts, src.received, src.octets)
            self._to_all(self.wire.seal(RTCP, self.room, src.pid, report))

    def ended(self, src: Source) -> None:
        self.describe(src.pid)

    # -- descriptions --------------------------------------------------------------
    def set_targets(self, nodes: Iterable[str]) -> None:
        """The nodes to relay to now; new ones get every description at once."""
        targets = tuple(sorted(set(nodes)))
        new = set(targets) - set(self.targets)
        self.targets = targets
        for node in sorted(new):
            for pid in self._local_publishers():
                self.describe(pid, to=(node,))

    def describe(self, pid: str, to: Iterable[str] | None = None) -> None:
        """Send ``pid``'s tracks (none: it stopped publishing here) to ``to`` (or all)."""
        nodes = self.targets if to is None else tuple(to)
        if not nodes:
            return
        pub = self.router.publishers.get(pid)
        tracks = describe(pub) if pub is not None and not pub.relayed_from else []
        datagram = self.wire.seal(DESCRIBE, self.room, pid, encode_tracks(tracks))
        for node in nodes:
            self.wire.send(node, datagram)

    def describe_all(self) -> None:
        """Every publisher of this node again (each second: a lost one is repaired, and
        the far side drops publishers it stops hearing about)."""
        for pid in self._local_publishers():
            self.describe(pid)

    def _local_publishers(self) -> list[str]:
        return [pid for pid, pub in self.router.publishers.items() if not pub.relayed_from]

    def _to_all(self, datagram: bytes) -> None:
        for node in self.targets:
            self.wire.send(node, datagram)

    # -- feedback from a target --------------------------------------------------------
    def feedback(self, node: str, pid: str, payload: bytes, now: float) -> None:
        """RTCP from ``node`` about ``pid``'s streams: key frame requests and NACKs."""
        pub = self.router.publishers.get(pid)
        if pub is None or pub.relayed_from:
            return
        for fb in parse_rtcp(payload):
            if fb.kind in ("pli", "fir"):
                for ssrc in fb.media_ssrcs:
                    src = pub.by_ssrc.get(ssrc)
                    if src is not None:
                        self.keyframes_asked += 1
                        src.request_keyframe(now)
            elif fb.kind == "nack" and fb.media_ssrcs:
                src = pub.by_ssrc.get(fb.media_ssrcs[0])
                if src is None:
                    continue
                for seq in fb.lost[:MAX_RESEND]:
                    pkt = src.cache.get(seq)
                    if pkt is not None:
                        self.resent += 1
                        self.wire.send(node, self.wire.seal(RTP, self.room, pid, pkt))
