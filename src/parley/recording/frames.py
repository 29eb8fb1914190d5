"""From ordered RTP packets to whole coded frames, without decoding anything.

:class:`FrameAssembler` takes one stream's packets in sequence order (from
:class:`~parley.recording.jitter.ReorderBuffer`, ``None`` marking lost packets) and
returns complete frames:

* Opus: one packet is one frame.
* VP8 (RFC 7741) and H.264 (RFC 6184, packetization mode 1): the packets of one RTP
  timestamp up to the marker bit, depayloaded (VP8: the payload descriptor of RFC 7741
  4.2 skipped by counting its bytes, in the assembler's loop: aiortc's parser builds an
  object per packet; H.264: Annex B NAL units, FU-A reassembled, by aiortc's
  depayloader).

A frame with a packet missing is never returned: after a loss the assembler drops
everything until the next key frame and says so (``wants_key``), so that the caller
asks the publisher for one.  A recording thus contains only frames that decode.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

from aiortc.codecs.h264 import H264PayloadDescriptor

from ..sfu.rtp import payload_offset

__all__ = ["Frame", "FrameAssembler", "is_key"]

_TS = struct.Struct("!I")
_U16 = struct.Struct("!H")
_NAL_IDR = 5
#: A frame of more packets than this is dropped (a publisher that never ends a frame
#: must not grow the recording's memory): about 1.2 MB, far above a 4K key frame's.
MAX_FRAME_PACKETS = 1024


#: One coded frame: (data, RTP timestamp, key frame?, arrival time of its first packet).
#: A tuple, not a class: one is made per frame on the recording thread's hot path.
Frame = tuple[bytes, int, bool, float]


def is_key(codec: str, data: bytes) -> bool:
    """Whether a depayloaded frame is a key frame (VP8: RFC 6386 9.1; H.264: has an IDR)."""
    if codec == "VP8":
        return bool(data) and not data[0] & 0x01
    if codec == "H264":
        pos = data.find(b"\x00\x00\x01")
        while pos >= 0:
            if pos + 3 < len(data) and data[pos + 3] & 0x1F == _NAL_IDR:
                return True
            pos = data.find(b"\x00\x00\x01", pos + 3)
        return False
    return True


class FrameAssembler:
    """One stream's ordered packets in, complete frames out (see the module docstring)."""

    __slots__ = (
        "codec",
        "video",
        "vp8",
        "_parts",
        "_ts",
        "_start_ok",
        "_arrival",
        "need_key",
        "wants_key",
        "frames",
        "dropped",
        "broken",
    )

    def __init__(self, codec: str) -> None:
        self.codec = codec.upper()
        self.video = self.codec in ("VP8", "H264")
        self.vp8 = self.codec == "VP8"
        self._parts: list[bytes] = []
        self._ts = -1
        self._start_ok = False
        self._arrival = 0.0
        #: video: drop frames until a key frame (at the start, and after a loss)
        self.need_key = self.video
        #: set when frames were dropped for want of a key frame (the caller clears it)
        self.wants_key = self.video
        self.frames = 0
        self.dropped = 0  # frames not written: incomplete, or waiting for a key frame
        self.broken = 0  # payloads the depayloader refused

    def push(self, packet: bytes | None, arrival: float) -> Sequence[Frame]:
        """One packet in order (``None``: packets lost here); the frames it completes."""
        return self.push_many([None if packet is None else (None, packet, arrival)])

    def push_many(self, items: Sequence[tuple[Any, bytes, float] | None]) -> list[Frame]:
        """Packets in order, each ``(anything, packet, arrival)`` or ``None`` (packets
        lost here); the frames they complete.  One loop for a drain round's packets of
        a stream: the recording's per-packet cost is Python's per-packet operations."""
        if not self.video:
            return self._audio(items)
        out: list[Frame] = []
        vp8 = self.vp8
        unpack_ts, unpack_u16 = _TS.unpack_from, _U16.unpack_from
        parts = self._parts
        cur = self._ts  # the timestamp of the frame in parts (a local: read every packet)
        for item in items:
            if item is None:
                if parts:
                    self.dropped += 1
                parts = self._parts = []
                cur = self._ts = -1
                self.need_key = self.wants_key = True
                continue
            packet, arrival = item[1], item[2]
            ts = unpack_ts(packet, 4)[0]
            # the payload: CSRCs, header extension and padding skipped, sliced once
            # (sfu.rtp.payload_offset, inlined: one call less per packet)
            b0 = packet[0]
            start = 12 + 4 * (b0 & 0x0F)
            if b0 & 0x10:
                start += 4 + 4 * unpack_u16(packet, start + 2)[0]
            end = len(packet)
            if b0 & 0x20 and end > start:
                end -= packet[end - 1]
            if end <= start:
                continue  # empty, or padding only (bandwidth probes)
            begins = False
            if vp8:  # the payload descriptor skipped (RFC 7741 4.2)
                b = packet[start]
                pos = start + 1
                try:
                    if b & 0x80:  # X: extended control bits
                        x = packet[pos]
                        pos += 1
                        if x & 0x80:  # I: picture id, 7 or 15 bits
                            pos += 2 if packet[pos] & 0x80 else 1
                        if x & 0x40:  # L: TL0PICIDX
                            pos += 1
                        if x & 0x30:  # T or K: TID/KEYIDX
                            pos += 1
                except IndexError:
                    pos = end
                if pos < end:
                    begins = bool(b & 0x10) and not b & 0x07
                    start = pos
                else:  # truncated: the frame cannot be trusted
                    self._start_ok = False
            payload = packet[start:end]
            if parts and ts != cur:
                # the previous frame had no marker but nothing is missing: it is complete
                done = self._finish()
                parts = self._parts
                if done is not None:
                    out.append(done)
            if not parts:
                cur = self._ts = ts
                self._arrival = arrival
                self._start_ok = begins if vp8 else self._starts_frame(payload)
            parts.append(payload)
            if len(parts) > MAX_FRAME_PACKETS:
                parts = self._parts = []
                self.dropped += 1
                self.need_key = self.wants_key = True
                continue
            if packet[1] & 0x80:  # the marker: the frame's last packet
                done = self._finish()
                parts = self._parts
                if done is not None:
                    out.append(done)
        return out

    def _audio(self, items: Sequence[tuple[Any, bytes, float] | None]) -> list[Frame]:
        """Opus: each packet's payload is a frame (a loss loses only its own)."""
        out: list[Frame] = []
        append = out.append
        unpack_ts = _TS.unpack_from
        for item in items:
            if item is None:
                continue
            packet = item[1]
            # one call a packet: Opus is a quarter of a recording's packets, so the
            # video loop's inlined copy of this is not worth repeating here
            start = payload_offset(packet)
            end = len(packet)
            if packet[0] & 0x20 and end > start:
                end -= packet[end - 1]
            if end > start:
                append((packet[start:end], unpack_ts(packet, 4)[0], True, item[2]))
        self.frames += len(out)
        return out

    def _starts_frame(self, payload: bytes) -> bool:
        """H.264: a single NAL unit, a STAP-A or the first fragment of an FU-A."""
        try:
            return bool(H264PayloadDescriptor.parse(payload)[0].first_fragment)
        except ValueError:
            return False

    def _finish(self) -> Frame | None:
        parts, self._parts = self._parts, []
        if not self._start_ok:
            self.dropped += 1
            self.need_key = self.wants_key = True
            return None
        try:
            if self.codec == "VP8":
                data = b"".join(parts)  # descriptors already stripped
            else:
                data = b"".join(H264PayloadDescriptor.parse(p)[1] for p in parts)
        except ValueError:
            self.broken += 1
            self.dropped += 1
            self.need_key = self.wants_key = True
            return None
        key = is_key(self.codec, data)
        if self.need_key and not key:
            self.dropped += 1
            self.wants_key = True
            return None
        self.need_key = False
        self.frames += 1
        return (data, self._ts, key, self._arrival)
