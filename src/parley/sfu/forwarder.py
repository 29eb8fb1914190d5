"""The forwarding core of the SFU: no I/O, no aiortc, plain objects and callbacks.

A :class:`Router` holds one room's media, composing the SFU's policies, each a module
of plain functions or small state with its own unit tests:

* :mod:`.speaker`: the dominant speaker, from audio levels;
* :mod:`.last_n`: which tracks each subscriber's slots show;
* :mod:`.layers`: which simulcast layer a slot shows;
* :mod:`.bandwidth`: the per-subscriber rule lowering layers under loss or a low REMB;
* :mod:`.upstream`: NACKs, key frame requests, receiver reports and REMB to publishers.

This module is the forwarding table itself and the packet path.  Each participant may be a
:class:`Publisher` (its incoming tracks are :class:`Source` objects) and a
:class:`Subscriber` (a fixed set of outgoing :class:`Slot` streams negotiated once:
``last_n`` video slots and some audio slots).  The router assigns sources to slots
(last-N by speaking activity, screen shares first, audio of the most recent speakers);
when a slot changes source its :class:`~parley.sfu.rtp.StreamRewriter` keeps the
outgoing sequence numbers and timestamps continuous and video waits for a key frame.

All callbacks take *plaintext* RTP/RTCP; the caller's send function protects (SRTP)
and sends.  Time is passed in explicitly (seconds, monotonic), which keeps the class
deterministic in tests.

Hot path per incoming RTP packet: one ``dict`` lookup by SSRC, a cache store, and per
assigned slot one :meth:`StreamRewriter.rewrite` and one send call.  A publisher that
negotiated transport-cc also records each packet's transport-wide sequence number
(:class:`~parley.sfu.twcc.TwccRecorder`); :meth:`Router.send_transport_feedback` reports
them every 100 ms, and such a publisher gets no fixed REMB.

Simulcast: a published video track may come as 2-3 *layers* (RFC 8853, one SSRC each,
told apart by the rtp-stream-id header extension of their first packets).  Each layer is
a :class:`Source` of its own (cache, NACK, receiver reports); the track is represented in
``Publisher.sources`` and in last-N by its top layer (``Source.main``).  A slot shows one
layer of a track; the router picks it every tick (:meth:`Router.tick`) from the size the
subscriber renders the slot at (``Subscriber.set_view``) and a simple bandwidth rule
(:mod:`.bandwidth`), and switches only at a key frame of the target layer (asked
for with a PLI on that layer's SSRC), with the same continuity as a source switch.

Codecs: a video source is VP8 or H.264 (each publisher's own choice); a subscriber slot
may accept several codecs (``SlotSpec.codecs``: each with the subscriber's payload type
and RTX payload type), and carries any source whose codec it accepts: the slot's
rewriter takes the payload type of the source's codec when the source is assigned, so
the per-packet path is the same for every codec.  Key frames are recognised per codec
(:func:`~parley.sfu.codecs.keyframe_functions`); a source whose codec no slot of a
subscriber accepts gets no slot there.
"""

from __future__ import annotations

import itertools
import logging
import os
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from . import last_n, layers, upstream
from .bandwidth import BandwidthRule
from .codecs import keyframe_functions
from .rtp import (
    RetransmitCache,
    StreamRewriter,
    audio_level,
    build_nack,
    build_pli,
    build_remb,
    build_rr,
    build_sr,
    extension_value,
    parse_rtcp,
    rtx_unwrap,
    rtx_wrap,
)
from .speaker import SpeakerDetector
from .twcc import TwccRecorder

__all__ = [
    "ForwardingStats",
    "Publisher",
    "Router",
    "SendFn",
    "Tap",
    "Slot",
    "SlotSpec",
    "Source",
    "Subscriber",
]

SendFn = Callable[[bytes | bytearray], None]
LayoutFn = Callable[[str, list[dict[str, str | None]]], None]
SpeakerFn = Callable[[str | None], None]

_H = struct.Struct("!H")
_I = struct.Struct("!I")
_FIRST_FEEDBACK_LOG = 10  # transport-cc: logged after this many, then every 1000
log = logging.getLogger(__name__)
_join_counter = itertools.count()


class Tap(Protocol):
    """Something that sees every stream's packets as they arrive (a recording).

    ``rtp`` runs on the packet path: it must only queue the packet (cheap, no I/O)."""

    def rtp(self, src: Source, data: bytes, now: float) -> None: ...

    def sr(self, src: Source, ntp: int, rtp_ts: int, now: float) -> None: ...

    def ended(self, src: Source) -> None: ...


class _Taps:
    """Two taps as one (a recording and the relay)."""

    __slots__ = ("first", "second")

    def __init__(self, first: Tap, second: Tap) -> None:
        self.first, self.second = first, second

    def rtp(self, src: Source, data: bytes, now: float) -> None:
        self.first.rtp(src, data, now)
        self.second.rtp(src, data, now)

    def sr(self, src: Source, ntp: int, rtp_ts: int, now: float) -> None:
        self.first.sr(src, ntp, rtp_ts, now)
        self.second.sr(src, ntp, rtp_ts, now)

    def ended(self, src: Source) -> None:
        self.first.ended(src)
        self.second.ended(src)


def _random_ssrc() -> int:
    return int.from_bytes(os.urandom(4), "big") or 1


def _never_key(data: bytes | bytearray) -> bool:
    return False


