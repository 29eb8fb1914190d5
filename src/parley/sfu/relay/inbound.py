"""The edge side of one room's relay: another node's publishers, as if they were here.

For each publisher another node describes, :class:`RelayIn` keeps a stand-in
:class:`~parley.sfu.forwarder.Publisher` in this node's router (``relayed_from`` names
the node): its packets come from the relay instead of a peer connection, and everything
else (last-N, the dominant speaker, simulcast layers, NACKs, key frames for this node's
subscribers) is the router's ordinary work.  What the router sends such a publisher
(PLI, NACK, receiver reports) goes back over the relay to its node
(:meth:`RelayOut.feedback <parley.sfu.relay.outbound.RelayOut.feedback>`).

A stand-in goes when its node describes it with no tracks, when another node describes
the same participant (it moved), or when nothing described it for ``EXPIRE`` seconds
(its node stopped).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from ..forwarder import Publisher, Router, Source
from .outbound import Wire
from .wire import FEEDBACK, Track

__all__ = ["RelayIn"]

log = logging.getLogger(__name__)

#: Seconds without a description after which a relayed publisher is dropped (its node
#: describes it every second).
EXPIRE = 3.5
#: Relayed publishers one room holds at most (cluster nodes are trusted, but bounded).
MAX_PUBLISHERS = 1000


def _shape(src: Source) -> tuple[str, str, tuple[str, ...], int]:
    rids = tuple(s.rid for s in src.layers) if src.layers is not None else ()
    return (src.kind, src.codec, rids, 0 if rids else src.ssrc)


def _wanted_shape(t: Track) -> tuple[str, str, tuple[str, ...], int]:
    return (t.kind, t.codec.upper(), tuple(t.rids), 0 if t.rids else t.ssrcs[0])


class RelayIn:
    """One room's publishers of other nodes, in this node's router."""

    def __init__(self, room: str, router: Router, wire: Wire) -> None:
        self.room = room
        self.router = router
        self.wire = wire
        self.described: dict[str, float] = {}  # pid -> when last described
        self.received = 0  # RTP packets handed to the router

    def on_describe(self, node: str, pid: str, tracks: list[Track], now: float) -> None:
        router = self.router
        pub = router.publishers.get(pid)
        if pub is not None and not pub.relayed_from:
            return  # publishing here: this node's own connection is the truth
        if pub is not None and pub.relayed_from != node:
            if not tracks:
                return  # the node it left says it stopped there: no news
            log.info("relay: %s of %s now publishes on node %s", pid, self.room, node)
            router.remove_publisher(pid)
            pub = None
        if not tracks:
            if pub is not None:
                self.drop(pid)
            return
        if pub is None:
            if len(self.described) >= MAX_PUBLISHERS:
                return
            pub = router.add_publisher(pid, self._feedback_to(node, pid))
            pub.relayed_from = node
        self.described[pid] = now
        _sync(pub, tracks)

    def _feedback_to(self, node: str, pid: str) -> Callable[[bytes | bytearray], None]:
        wire, room = self.wire, self.room

        def send_rtcp(packet: bytes | bytearray) -> None:
            wire.send(node, wire.seal(FEEDBACK, room, pid, packet))

        return send_rtcp

    def on_rtp(self, node: str, pid: str, data: bytes, now: float) -> None:
        pub = self.router.publishers.get(pid)
        if pub is None or pub.relayed_from != node or len(data) < 12:
            return
        self.received += 1
        pub.on_rtp(data, now)

    def on_rtcp(self, node: str, pid: str, data: bytes, now: float) -> None:
        pub = self.router.publishers.get(pid)
        if pub is not None and pub.relayed_from == node:
            pub.on_rtcp(data, now)

    def expire(self, now: float) -> None:
        for pid, seen in list(self.described.items()):
            if now - seen > EXPIRE:
                log.info("relay: %s of %s no longer described; dropped", pid, self.room)
                self.drop(pid)

    def drop(self, pid: str) -> None:
        self.described.pop(pid, None)
        pub = self.router.publishers.get(pid)
        if pub is not None and pub.relayed_from:
            self.router.remove_publisher(pid)

    def close(self) -> None:
        for pid in list(self.described):
            self.drop(pid)


def _sync(pub: Publisher, tracks: list[Track]) -> None:
    """Make ``pub``'s sources those ``tracks`` describe (unchanged ones are kept)."""
    wanted = {t.track_id: t for t in tracks}
    for track_id, src in list(pub.sources.items()):
        t = wanted.get(track_id)
        if t is None or _shape(src) != _wanted_shape(t):
            pub.remove_source(track_id)
    for track_id, t in wanted.items():
        if track_id not in pub.sources:
            if t.rids:
                pub.add_source(
                    track_id, "video", 0, t.payload_type, t.codec, t.clock_rate,
                    screen=t.screen, rids=t.rids, mid=track_id,
                )  # fmt: skip
            else:
                pub.add_source(
                    track_id, t.kind, t.ssrcs[0], t.payload_type, t.codec, t.clock_rate,
                    audio_level_ext=t.audio_level_ext, screen=t.screen,
                )  # fmt: skip
        if t.rids:
            layers = zip(t.rids, t.ssrcs, strict=True)
            known: dict[tuple[str, str], tuple[int, int | None]] = {
                (track_id, rid): (ssrc, None) for rid, ssrc in layers if ssrc
            }
            pub.bind_layers(track_id, known)
