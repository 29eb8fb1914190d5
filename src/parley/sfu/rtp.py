"""Lean RTP/RTCP handling on raw bytes, for the forwarding hot path.

Nothing here builds an object per RTP packet: headers are read and written with
precompiled :mod:`struct` formats on ``bytes``/``bytearray``.  RTCP (a few packets a
second per stream) is parsed into small :class:`RtcpFeedback` records.

References: RTP RFC 3550, header extensions RFC 8285, audio level RFC 6464,
RTCP feedback RFC 4585 (generic NACK, PLI), RFC 5104 (FIR), REMB
draft-alvestrand-rmcat-remb, RTX RFC 4588.  What is inside a payload (VP8 descriptor,
H.264 NAL units: key frames and picture sizes) is :mod:`parley.sfu.codecs`'.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field

__all__ = [
    "RTCP_SR",
    "RTCP_RR",
    "RTCP_RTPFB",
    "RTCP_PSFB",
    "RetransmitCache",
    "RtcpFeedback",
    "StreamRewriter",
    "audio_level",
    "build_fir",
    "build_nack",
    "build_pli",
    "build_remb",
    "build_rr",
    "build_sr",
    "extension_value",
    "find_extension",
    "is_rtcp",
    "nack_pairs",
    "parse_rtcp",
    "payload_offset",
    "rtx_unwrap",
    "rtx_wrap",
    "seq_newer",
]

RTCP_SR = 200
RTCP_RR = 201
RTCP_SDES = 202
RTCP_BYE = 203
RTCP_RTPFB = 205
RTCP_PSFB = 206

FMT_NACK = 1  # RTPFB
FMT_PLI = 1  # PSFB
FMT_FIR = 4  # PSFB
FMT_AFB = 15  # PSFB application layer feedback (REMB)

_H = struct.Struct("!H")
_I = struct.Struct("!I")
_HH = struct.Struct("!HH")
_SEQ_TS_SSRC = struct.Struct("!HII")  # at offset 2 of an RTP header
_RTCP_HDR = struct.Struct("!BBH")
_FB_HDR = struct.Struct("!BBHII")  # header + sender ssrc + media ssrc


def is_rtcp(data: bytes | bytearray) -> bool:
    """True for RTCP (payload type byte 192..223) multiplexed with RTP (RFC 5761)."""
    return len(data) >= 2 and 192 <= data[1] <= 223


def seq_newer(a: int, b: int) -> bool:
    """True if 16-bit sequence number ``a`` is after ``b`` (serial arithmetic)."""
    return a != b and ((a - b) & 0xFFFF) < 0x8000


def payload_offset(data: bytes | bytearray) -> int:
    """Offset of the RTP payload: fixed header, CSRCs and header extension skipped."""
    off = 12 + 4 * (data[0] & 0x0F)
    if data[0] & 0x10:
        off += 4 + 4 * _H.unpack_from(data, off + 2)[0]
    return off


def find_extension(data: bytes | bytearray, ext_id: int) -> int:
    """Offset of the value of header extension ``ext_id`` (RFC 8285), or -1.

    Supports the one-byte (0xBEDE) and two-byte (0x100x) profiles.
    """
    if not data[0] & 0x10 or ext_id <= 0:
        return -1
    off = 12 + 4 * (data[0] & 0x0F)
    profile, words = _HH.unpack_from(data, off)
    pos = off + 4
    end = pos + 4 * words
    if end > len(data):
        return -1
    if profile == 0xBEDE:
        while pos < end:
            b = data[pos]
            if b == 0:  # padding
                pos += 1
                continue
            xid = b >> 4
            if xid == 15:
                return -1
            if xid == ext_id:
                return pos + 1
            pos += 2 + (b & 0x0F)
    elif profile & 0xFFF0 == 0x1000:
        while pos + 1 < end:
            xid = data[pos]
            if xid == 0:
                pos += 1
                continue
            if xid == ext_id:
                return pos + 2
            pos += 2 + data[pos + 1]
    return -1


def extension_value(data: bytes | bytearray, ext_id: int) -> bytes | None:
    """Value of header extension ``ext_id`` (e.g. an RFC 8852 rtp-stream-id), or None."""
    pos = find_extension(data, ext_id)
    if pos < 0:
        return None
    if data[12 + 4 * (data[0] & 0x0F)] == 0xBE:  # one-byte profile: length - 1 in low nibble
        n = (data[pos - 1] & 0x0F) + 1
    else:
        n = data[pos - 1]
    if pos + n > len(data):
        return None
    return bytes(data[pos : pos + n])


def audio_level(data: bytes | bytearray, ext_id: int) -> int:
    """RFC 6464 audio level of an RTP packet: 0 (loudest) .. 127 (silence), -1 if absent.

    The voice-activity bit is dropped; browsers set it unreliably.
    """
    pos = find_extension(data, ext_id)
    if pos < 0 or pos >= len(data):
        return -1
    return data[pos] & 0x7F


_HDR12 = struct.Struct("!BBHII")


def _header(data: bytes | bytearray, pt: int, seq: int, ts: int, ssrc: int, strip: bool) -> bytes:
    """Copy of an RTP packet with new PT/seq/ts/SSRC (and without extensions if ``strip``)."""
    b0 = data[0]
    if not b0 & 0x0F:  # no CSRCs: the common case, one pack and one slice
        if b0 & 0x10 and strip:
            start = 16 + 4 * _H.unpack_from(data, 14)[0]
            return _HDR12.pack(b0 & 0xEF, (data[1] & 0x80) | pt, seq, ts, ssrc) + data[start:]
        return _HDR12.pack(b0, (data[1] & 0x80) | pt, seq, ts, ssrc) + data[12:]
    if strip and b0 & 0x10:
        off = 12 + 4 * (b0 & 0x0F)
        ext_end = off + 4 + 4 * _H.unpack_from(data, off + 2)[0]
        buf = bytearray(data[:off])
        buf += memoryview(data)[ext_end:]
        buf[0] &= 0xEF
    else:
        buf = bytearray(data)
    buf[1] = (buf[1] & 0x80) | pt
    _SEQ_TS_SSRC.pack_into(buf, 2, seq, ts, ssrc)
    return bytes(buf)


class StreamRewriter:
    """Rewrites one outgoing stream (SSRC, payload type, sequence numbers, timestamps).

    The output SSRC never changes.  Whenever the input changes (another source SSRC,
    or :meth:`resync` after a pause), the next packet continues the output sequence
    numbers without a gap and the timestamps by the wall-clock time elapsed, so the
    receiver sees one continuous stream.  Packets older than the switch point are
    dropped (they would map onto sequence numbers already used).

    With ``strip_extensions`` (the default) the RTP header extension block is removed,
    because extension ids are negotiated per connection and may differ between the
    publisher and the subscriber.
    """

    __slots__ = (
        "ssrc",
        "payload_type",
        "clock_rate",
        "strip_extensions",
        "src_ssrc",
        "synced",
        "seq_off",
        "ts_off",
        "base_seq",
        "hi_seq",
        "last_seq",
        "last_ts",
        "last_time",
        "packets",
        "octets",
        "switches",
    )

    def __init__(
        self,
        ssrc: int,
        payload_type: int,
        clock_rate: int,
        *,
        strip_extensions: bool = True,
        initial_seq: int | None = None,
        initial_ts: int | None = None,
    ) -> None:
        self.ssrc = ssrc
        self.payload_type = payload_type
        self.clock_rate = clock_rate
        self.strip_extensions = strip_extensions
        self.src_ssrc = -1
        self.synced = False
        self.seq_off = 0
        self.ts_off = 0
        self.base_seq = 0  # first input seq of the current segment
        self.hi_seq = 0  # highest input seq of the current segment
        rnd = os.urandom(6)
        # last_seq/last_ts: the latest output values (the next segment continues them)
        self.last_seq = (_H.unpack_from(rnd, 0)[0] if initial_seq is None else initial_seq) - 1
        self.last_seq &= 0xFFFF
        self.last_ts = _I.unpack_from(rnd, 2)[0] if initial_ts is None else initial_ts
        self.last_time = -1.0
        self.packets = 0
        self.octets = 0
        self.switches = 0

    def resync(self) -> None:
        """Start a new segment at the next packet (source switch, or resume after a pause)."""
        self.synced = False

    def rewrite(self, data: bytes | bytearray, now: float) -> bytes | None:
        """Rewritten copy of a plaintext RTP packet, or None if it must be dropped."""
        seq, ts, ssrc = _SEQ_TS_SSRC.unpack_from(data, 2)
        if ssrc != self.src_ssrc or not self.synced:
            if self.last_time >= 0.0:
                step = int((now - self.last_time) * self.clock_rate)
                if step < 1:
                    step = 1
            else:
                step = 0
            self.seq_off = (self.last_seq + 1 - seq) & 0xFFFF
            self.ts_off = (self.last_ts + step - ts) & 0xFFFFFFFF
            self.src_ssrc = ssrc
            self.base_seq = self.hi_seq = seq
            self.synced = True
            self.switches += 1
        else:
            d = (seq - self.hi_seq) & 0xFFFF
            if d < 0x8000:
                if d:
                    self.hi_seq = seq
                    if ((seq - self.base_seq) & 0xFFFF) > 0x4000:
                        self.base_seq = (seq - 0x3000) & 0xFFFF
            elif ((seq - self.base_seq) & 0xFFFF) >= 0x8000:
                return None  # before the start of this segment
        out_seq = (seq + self.seq_off) & 0xFFFF
        out_ts = (ts + self.ts_off) & 0xFFFFFFFF
        if ((out_seq - self.last_seq) & 0xFFFF) < 0x8000:
            self.last_seq = out_seq
            self.last_ts = out_ts
            self.last_time = now
        out = _header(data, self.payload_type, out_seq, out_ts, self.ssrc, self.strip_extensions)
        self.packets += 1
        self.octets += len(out) - 12
        return out

    def input_seq(self, out_seq: int) -> int:
        """Input sequence number that produced ``out_seq`` in the current segment, or -1."""
        if not self.synced:
            return -1
        seq = (out_seq - self.seq_off) & 0xFFFF
        if ((seq - self.base_seq) & 0xFFFF) >= 0x8000 or seq_newer(seq, self.hi_seq):
            return -1
        return seq

    def retransmit(self, data: bytes | bytearray) -> bytes | None:
        """Rewrite a cached packet of the current segment again (for a NACK), or None."""
        seq, ts, ssrc = _SEQ_TS_SSRC.unpack_from(data, 2)
        if not self.synced or ssrc != self.src_ssrc:
            return None
        if ((seq - self.base_seq) & 0xFFFF) >= 0x8000:
            return None
        return _header(
            data,
            self.payload_type,
            (seq + self.seq_off) & 0xFFFF,
            (ts + self.ts_off) & 0xFFFFFFFF,
            self.ssrc,
            self.strip_extensions,
        )

    def output_ts(self, src_ts: int) -> int:
        """Output RTP timestamp for a source timestamp (for rewriting sender reports)."""
        return (src_ts + self.ts_off) & 0xFFFFFFFF


class RetransmitCache:
    """The last ``size`` packets of one source, by sequence number (size: a power of 2)."""

    __slots__ = ("_mask", "_seqs", "_packets", "hits", "misses")

    def __init__(self, size: int = 512) -> None:
        if size & (size - 1):
            raise ValueError("size must be a power of two")
        self._mask = size - 1
        self._seqs = [-1] * size
        self._packets: list[bytes | None] = [None] * size
        self.hits = 0
        self.misses = 0

    def put(self, seq: int, packet: bytes) -> None:
        i = seq & self._mask
        self._seqs[i] = seq
        self._packets[i] = packet

    def get(self, seq: int) -> bytes | None:
        i = seq & self._mask
        if self._seqs[i] == seq:
            self.hits += 1
            return self._packets[i]
        self.misses += 1
        return None

    def __contains__(self, seq: int) -> bool:
        return self._seqs[seq & self._mask] == seq


def rtx_wrap(packet: bytes | bytearray, rtx_ssrc: int, rtx_pt: int, rtx_seq: int) -> bytearray:
    """RFC 4588 retransmission packet: original seq prepended to the payload.

    ``packet`` is an already rewritten packet (its seq is the subscriber's); padding is dropped.
    """
    off = payload_offset(packet)
    end = len(packet)
    if packet[0] & 0x20 and end > off:
        end -= packet[end - 1]
    buf = bytearray(packet[:off])
    buf[0] &= 0xDF
    buf += packet[2:4]
    buf += memoryview(packet)[off:end]
    buf[1] = (buf[1] & 0x80) | rtx_pt
    _H.pack_into(buf, 2, rtx_seq & 0xFFFF)
    _I.pack_into(buf, 8, rtx_ssrc)
    return buf


def rtx_unwrap(packet: bytes | bytearray, ssrc: int, payload_type: int) -> bytes | None:
    """Original packet from an RTX packet (RFC 4588), or None for RTX padding probes."""
    off = payload_offset(packet)
    end = len(packet)
    if packet[0] & 0x20 and end > off:
        end -= packet[end - 1]
    if end - off < 2:
        return None
    buf = bytearray(packet[:off])
    buf[0] &= 0xDF
    buf[1] = (buf[1] & 0x80) | payload_type
    buf[2:4] = packet[off : off + 2]
    _I.pack_into(buf, 8, ssrc)
    buf += memoryview(packet)[off + 2 : end]
    return bytes(buf)


# ---------------------------------------------------------------------------- RTCP


@dataclass(slots=True)
class RtcpFeedback:
    """One RTCP packet of a compound packet, reduced to what forwarding needs.

    ``kind``: "sr", "rr", "pli", "fir", "nack", "remb", "sdes", "bye" or "other".
    ``media_ssrcs``: the SSRCs the packet is about (PLI/NACK: the media SSRC; FIR: the
    requested SSRCs; REMB: the listed SSRCs; RR: the report blocks' SSRCs).
    ``lost``: NACKed sequence numbers.  ``fractions``: RR/SR report blocks' fraction
    lost (0..255, same order as ``media_ssrcs``).  ``bitrate``: REMB in bit/s.  SR: ``ntp`` and
    ``rtp_ts``.  ``offset``/``length``: where the packet sits in the compound.
    """

    kind: str
    sender_ssrc: int
    media_ssrcs: list[int] = field(default_factory=list)
    lost: list[int] = field(default_factory=list)
    fractions: list[int] = field(default_factory=list)
    bitrate: int = 0
    ntp: int = 0
    rtp_ts: int = 0
    offset: int = 0
    length: int = 0


def nack_pairs(fci: bytes | bytearray, start: int, end: int) -> list[int]:
    """Sequence numbers of generic NACK FCI entries (PID, BLP) in ``fci[start:end]``."""
    lost: list[int] = []
    pos = start
    while pos + 4 <= end:
        pid, blp = _HH.unpack_from(fci, pos)
        lost.append(pid)
        bit = 0
        while blp:
            if blp & 1:
                lost.append((pid + bit + 1) & 0xFFFF)
            blp >>= 1
            bit += 1
        pos += 4
    return lost


def parse_rtcp(data: bytes | bytearray) -> list[RtcpFeedback]:
    """Parse a (plaintext) compound RTCP packet; malformed tails are ignored."""
    out: list[RtcpFeedback] = []
    pos = 0
    n = len(data)
    while pos + 4 <= n:
        b0, pt, words = _RTCP_HDR.unpack_from(data, pos)
        length = 4 * (words + 1)
        if b0 >> 6 != 2 or pos + length > n:
            break
        end = pos + length
        count = b0 & 0x1F
        if pt == RTCP_SR and length >= 28:
            sender, ntp_hi, ntp_lo, rtp_ts = struct.unpack_from("!IIII", data, pos + 4)
            ssrcs = [
                _I.unpack_from(data, pos + 28 + 24 * i)[0]
                for i in range(count)
                if pos + 28 + 24 * (i + 1) <= end
            ]
            out.append(
                RtcpFeedback(
                    "sr",
                    sender,
                    ssrcs,
                    ntp=(ntp_hi << 32) | ntp_lo,
                    rtp_ts=rtp_ts,
                    offset=pos,
                    length=length,
                )
            )
        elif pt == RTCP_RR and length >= 8:
            sender = _I.unpack_from(data, pos + 4)[0]
            blocks = [pos + 8 + 24 * i for i in range(count) if pos + 8 + 24 * (i + 1) <= end]
            out.append(
                RtcpFeedback(
                    "rr",
                    sender,
                    [_I.unpack_from(data, b)[0] for b in blocks],
                    fractions=[data[b + 4] for b in blocks],
                    offset=pos,
                    length=length,
                )
            )
        elif pt in (RTCP_RTPFB, RTCP_PSFB) and length >= 12:
            _, _, _, sender, media = _FB_HDR.unpack_from(data, pos)
            fb: RtcpFeedback | None = None
            if pt == RTCP_RTPFB and count == FMT_NACK:
                fb = RtcpFeedback("nack", sender, [media], lost=nack_pairs(data, pos + 12, end))
            elif pt == RTCP_PSFB and count == FMT_PLI:
                fb = RtcpFeedback("pli", sender, [media])
            elif pt == RTCP_PSFB and count == FMT_FIR:
                ssrcs = [_I.unpack_from(data, p)[0] for p in range(pos + 12, end - 7, 8)]
                fb = RtcpFeedback("fir", sender, ssrcs)
            elif (
                pt == RTCP_PSFB
                and count == FMT_AFB
                and length >= 20
                and data[pos + 12 : pos + 16] == b"REMB"
            ):
                num = data[pos + 16]
                exp = data[pos + 17] >> 2
                mantissa = ((data[pos + 17] & 0x03) << 16) | _H.unpack_from(data, pos + 18)[0]
                ssrcs = [
                    _I.unpack_from(data, pos + 20 + 4 * i)[0]
                    for i in range(num)
                    if pos + 24 + 4 * i <= end
                ]
                fb = RtcpFeedback("remb", sender, ssrcs, bitrate=mantissa << exp)
            if fb is None:
                fb = RtcpFeedback("other", sender, [media])
            fb.offset = pos
            fb.length = length
            out.append(fb)
        elif pt == RTCP_SDES:
            out.append(RtcpFeedback("sdes", 0, offset=pos, length=length))
        elif pt == RTCP_BYE:
            ssrcs = [
                _I.unpack_from(data, pos + 4 + 4 * i)[0]
                for i in range(count)
                if pos + 8 + 4 * i <= end
            ]
            out.append(RtcpFeedback("bye", 0, ssrcs, offset=pos, length=length))
        else:
            out.append(RtcpFeedback("other", 0, offset=pos, length=length))
        pos = end
    return out


def build_pli(sender_ssrc: int, media_ssrc: int) -> bytes:
    return _FB_HDR.pack(0x80 | FMT_PLI, RTCP_PSFB, 2, sender_ssrc, media_ssrc)


def build_fir(sender_ssrc: int, media_ssrc: int, seq_nr: int) -> bytes:
    return _FB_HDR.pack(0x80 | FMT_FIR, RTCP_PSFB, 4, sender_ssrc, 0) + struct.pack(
        "!IB3x", media_ssrc, seq_nr & 0xFF
    )


def build_nack(sender_ssrc: int, media_ssrc: int, lost: list[int]) -> bytes:
    """Generic NACK (RFC 4585 6.2.1) for the given sequence numbers."""
    fci = bytearray()
    seqs = sorted(set(lost), key=lambda s: (s - lost[0]) & 0xFFFF) if lost else []
    i = 0
    while i < len(seqs):
        pid = seqs[i]
        blp = 0
        i += 1
        while i < len(seqs):
            d = (seqs[i] - pid) & 0xFFFF
            if not 1 <= d <= 16:
                break
            blp |= 1 << (d - 1)
            i += 1
        fci += _HH.pack(pid, blp)
    words = 2 + len(fci) // 4
    return _FB_HDR.pack(0x80 | FMT_NACK, RTCP_RTPFB, words, sender_ssrc, media_ssrc) + fci


def build_remb(sender_ssrc: int, bitrate: int, ssrcs: list[int]) -> bytes:
    exp = 0
    mantissa = max(0, int(bitrate))
    while mantissa > 0x3FFFF:
        mantissa >>= 1
        exp += 1
    body = b"REMB" + bytes(
        [len(ssrcs), (exp << 2) | (mantissa >> 16), (mantissa >> 8) & 0xFF, mantissa & 0xFF]
    )
    body += b"".join(_I.pack(s) for s in ssrcs)
    return _FB_HDR.pack(0x80 | FMT_AFB, RTCP_PSFB, 2 + len(body) // 4, sender_ssrc, 0) + body


def build_rr(sender_ssrc: int, blocks: list[tuple[int, int, int, int, int, int, int]]) -> bytes:
    """Receiver report; blocks: (ssrc, fraction_lost, cumulative_lost, highest_seq,
    jitter, lsr, dlsr)."""
    out = bytearray(
        struct.pack("!BBHI", 0x80 | len(blocks), RTCP_RR, 1 + 6 * len(blocks), sender_ssrc)
    )
    for ssrc, fraction, lost, highest, jitter, lsr, dlsr in blocks:
        lost = max(-0x800000, min(0x7FFFFF, lost)) & 0xFFFFFF
        out += struct.pack(
            "!IIIIII",
            ssrc,
            (fraction & 0xFF) << 24 | lost,
            highest & 0xFFFFFFFF,
            jitter & 0xFFFFFFFF,
            lsr & 0xFFFFFFFF,
            dlsr & 0xFFFFFFFF,
        )
    return bytes(out)


def build_sr(ssrc: int, ntp: int, rtp_ts: int, packets: int, octets: int) -> bytes:
    """A sender report (without report blocks) for a forwarded stream, from a publisher SR.

    Keeps the publisher's NTP time (lip sync) with the rewritten RTP timestamp and the
    forwarded stream's own counters.
    """
    return struct.pack(
        "!BBHIQIII",
        0x80,
        RTCP_SR,
        6,
        ssrc,
        ntp,
        rtp_ts & 0xFFFFFFFF,
        packets & 0xFFFFFFFF,
        octets & 0xFFFFFFFF,
    )