def _no_size(data: bytes | bytearray) -> tuple[int, int] | None:
    return None


class Source:
    """One published track (one SSRC, plus its RTX SSRC when negotiated)."""

    __slots__ = (
        "publisher",
        "pid",
        "track_id",
        "kind",
        "ssrc",
        "payload_type",
        "codec",
        "clock_rate",
        "rtx_ssrc",
        "audio_level_ext",
        "screen",
        "cache",
        "sinks",
        "needs_key",
        "is_key",
        "key_size",
        "last_pli",
        "pli_sent",
        "pli_suppressed",
        "received",
        "duplicates",
        "hi_seq",
        "cycles",
        "base_seq",
        "expected_prior",
        "received_prior",
        "nacks_sent",
        "nacked",
        "loud",
        "energy",
        "sr_ntp",
        "sr_rtp",
        "sr_time",
        "remb",
        "main",
        "layers",
        "layer",
        "rid",
        "mid",
        "pending",
        "octets",
        "rate",
        "rate_octets",
        "rate_time",
        "seen_at",
        "seen_count",
        "width",
        "height",
        "tap",
    )

    def __init__(
        self,
        publisher: Publisher,
        track_id: str,
        kind: str,
        ssrc: int,
        payload_type: int,
        codec: str,
        clock_rate: int,
        *,
        rtx_ssrc: int | None = None,
        audio_level_ext: int = 0,
        screen: bool = False,
        cache_size: int = 512,
    ) -> None:
        self.publisher = publisher
        self.pid = publisher.pid
        self.track_id = track_id
        self.kind = kind
        self.ssrc = ssrc
        self.payload_type = payload_type
        self.codec = codec.upper()
        self.clock_rate = clock_rate
        self.rtx_ssrc = rtx_ssrc
        self.audio_level_ext = audio_level_ext if kind == "audio" else 0
        self.screen = screen
        self.cache = RetransmitCache(cache_size)
        self.sinks: list[Slot] = []
        # video of a known codec: slots start (and switch layers) at its key frames
        functions = keyframe_functions(self.codec) if kind == "video" else None
        self.needs_key = functions is not None
        self.is_key, self.key_size = functions or (_never_key, _no_size)
        self.last_pli = float("-inf")
        self.pli_sent = 0
        self.pli_suppressed = 0
        self.received = 0
        self.duplicates = 0
        self.hi_seq = 0
        self.cycles = 0
        self.base_seq = 0
        self.expected_prior = 0
        self.received_prior = 0
        self.nacks_sent = 0
        self.nacked: dict[int, float] = {}  # seq -> time of the NACK (upstream)
        self.loud = 0
        self.energy = 0
        self.sr_ntp = 0
        self.sr_rtp = 0
        self.sr_time = -1.0
        self.remb = 0
        # simulcast: the track's layers (lowest first), shared by them; None otherwise
        self.main: Source = self  # the track's representative (its top layer)
        self.layers: list[Source] | None = None
        self.layer = 0
        self.rid = ""
        self.mid = ""
        self.pending: list[Slot] = []  # slots switching to this layer at its next key frame
        self.octets = 0
        self.rate = 0.0  # bit/s over the last second (Router.tick)
        self.rate_octets = 0
        self.rate_time = -1.0
        self.seen_at = float("-inf")  # last tick at which packets had arrived
        self.seen_count = 0
        self.width = 0  # from the latest key frame (simulcast layers only)
        self.height = 0
        self.tap: Tap | None = publisher.router.tap_for(publisher)  # recording, relay

    # -- hot path ---------------------------------------------------------
    def receive(self, data: bytes, now: float) -> None:
        """Handle one plaintext RTP packet of this source."""
        seq = _H.unpack_from(data, 2)[0]
        if self.received:
            d = (seq - self.hi_seq) & 0xFFFF
            if d == 0:
                self.duplicates += 1
                return
            if d < 0x8000:
                if d > 1 and self.kind == "video":
                    self.publisher.router.nack_upstream(self, seq, d - 1, now)
                if seq < self.hi_seq:
                    self.cycles += 0x10000
                self.hi_seq = seq
            else:
                if seq in self.cache:
                    self.duplicates += 1
                    return
                if self.nacked:
                    self.nacked.pop(seq, None)
        else:
            self.hi_seq = self.base_seq = seq
        self.received += 1
        self.octets += len(data)
        self.cache.put(seq, data)
        if self.tap is not None:
            self.tap.rtp(self, data, now)
        if self.layers is not None and self.is_key(data):
            self._layer_keyframe(data, now)
        if self.audio_level_ext:
            level = audio_level(data, self.audio_level_ext)
            if 0 <= level <= self.publisher.router.speakers.speech_level:
                self.loud += 1
                self.energy += 127 - level
        keyframe = -1
        for slot in self.sinks:
            if slot.waiting_key:
                if keyframe < 0:
                    keyframe = 1 if self.is_key(data) else 0
                if not keyframe:
                    continue
                slot.waiting_key = False
            out = slot.rewriter.rewrite(data, now)
            if out is not None:
                slot.send(out)

    def _layer_keyframe(self, data: bytes, now: float) -> None:
        """A simulcast layer's key frame starts: note its size, switch the waiting slots."""
        size = self.key_size(data)
        if size is not None:
            self.width, self.height = size
        if self.pending:
            pending, self.pending = self.pending, []
            for slot in pending:
                slot.switch_to(self)

    # -- control ----------------------------------------------------------
    def request_keyframe(self, now: float) -> bool:
        """Send a PLI to the publisher unless one was sent less than ``pli_interval`` ago."""
        router = self.publisher.router
        if not self.ssrc:
            return False  # a simulcast layer not seen yet
        if not upstream.pli_allowed(self.last_pli, now, router.pli_interval):
            self.pli_suppressed += 1
            return False
        self.last_pli = now
        self.pli_sent += 1
        self.publisher.send_rtcp(build_pli(router.rtcp_ssrc, self.ssrc))
        return True

    def receiver_report_block(self, now: float) -> upstream.ReportBlock:
        """This stream's RR report block (the counts restart for the next one)."""
        block, self.expected_prior = upstream.report_block(
            self.ssrc,
            received=self.received,
            base_seq=self.base_seq,
            ext_highest=self.cycles + self.hi_seq,
            expected_prior=self.expected_prior,
            received_prior=self.received_prior,
            sr_ntp=self.sr_ntp,
            sr_time=self.sr_time,
            now=now,
        )
        self.received_prior = self.received
        return block

    def update_rate(self, now: float) -> None:
        """Bit rate over the last second and when packets last arrived (every tick)."""
        if self.received != self.seen_count:
            self.seen_count = self.received
            self.seen_at = now
        if self.rate_time < 0:
            self.rate_time, self.rate_octets = now, self.octets
        elif now - self.rate_time >= 1.0:
            self.rate = (self.octets - self.rate_octets) * 8 / (now - self.rate_time)
            self.rate_time, self.rate_octets = now, self.octets

    def streams(self) -> list[Source]:
        """This track's streams: its layers, or itself."""
        return self.layers if self.layers is not None else [self]

    def __repr__(self) -> str:
        rid = f" rid={self.rid}" if self.rid else ""
        return f"Source({self.publisher.pid}/{self.track_id} {self.kind} ssrc={self.ssrc}{rid})"


