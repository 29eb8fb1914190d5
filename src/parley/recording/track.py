"""One published track's recording: streams (simulcast layers) in, one file out.

A :class:`TrackRecorder` gets the packets of every stream of one track (one SSRC, or
one per simulcast layer) and writes one file (:class:`~.writer.TrackWriter`):

* each stream is reordered (:class:`~.jitter.ReorderBuffer`) and assembled into whole
  frames (:class:`~.frames.FrameAssembler`), which drops what cannot decode;
* simulcast: the highest layer that arrived in the last ``LAYER_LIVE`` seconds is
  recorded.  Another layer is buffered only while the recorder waits to switch to it,
  and the switch happens at that layer's key frame, so the file never holds a frame
  whose reference came from another layer;
* timestamps: the file's clock follows the RTP timestamps of a stream; at a switch
  (another SSRC) it continues from the previous frame by the wall-clock time elapsed,
  the way the forwarder's stream rewriter does;
* wall clock: RTCP sender reports map a stream's RTP time to the publisher's NTP time.
  The file's start is the NTP time of its first frame (RFC 3550 6.4.1), which puts
  every track of every participant on one clock; without a report, the arrival time.

Key frames: :attr:`TrackRecorder.wants_key` names the SSRC a key frame is needed from
(at the start, after a loss, before a layer switch); the caller sends the PLI.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .frames import Frame, FrameAssembler
from .jitter import Packet, ReorderBuffer
from .writer import TrackWriter

__all__ = ["LAYER_LIVE", "TrackInfo", "TrackRecorder", "ntp_to_unix"]

#: A simulcast layer is live while its packets arrived this recently (seconds).
LAYER_LIVE = 1.0
_NTP_EPOCH = 2208988800  # seconds from 1900 (NTP) to 1970 (Unix)


def ntp_to_unix(ntp: int) -> float:
    """A 64-bit NTP timestamp in Unix seconds."""
    return (ntp >> 32) - _NTP_EPOCH + (ntp & 0xFFFFFFFF) / 2**32


@dataclass(slots=True)
class TrackInfo:
    """What a track is: whose, which, and how it is coded."""

    participant: str
    track: str
    kind: str
    codec: str
    clock_rate: int
    screen: bool = False


@dataclass(slots=True)
class _Stream:
    ssrc: int
    layer: int
    buffer: ReorderBuffer[Packet] = field(default_factory=ReorderBuffer)
    frames: FrameAssembler | None = None
    last_seen: float = float("-inf")


class TrackRecorder:
    """See the module docstring.  Not thread-safe: one recording thread drives it."""

    def __init__(self, info: TrackInfo, path: Path, wall_offset: float) -> None:
        self.info = info
        self.writer = TrackWriter(path, info.codec, info.clock_rate)
        self.wall_offset = wall_offset  # time.time() - time.monotonic() at the start
        self.streams: dict[int, _Stream] = {}
        self.current: _Stream | None = None  # the stream being written
        self.target: _Stream | None = None  # a stream to switch to at its key frame
        #: SSRC a key frame is wanted from (the caller sends a PLI), or 0
        self.wants_key = 0
        self.sr: dict[int, tuple[int, int]] = {}  # ssrc -> (NTP, RTP ts) of its last SR
        self.ext_ts = 0  # the file's clock (RTP units) at the last frame written
        self.last_ts = 0  # RTP timestamp of the last frame written
        self.last_arrival = 0.0
        self.first: tuple[int, int, float] | None = None  # (ssrc, RTP ts, arrival) of frame 1
        self.switches = 0
        self.keyframes_requested = 0
        self.ended = False

    # -- packets ------------------------------------------------------------------
    def packets(self, items: list[Packet]) -> None:
        """A drain round's RTP packets of this track, in arrival order, each
        ``(source, packet, arrival)`` (``source.ssrc``: its stream; ``source.layer``: its
        simulcast layer, 0 otherwise).  Each run of one stream goes through in one go
        (a round has a single run unless the track is simulcast): the per-packet work
        is a few operations of Python, not a chain of calls per packet."""
        n = len(items)
        i = 0
        while i < n:
            src = items[i][0]
            j = i + 1
            while j < n and items[j][0] is src:
                j += 1
            self._run(src.ssrc, src.layer, items if i == 0 and j == n else items[i:j])
            i = j

    def _run(self, ssrc: int, layer: int, items: list[Packet]) -> None:
        stream = self.streams.get(ssrc)
        if stream is None:
            stream = self.streams[ssrc] = _Stream(ssrc, layer)
            stream.frames = FrameAssembler(self.info.codec)
        now = stream.last_seen = items[-1][2]
        if stream is not self.current:
            self._choose(stream, now)
            if stream is not self.current and stream is not self.target:
                return  # a layer not recorded now: not even buffered
        self._assembled(stream, stream.buffer.push_packets(items))

    def tick(self, now: float) -> None:
        """Holes that waited too long are given up (call a few times a second)."""
        for stream in (self.current, self.target):
            if stream is not None and len(stream.buffer):
                self._assembled(stream, stream.buffer.expire(now))
        current = self.current
        if current is not None and now - current.last_seen > LAYER_LIVE and self.target is None:
            live = [s for s in self.streams.values() if now - s.last_seen <= LAYER_LIVE]
            if live:  # the recorded layer stopped: the best one still coming
                self._retarget(max(live, key=lambda s: s.layer))

    @property
    def waiting(self) -> bool:
        """Whether a hole in the recorded stream (or the one to switch to) waits for
        its late packet: :meth:`tick` gives it up within ``max_wait``."""
        return bool(
            (self.current is not None and len(self.current.buffer))
            or (self.target is not None and len(self.target.buffer))
        )

    def sender_report(self, ssrc: int, ntp: int, rtp_ts: int) -> None:
        self.sr[ssrc] = (ntp, rtp_ts)

    def _choose(self, stream: _Stream, now: float) -> None:
        current = self.current
        if current is None:
            self.current = stream
            self.wants_key = stream.ssrc if stream.frames and stream.frames.video else 0
            return
        if stream is current or stream is self.target:
            return
        if stream.layer > current.layer or now - current.last_seen > LAYER_LIVE:
            if self.target is None or stream.layer > self.target.layer:
                self._retarget(stream)

    def _retarget(self, stream: _Stream) -> None:
        stream.buffer = ReorderBuffer()
        assert stream.frames is not None
        stream.frames = FrameAssembler(self.info.codec)  # waits for a key frame
        self.target = stream
        self.wants_key = stream.ssrc

    def _assembled(self, stream: _Stream, items: Sequence[Packet | None]) -> None:
        frames = stream.frames
        assert frames is not None
        out = frames.push_many(items)
        if out:
            if stream is self.target:
                # the layer to switch to has its key frame: it is recorded from here
                if self.current is not None:
                    self.current.buffer = ReorderBuffer()
                self.current, self.target = stream, None
                self.switches += 1
            if stream is self.current:
                self._write(stream.ssrc, out)
        if frames.wants_key and stream is (self.target or self.current):
            frames.wants_key = False
            self.wants_key = stream.ssrc

    def _write(self, ssrc: int, frames: list[Frame]) -> None:
        """Frames of stream ``ssrc``, in order, into the file (one loop: state in locals)."""
        write = self.writer.write
        ext_ts, last_ts, last_arrival = self.ext_ts, self.last_ts, self.last_arrival
        last_ssrc = self._last_ssrc
        try:
            for data, ts, key, arrival in frames:
                if self.first is None:
                    ext = 0
                elif ssrc != last_ssrc:
                    # another stream: continue by the wall-clock time elapsed (>= 1 unit)
                    step = int((arrival - last_arrival) * self.info.clock_rate)
                    ext = ext_ts + max(1, step)
                else:
                    d = (ts - last_ts) & 0xFFFFFFFF
                    ext = ext_ts + (d if d < 0x80000000 else d - 0x100000000)
                if not write(data, ext, key):
                    continue
                if self.first is None:
                    self.first = (ssrc, ts, arrival)
                if ext > ext_ts:
                    ext_ts = ext
                last_ts, last_arrival, last_ssrc = ts, arrival, ssrc
        finally:
            self.ext_ts, self.last_ts, self.last_arrival = ext_ts, last_ts, last_arrival
            self._last_ssrc = last_ssrc

    _last_ssrc = -1

    # -- the end --------------------------------------------------------------------
    def finish(self) -> None:
        """Write what the buffers still hold, and close the file."""
        for stream in (self.current,):
            if stream is not None:
                self._assembled(stream, stream.buffer.flush())
        self.writer.close()
        self.ended = True

    def start_time(self) -> tuple[float, str]:
        """(Unix time of the first frame, how it is known: "rtcp-sr" or "arrival")."""
        if self.first is None:
            return 0.0, "none"
        ssrc, ts, arrival = self.first
        sr = self.sr.get(ssrc)
        if sr is not None:
            ntp, sr_ts = sr
            d = (ts - sr_ts) & 0xFFFFFFFF
            delta = d if d < 0x80000000 else d - 0x100000000
            return ntp_to_unix(ntp) + delta / self.info.clock_rate, "rtcp-sr"
        return arrival + self.wall_offset, "arrival"

    def describe(self) -> dict[str, object]:
        """This track's entry in the manifest."""
        info, writer = self.info, self.writer
        start, clock = self.start_time()
        dropped = sum(s.frames.dropped for s in self.streams.values() if s.frames)
        lost = sum(s.buffer.lost for s in self.streams.values())
        return {
            "file": writer.path.name,
            "participant": info.participant,
            "track": info.track,
            "kind": info.kind,
            "codec": info.codec,
            "screen": info.screen,
            "start": round(start, 6),
            "end": round(start + writer.duration, 6) if writer.frames else round(start, 6),
            "duration": round(writer.duration, 6),
            "clock": clock,
            "frames": writer.frames,
            "bytes": writer.bytes,
            "sizes": [
                {"t": round(pts / info.clock_rate, 6), "width": w, "height": h}
                for pts, w, h in writer.sizes
            ],
            "layer_switches": self.switches,
            "frames_dropped": dropped,
            "packets_lost": lost,
            "keyframes_requested": self.keyframes_requested,
        }