class Publisher:
    """The incoming side of one participant's publishing connection."""

    def __init__(self, router: Router, pid: str, send_rtcp: SendFn) -> None:
        self.router = router
        self.pid = pid
        self.send_rtcp = send_rtcp
        self.sources: dict[str, Source] = {}
        self.by_ssrc: dict[int, Source] = {}
        self.by_rtx: dict[int, Source] = {}
        self.unknown_ssrc = 0
        self.last_active = float("-inf")
        self.order = next(_join_counter)
        #: the node this publisher's packets come from, over the relay ("": published here)
        self.relayed_from = ""
        # simulcast layers by (mid, rid), bound to SSRCs by their first packets
        self.rids: dict[tuple[str, str], Source] = {}
        self.rid_ext = 0
        self.rrid_ext = 0
        self.mid_ext = 0
        # transport-wide congestion control: arrival times reported to the browser
        self.twcc: TwccRecorder | None = None

    def enable_twcc(self, ext_id: int) -> None:
        """Record transport-wide sequence numbers (header extension ``ext_id``) and send
        transport-cc feedback instead of REMB (``ext_id`` 0: back to REMB)."""
        if ext_id <= 0:
            self.twcc = None
        elif self.twcc is None or self.twcc.ext_id != ext_id:
            self.twcc = TwccRecorder(ext_id)

    def add_source(
        self,
        track_id: str,
        kind: str,
        ssrc: int,
        payload_type: int,
        codec: str,
        clock_rate: int,
        *,
        rtx_ssrc: int | None = None,
        audio_level_ext: int = 0,
        screen: bool = False,
        rids: Sequence[str] | None = None,
        mid: str = "",
        rid_ext: int = 0,
        rrid_ext: int = 0,
        mid_ext: int = 0,
    ) -> Source:
        """Add a track; with ``rids`` (lowest quality first) a simulcast video track whose
        layers' SSRCs are learnt from the rtp-stream-id extension ``rid_ext`` (and their
        RTX SSRCs from repaired-rtp-stream-id ``rrid_ext``); ``ssrc`` is then ignored."""
        if track_id in self.sources:
            self.remove_source(track_id, relayout=False)
        if rids:
            return self._add_simulcast(
                track_id, list(rids), mid, payload_type, codec, clock_rate, screen,
                rid_ext, rrid_ext, mid_ext,
            )  # fmt: skip
        src = Source(
            self,
            track_id,
            kind,
            ssrc,
            payload_type,
            codec,
            clock_rate,
            rtx_ssrc=rtx_ssrc,
            audio_level_ext=audio_level_ext,
            screen=screen,
            cache_size=self.router.cache_size,
        )
        self.sources[track_id] = src
        self.by_ssrc[ssrc] = src
        if rtx_ssrc is not None:
            self.by_rtx[rtx_ssrc] = src
        self.router.relayout()
        return src

    def _add_simulcast(
        self,
        track_id: str,
        rids: list[str],
        mid: str,
        payload_type: int,
        codec: str,
        clock_rate: int,
        screen: bool,
        rid_ext: int,
        rrid_ext: int,
        mid_ext: int,
    ) -> Source:
        layers = [
            Source(
                self,
                track_id,
                "video",
                0,
                payload_type,
                codec,
                clock_rate,
                screen=screen,
                cache_size=self.router.cache_size,
            )
            for _ in rids
        ]
        for i, (layer, rid) in enumerate(zip(layers, rids, strict=True)):
            layer.layers = layers
            layer.layer = i
            layer.rid = rid
            layer.mid = mid
            layer.main = layers[-1]
            self.rids[(mid, rid)] = layer
        self.rid_ext, self.rrid_ext, self.mid_ext = rid_ext, rrid_ext, mid_ext
        self.sources[track_id] = layers[-1]
        self.router.relayout()
        return layers[-1]

    def layer_ssrcs(self, track_id: str) -> dict[tuple[str, str], tuple[int, int | None]]:
        """A simulcast track's learnt SSRCs: (mid, rid) -> (SSRC, RTX SSRC)."""
        main = self.sources.get(track_id)
        if main is None or main.layers is None:
            return {}
        return {(s.mid, s.rid): (s.ssrc, s.rtx_ssrc) for s in main.layers if s.ssrc}

    def bind_layers(
        self, track_id: str, ssrcs: dict[tuple[str, str], tuple[int, int | None]]
    ) -> None:
        """Give a re-added simulcast track the SSRCs its layers had: a browser that changes
        codec keeps its streams' SSRCs and no longer sends their rid extension."""
        main = self.sources.get(track_id)
        if main is None or main.layers is None:
            return
        for layer in main.layers:
            known = ssrcs.get((layer.mid, layer.rid))
            if known is None or layer.ssrc:
                continue
            layer.ssrc, rtx = known
            self.by_ssrc[layer.ssrc] = layer
            if rtx is not None:
                layer.rtx_ssrc = rtx
                self.by_rtx[rtx] = layer

    def remove_source(self, track_id: str, *, relayout: bool = True) -> None:
        main = self.sources.pop(track_id, None)
        if main is None:
            return
        if main.tap is not None:
            main.tap.ended(main)
        for src in main.streams():
            if self.by_ssrc.get(src.ssrc) is src:
                del self.by_ssrc[src.ssrc]
            if src.rtx_ssrc is not None and self.by_rtx.get(src.rtx_ssrc) is src:
                del self.by_rtx[src.rtx_ssrc]
            if self.rids.get((src.mid, src.rid)) is src:
                del self.rids[(src.mid, src.rid)]
            for slot in list(src.sinks) + list(src.pending):
                slot.assign(None, 0.0)
        if relayout:
            self.router.relayout()

    def all_sources(self) -> list[Source]:
        """Every stream: plain sources and each simulcast layer."""
        return [s for main in self.sources.values() for s in main.streams()]

    def _bind_layer(self, data: bytes, ssrc: int) -> bool:
        """An unknown SSRC: bind it to a simulcast layer by its rid extension, if it has one."""
        mid = b""
        if self.mid_ext:
            mid = extension_value(data, self.mid_ext) or b""
        for ext, repaired in ((self.rid_ext, False), (self.rrid_ext, True)):
            if not ext:
                continue
            value = extension_value(data, ext)
            if not value:
                continue
            rid = value.decode("ascii", "replace")
            layer = self.rids.get((mid.decode("ascii", "replace"), rid))
            if layer is None:
                layer = next((s for (_, r), s in self.rids.items() if r == rid), None)
            if layer is None:
                return False
            if repaired:
                if layer.rtx_ssrc is not None and self.by_rtx.get(layer.rtx_ssrc) is layer:
                    del self.by_rtx[layer.rtx_ssrc]
                layer.rtx_ssrc = ssrc
                self.by_rtx[ssrc] = layer
            else:
                if layer.ssrc and self.by_ssrc.get(layer.ssrc) is layer:
                    del self.by_ssrc[layer.ssrc]
                layer.ssrc = ssrc
                self.by_ssrc[ssrc] = layer
            return True
        return False

    def on_rtp(self, data: bytes, now: float) -> None:
        """Plaintext RTP from this publisher (the hot path's entry point)."""
        twcc = self.twcc
        if twcc is not None:  # every packet: RTX and padding probes count too
            twcc.on_rtp(data, now)
        src = self.by_ssrc.get(_I.unpack_from(data, 8)[0])
        if src is None:
            ssrc = _I.unpack_from(data, 8)[0]
            src = self.by_rtx.get(ssrc)
            if src is None:
                if self.rids and self._bind_layer(data, ssrc):
                    self.on_rtp(data, now)  # (recorded twice for TWCC: the same entry)
                    return
                self.unknown_ssrc += 1
                return
            unwrapped = rtx_unwrap(data, src.ssrc, src.payload_type)
            if unwrapped is None:
                return
            data = unwrapped
        src.receive(data, now)

    def on_rtcp(self, data: bytes, now: float) -> None:
        """Plaintext RTCP from this publisher: sender reports are passed on per slot."""
        for fb in parse_rtcp(data):
            if fb.kind != "sr":
                continue
            src = self.by_ssrc.get(fb.sender_ssrc)
            if src is None:
                continue
            src.sr_ntp, src.sr_rtp, src.sr_time = fb.ntp, fb.rtp_ts, now
            if src.tap is not None:
                src.tap.sr(src, fb.ntp, fb.rtp_ts, now)
            for slot in src.sinks:
                rw = slot.rewriter
                if rw.synced and not slot.waiting_key:
                    slot.send(
                        build_sr(rw.ssrc, fb.ntp, rw.output_ts(fb.rtp_ts), rw.packets, rw.octets)
                    )


@dataclass(frozen=True, slots=True)
class SlotSpec:
    """One negotiated outgoing stream of a subscriber connection."""

    mid: str
    kind: str
    ssrc: int
    payload_type: int
    codec: str
    clock_rate: int
    rtx_ssrc: int | None = None
    rtx_payload_type: int | None = None
    #: more codecs the slot accepts: (codec name, payload type, RTX payload type or None)
    codecs: tuple[tuple[str, int, int | None], ...] = ()

    def payload_types(self) -> dict[str, tuple[int, int | None]]:
        """Codec name (upper case) -> (payload type, RTX payload type) for this slot."""
        pts = {self.codec.upper(): (self.payload_type, self.rtx_payload_type)}
        for codec, pt, rtx_pt in self.codecs:
            pts.setdefault(codec.upper(), (pt, rtx_pt))
        return pts


class Slot:
    """One outgoing stream of a subscriber; shows one source at a time."""

    __slots__ = (
        "subscriber",
        "spec",
        "kind",
        "codec",
        "pts",
        "rtx_payload_type",
        "rewriter",
        "source",
        "waiting_key",
        "send",
        "rtx_seq",
        "retransmitted",
        "remb",
        "pending",
        "view",
    )

    def __init__(self, subscriber: Subscriber, spec: SlotSpec) -> None:
        self.subscriber = subscriber
        self.spec = spec
        self.kind = spec.kind
        self.codec = spec.codec.upper()  # the first codec negotiated
        self.pts = spec.payload_types()  # every codec it accepts
        self.rtx_payload_type = spec.rtx_payload_type
        self.rewriter = StreamRewriter(spec.ssrc, spec.payload_type, spec.clock_rate)
        self.source: Source | None = None
        self.waiting_key = False
        self.send = subscriber.send
        self.rtx_seq = int.from_bytes(os.urandom(2), "big")
        self.retransmitted = 0
        self.remb = 0
        self.pending: Source | None = None  # simulcast layer to switch to at its key frame
        self.view: tuple[int, int] | None = None  # rendered size (device pixels), if told

    def assign(self, source: Source | None, now: float) -> None:
        """Show track ``source`` (a plain source or a simulcast track's ``main``), or none."""
        old = self.source
        if old is source or (old is not None and source is not None and old.main is source):
            return
        if source is not None and source.layers is not None:
            layers = source.layers
            source = layers[self.subscriber.router.wanted_layer(self, layers, now)]
        self._cancel_pending()
        if old is not None and self in old.sinks:
            old.sinks.remove(self)
        self.source = source
        self.rewriter.resync()
        self.waiting_key = False
        if source is not None:
            # the subscriber's payload types for this source's codec (the layers of a
            # simulcast track share it, so layer switches keep them)
            pt, self.rtx_payload_type = self.pts.get(source.codec, (self.spec.payload_type, None))
            self.rewriter.payload_type = pt
            source.sinks.append(self)
            if source.needs_key:
                self.waiting_key = True
                source.request_keyframe(now)

    def _cancel_pending(self) -> None:
        if self.pending is not None:
            if self in self.pending.pending:
                self.pending.pending.remove(self)
            self.pending = None

    def switch_to(self, layer: Source) -> None:
        """Forward ``layer`` from its current packet on (a key frame of it starts)."""
        old = self.source
        if old is not None and self in old.sinks:
            old.sinks.remove(self)
        self.pending = None
        self.source = layer
        layer.sinks.append(self)
        self.waiting_key = False
        self.rewriter.resync()

    def select_layer(self, target: Source, now: float) -> None:
        """Move to simulcast layer ``target`` of the current track, at its next key frame."""
        if self.source is target:
            self._cancel_pending()
            return
        if self.pending is target:
            target.request_keyframe(now)
            return
        self._cancel_pending()
        if self.waiting_key or self.source is None:  # nothing forwarded yet: move now
            if self.source is not None and self in self.source.sinks:
                self.source.sinks.remove(self)
            self.source = target
            target.sinks.append(self)
            self.rewriter.resync()
            self.waiting_key = True
        else:
            self.pending = target
            target.pending.append(self)
        target.request_keyframe(now)


class Subscriber:
    """The outgoing side of one participant's subscribing connection."""

    def __init__(self, router: Router, pid: str, send: SendFn, specs: Sequence[SlotSpec]) -> None:
        self.router = router
        self.pid = pid
        self.send = send
        self.slots = [Slot(self, s) for s in specs]
        self.by_ssrc: dict[int, Slot] = {s.spec.ssrc: s for s in self.slots}
        self.by_ssrc.update({s.spec.rtx_ssrc: s for s in self.slots if s.spec.rtx_ssrc})
        self.by_mid: dict[str, Slot] = {s.spec.mid: s for s in self.slots}
        self.layout: list[dict[str, str | None]] = []
        self.bandwidth = BandwidthRule()

    @property
    def penalty(self) -> int:
        """Simulcast layers below what the tile sizes ask for (:mod:`.bandwidth`)."""
        return self.bandwidth.penalty

    def forwarded_rate(self) -> float:
        """Bit rate of the video being forwarded to this subscriber (its sources' rates)."""
        return sum(s.source.rate for s in self.slots if s.source is not None and s.kind == "video")

    def set_view(self, mid: str, width: int, height: int) -> bool:
        """The size (device pixels) the subscriber renders slot ``mid`` at; 0 = not shown."""
        slot = self.by_mid.get(mid)
        if slot is None or slot.kind != "video":
            return False
        slot.view = (max(0, int(width)), max(0, int(height)))
        return True

    def on_rtcp(self, data: bytes, now: float) -> None:
        """Plaintext RTCP from this subscriber: keyframe requests, NACKs, REMB."""
        for fb in parse_rtcp(data):
            kind = fb.kind
            if kind == "pli" or kind == "fir":
                for ssrc in fb.media_ssrcs:
                    slot = self.by_ssrc.get(ssrc)
                    if slot is not None and slot.source is not None:
                        slot.source.request_keyframe(now)
                        if slot.pending is not None:
                            slot.pending.request_keyframe(now)
            elif kind == "rr":
                worst = -1
                for ssrc, fraction in zip(fb.media_ssrcs, fb.fractions, strict=False):
                    slot = self.by_ssrc.get(ssrc)
                    if slot is not None and slot.kind == "video" and fraction > worst:
                        worst = fraction
                if worst >= 0:
                    self.bandwidth.on_loss(worst, now)
            elif kind == "nack":
                slot = self.by_ssrc.get(fb.media_ssrcs[0])
                if slot is not None:
                    self._retransmit(slot, fb.lost)
            elif kind == "remb":
                for ssrc in fb.media_ssrcs:
                    slot = self.by_ssrc.get(ssrc)
                    if slot is not None:
                        slot.remb = fb.bitrate
                        self.bandwidth.on_remb(fb.bitrate, now)

    def _retransmit(self, slot: Slot, lost: list[int]) -> None:
        src = slot.source
        if src is None:
            return
        spec = slot.spec
        for out_seq in lost:
            seq = slot.rewriter.input_seq(out_seq)
            if seq < 0:
                continue
            pkt = src.cache.get(seq)
            if pkt is None:
                continue
            out: bytes | bytearray | None = slot.rewriter.retransmit(pkt)
            if out is None:
                continue
            if spec.rtx_ssrc is not None and slot.rtx_payload_type is not None:
                out = rtx_wrap(out, spec.rtx_ssrc, slot.rtx_payload_type, slot.rtx_seq)
                slot.rtx_seq = (slot.rtx_seq + 1) & 0xFFFF
            slot.retransmitted += 1
            self.send(out)


@dataclass(frozen=True, slots=True)
class ForwardingStats:
    """Counters of what a router is forwarding now (:meth:`Router.stats`).

    Summed over its current publishers (every simulcast layer) and subscribers: those
    that left take their counts with them, so these can go down."""

    packets_received: int = 0  # RTP packets from publishers (RTX unwrapped included)
    nacks_sent: int = 0  # NACK packets sent to publishers
    plis_sent: int = 0  # PLIs sent to publishers
    retransmitted: int = 0  # packets resent to subscribers for their NACKs
    twcc_feedback_sent: int = 0  # transport-cc feedback packets sent to publishers

    def __add__(self, other: ForwardingStats) -> ForwardingStats:
        return ForwardingStats(
            self.packets_received + other.packets_received,
            self.nacks_sent + other.nacks_sent,
            self.plis_sent + other.plis_sent,
            self.retransmitted + other.retransmitted,
            self.twcc_feedback_sent + other.twcc_feedback_sent,
        )


class Router:
    """One room's forwarding table.  See the module docstring."""

    def __init__(
        self,
        *,
        last_n: int = 9,
        pli_interval: float = 0.5,
        speech_level: int = 70,
        speech_packets: int = 3,
        cache_size: int = 512,
        max_video_bitrate: int = 2_500_000,
        min_video_bitrate: int = 150_000,
        nack_retry: float = 0.1,
        on_layout: LayoutFn | None = None,
        on_speaker: SpeakerFn | None = None,
        clock: Callable[[], float] | None = None,
        camera_on: Callable[[str], bool] | None = None,
    ) -> None:
        self.last_n = last_n
        # camera_on(pid): the participant's signalled camera state (None: not known)
        self.camera_on = camera_on
        # clock: time for membership changes (keyframe requests); None = time of last tick
        self.clock = clock
        self.pli_interval = pli_interval
        self.speakers = SpeakerDetector(speech_level, speech_packets)
        self.cache_size = cache_size
        self.max_video_bitrate = max_video_bitrate
        self.min_video_bitrate = min_video_bitrate
        self.nack_retry = nack_retry
        self.on_layout = on_layout
        self.on_speaker = on_speaker
        self.rtcp_ssrc = _random_ssrc()
        self.publishers: dict[str, Publisher] = {}
        self.subscribers: dict[str, Subscriber] = {}
        self._now = 0.0
        #: the room's recording: sees every published stream's packets (set_recorder)
        self.recorder: Tap | None = None
        #: the node-to-node relay: sees the streams published here (set_relay)
        self.relay: Tap | None = None

    @property
    def speaker(self) -> str | None:
        """The dominant speaker's id (:mod:`.speaker`), None before anyone spoke."""
        return self.speakers.speaker

    # -- membership -------------------------------------------------------
    def add_publisher(self, pid: str, send_rtcp: SendFn) -> Publisher:
        self.remove_publisher(pid)
        pub = Publisher(self, pid, send_rtcp)
        self.publishers[pid] = pub
        return pub

    def remove_publisher(self, pid: str) -> None:
        pub = self.publishers.pop(pid, None)
        if pub is None:
            return
        for track_id in list(pub.sources):
            pub.remove_source(track_id, relayout=False)
        if self.speakers.left(pid) and self.on_speaker:
            self.on_speaker(None)
        self.relayout()

    def add_subscriber(self, pid: str, send: SendFn, slots: Sequence[SlotSpec]) -> Subscriber:
        self.remove_subscriber(pid)
        sub = Subscriber(self, pid, send, slots)
        self.subscribers[pid] = sub
        self.relayout()
        return sub

    def remove_subscriber(self, pid: str) -> None:
        sub = self.subscribers.pop(pid, None)
        if sub is None:
            return
        for slot in sub.slots:
            slot.assign(None, self._now)

    def set_recorder(self, tap: Tap | None) -> None:
        """Give every stream's packets (and sender reports) to ``tap`` too, from now on
        (None: stop).  Streams published later get it as well."""
        old = self.recorder
        self.recorder = tap
        for pub in self.publishers.values():
            for main in pub.sources.values():
                if old is not None and tap is None:
                    old.ended(main)
                for src in main.streams():
                    src.tap = self.tap_for(pub)
                    if tap is not None and src.sr_time >= 0:
                        # The stream's last sender report: the files are placed on the
                        # sender's clock from the start, not only after its next report
                        # (an audio stream may send one only every 5 s or so).
                        tap.sr(src, src.sr_ntp, src.sr_rtp, src.sr_time)

    def set_relay(self, tap: Tap | None) -> None:
        """Give the streams published here (not those relayed in) to ``tap`` too."""
        self.relay = tap
        for pub in self.publishers.values():
            for src in pub.all_sources():
                src.tap = self.tap_for(pub)

    def tap_for(self, pub: Publisher) -> Tap | None:
        """What sees ``pub``'s packets: the recording, and the relay unless they came
        over it (a relayed stream is never relayed again)."""
        relay = None if pub.relayed_from else self.relay
        if relay is None:
            return self.recorder
        if self.recorder is None:
            return relay
        return _Taps(self.recorder, relay)

    def source(self, pid: str, track_id: str) -> Source | None:
        pub = self.publishers.get(pid)
        return None if pub is None else pub.sources.get(track_id)

    def stats(self) -> ForwardingStats:
        """The counters of the current publishers and subscribers (e.g. for /metrics)."""
        received = nacks = plis = retransmitted = twcc = 0
        for pub in self.publishers.values():
            if pub.twcc is not None:
                twcc += pub.twcc.packets_sent
            for src in pub.all_sources():  # every simulcast layer, not just the top
                received += src.received
                nacks += src.nacks_sent
                plis += src.pli_sent
        for sub in self.subscribers.values():
            retransmitted += sum(slot.retransmitted for slot in sub.slots)
        return ForwardingStats(received, nacks, plis, retransmitted, twcc)

    # -- periodic work ----------------------------------------------------
    def tick(self, now: float) -> None:
        """Call every ~200 ms: speaker detection, last-N, keyframe retries, RTCP upstream."""
        self._now = now
        self._detect_speaker(now)
        simulcast = self._update_rates(now)
        self.relayout(now)
        for sub in self.subscribers.values():
            if simulcast:
                self._select_layers(sub, now)
            for slot in sub.slots:
                if slot.waiting_key and slot.source is not None:
                    slot.source.request_keyframe(now)
        self._retry_nacks(now)

    def _detect_speaker(self, now: float) -> None:
        activity = []
        for pub in self.publishers.values():
            for src in pub.sources.values():
                if src.kind == "audio":
                    activity.append((pub.pid, src.loud, src.energy))
                    src.loud = 0
                    src.energy = 0
        spoke, changed = self.speakers.tick(activity)
        for pid in spoke:
            self.publishers[pid].last_active = now
        if changed and self.on_speaker:
            self.on_speaker(self.speakers.speaker)

    # -- simulcast layer selection ------------------------------------------
    def _update_rates(self, now: float) -> bool:
        """Per-stream bit rates and liveness (video); True if any track is simulcast."""
        simulcast = False
        for pub in self.publishers.values():
            for main in pub.sources.values():
                if main.kind != "video":
                    continue
                if main.layers is not None:
                    simulcast = True
                for src in main.streams():
                    src.update_rate(now)
        return simulcast

    def wanted_layer(self, slot: Slot, track: list[Source], now: float) -> int:
        """Index of the layer of ``track`` (its layers) ``slot`` should show
        (:func:`.layers.wanted_layer`)."""
        return layers.wanted_layer(
            slot.view,
            [(s.width, s.height) for s in track],
            [bool(s.ssrc) and layers.is_live(s.seen_at, now) for s in track],
            slot.subscriber.bandwidth.penalty,
        )

    def _select_layers(self, sub: Subscriber, now: float) -> None:
        rule = sub.bandwidth
        forwarded = sub.forwarded_rate()
        before = rule.penalty
        if rule.update(now, forwarded):
            # Why someone's picture got blurrier (or sharper again): an operator's question.
            log.info(
                "sfu: %s: simulcast layers %s (penalty %d): loss %.0f %%, REMB %d kbit/s,"
                " forwarding %d kbit/s",
                sub.pid,
                "lowered" if rule.penalty > before else "raised",
                rule.penalty,
                rule.loss * 100 / 256,
                rule.remb // 1000,
                forwarded // 1000,
            )
        for slot in sub.slots:
            src = slot.source
            if src is None or src.layers is None:
                continue
            target = src.layers[self.wanted_layer(slot, src.layers, now)]
            if target is not src or slot.pending is not None:
                slot.select_layer(target, now)

    # -- RTCP towards publishers (decisions: parley.sfu.upstream) ---------------
    def send_receiver_reports(self, now: float) -> None:
        """RR and REMB to every publisher (call about once a second); the REMB is
        :func:`.upstream.remb_cap`'s."""
        for pub in self.publishers.values():
            streams = pub.all_sources()
            blocks = [s.receiver_report_block(now) for s in streams if s.received]
            pkt = build_rr(self.rtcp_ssrc, blocks[:31])
            video = [s for s in streams if s.kind == "video" and s.ssrc]
            if video:
                rate = upstream.remb_cap(
                    self.max_video_bitrate,
                    self.min_video_bitrate,
                    (slot.remb for s in video if s.layers is None for slot in s.sinks),
                    twcc=pub.twcc is not None,
                )
                if rate is not None:
                    pkt += build_remb(self.rtcp_ssrc, rate, [s.ssrc for s in video])
            pub.send_rtcp(pkt)

    def send_transport_feedback(self, now: float) -> int:
        """Transport-cc feedback to every publisher that negotiated it (call every
        50-100 ms); returns the number of feedback packets sent."""
        sent = 0
        for pub in self.publishers.values():
            twcc = pub.twcc
            if twcc is None:
                continue
            media = next((s.ssrc for s in pub.all_sources() if s.ssrc), 0)
            before = twcc.packets_sent
            for pkt in twcc.build(now, self.rtcp_ssrc, media):
                pub.send_rtcp(pkt)
                sent += 1
            if before < _FIRST_FEEDBACK_LOG <= twcc.packets_sent or (
                before // 1000 != twcc.packets_sent // 1000
            ):
                log.info(
                    "sfu: %s: %d transport-cc feedback packets sent (%d RTP packets reported)",
                    pub.pid,
                    twcc.packets_sent,
                    twcc.received,
                )
        return sent

    def nack_upstream(self, src: Source, seq: int, missing: int, now: float) -> None:
        """``missing`` packets of ``src`` before ``seq`` did not arrive: NACK them."""
        lost = upstream.lost_between(seq, missing)
        if lost is None:
            return
        upstream.remember_nacked(src.nacked, lost, now)
        src.nacks_sent += 1
        src.publisher.send_rtcp(build_nack(self.rtcp_ssrc, src.ssrc, lost))

    def _retry_nacks(self, now: float) -> None:
        for pub in self.publishers.values():
            for src in pub.all_sources():
                if not src.nacked:
                    continue
                again = upstream.due_nacks(src.nacked, now, src.cache, self.nack_retry)
                if again:
                    src.nacks_sent += 1
                    pub.send_rtcp(build_nack(self.rtcp_ssrc, src.ssrc, again))

    # -- last-N (decisions: parley.sfu.last_n) --------------------------------
    def _ranked(self, kind: str, now: float) -> list[Source]:
        """Tracks of ``kind`` by who spoke last; video: :func:`.last_n.rank_video`, idle
        by :func:`.last_n.is_idle`."""
        pubs = last_n.recent_first(self.publishers.values())
        ranked = [s for p in pubs for s in p.sources.values() if s.kind == kind]
        if kind != "video":
            return ranked
        camera_on = self.camera_on
        off = set() if camera_on is None else {p.pid for p in pubs if not camera_on(p.pid)}
        idle = {
            src
            for src in ranked
            if last_n.is_idle(
                screen=src.screen,
                camera_off=src.pid in off,
                last_seen=[s.seen_at for s in src.streams()],
                now=now,
            )
        }
        return last_n.rank_video(ranked, idle)

    def relayout(self, now: float | None = None) -> None:
        """Recompute which sources each subscriber's slots show (last-N, audio first-N)."""
        if now is None:
            now = self.clock() if self.clock is not None else self._now
        ranked = {kind: self._ranked(kind, now) for kind in ("audio", "video")}
        for sub in self.subscribers.values():
            for kind in ("audio", "video"):
                slots = [s for s in sub.slots if s.kind == kind]
                limit = len(slots) if kind == "audio" else min(len(slots), self.last_n)
                accepted = {codec for s in slots for codec in s.pts}
                wanted = last_n.choose(ranked[kind], sub.pid, limit, accepted)
                current = [s.source.main if s.source is not None else None for s in slots]
                shown = last_n.fill(current, [s.pts for s in slots], wanted)
                for slot, old, new in zip(slots, current, shown, strict=True):
                    if new is not old:
                        slot.assign(new, now)
            self._announce(sub)

    def _announce(self, sub: Subscriber) -> None:
        """Tell the subscriber which track each of its slots shows, if that changed.

        Compared with what the subscriber was last told, not with the slots' previous
        sources: a removed source empties its slots before this runs."""
        layout = [
            {
                "mid": s.spec.mid,
                "kind": s.kind,
                "pid": s.source.pid if s.source else None,
                "track": s.source.track_id if s.source else None,
            }
            for s in sub.slots
        ]
        if layout != sub.layout:
            sub.layout = layout
            if self.on_layout:
                self.on_layout(sub.pid, sub.layout)
