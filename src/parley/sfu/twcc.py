"""Transport-wide congestion control feedback to publishers (sans-I/O).

With TWCC (draft-holmer-rmcat-transport-wide-cc-extensions-01) the browser numbers
every RTP packet it sends on a transport with one transport-wide sequence number (a
16-bit header extension), and the receiver only reports *when* each packet arrived,
or that it did not; the browser's own send-side estimator (GCC) turns that into its
sending rate.  The SFU does not have to guess a bit rate (as with REMB).

:class:`TwccRecorder` is one publisher transport's receive side:

* hot path, per incoming RTP packet: :meth:`TwccRecorder.on_rtp` (find the extension,
  one ``dict`` store) or :meth:`TwccRecorder.record` (given the sequence number);
* every 50-100 ms (the caller's tick): :meth:`TwccRecorder.build` returns the RTCP
  transport-feedback packets (RTPFB, PT 205, FMT 15) for what arrived since, usually
  one.  Sequence numbers are unwrapped (16-bit wraparound); missing ones are reported
  as not received; a packet that arrives after it was reported lost is reported again
  (with everything after it); a receive delta that does not fit 16 bits (a pause of
  more than ~8 s) starts a new feedback packet with its own reference time.

Memory is bounded: arrivals are kept for ``history`` seconds (at most
``max_history`` packets) to report reordered packets, and a feedback never covers
more than ``MAX_SPAN`` sequence numbers; what arrives between two builds is one entry
per 16-bit sequence number (at most 65,536, even if :meth:`TwccRecorder.build` is never
called).

Layout of one feedback packet (all big-endian)::

    V=2 P FMT=15 | PT=205 | length          SSRC of packet sender | SSRC of media source
    base sequence number (16) | packet status count (16)
    reference time (24, signed, 64 ms units) | feedback packet count (8)
    packet status chunks (16 bits each) ...  receive deltas (8 or 16 bits each) ...
    [padding: zeros, last byte = number of padding bytes, P bit set]

Status symbols: 0 not received, 1 received with a small delta (1 byte, 0..63.75 ms),
2 received with a large or negative delta (2 bytes, signed).  Chunks: run length
(``0 SS LLLLLLLLLLLLL``: one symbol repeated up to 8191 times) or status vector
(``1 0`` + 14 one-bit symbols, or ``1 1`` + 7 two-bit symbols).  Deltas are in 250 µs
units; the first received packet's is relative to the reference time, every other
one relative to the previous received packet.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from .rtp import RTCP_RTPFB, find_extension
from .sdp import section_mid, sections

__all__ = [
    "FMT_TWCC",
    "MAX_SPAN",
    "TWCC_URI",
    "TwccOffer",
    "TwccRecorder",
    "accept_in_answer",
    "encode_chunks",
    "parse_offer",
]

TWCC_URI = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"
FMT_TWCC = 15  # RTPFB transport-wide congestion control feedback

#: 250 µs ticks per second, and per 64 ms reference-time unit.
TICKS_PER_S = 4000
TICKS_PER_REF = 256
#: A feedback never covers more sequence numbers than this (a jump: report from later).
MAX_SPAN = 0x4000
#: Bytes of one feedback packet (header included) before it is split.
MAX_PACKET = 1200

_NOT_RECEIVED = 0
_SMALL = 1
_LARGE = 2
_RUN_MAX = 0x1FFF

_HEADER = struct.Struct("!BBHIIHHI")
_LARGE_DELTA = struct.Struct("!h")
_CHUNK = struct.Struct("!H")


def encode_chunks(symbols: list[int]) -> bytes:
    """Packet status chunks for ``symbols`` (0/1/2 per sequence number, in order).

    Runs of 14 or more equal symbols (or a run to the end) become run-length chunks;
    otherwise a one-bit status vector (14 symbols, all 0/1) or a two-bit one (7).
    Only the last chunk may be a vector holding fewer symbols than it has room for
    (the packet status count says where the symbols end).
    """
    out = bytearray()
    n = len(symbols)
    i = 0
    while i < n:
        sym = symbols[i]
        run = 1
        while i + run < n and symbols[i + run] == sym and run < _RUN_MAX:
            run += 1
        if run >= 14 or i + run == n:
            out += _CHUNK.pack((sym << 13) | run)
            i += run
            continue
        part = symbols[i : i + 14]
        if _LARGE not in part:
            word = 0x8000
            for k, s in enumerate(part):
                word |= s << (13 - k)
            out += _CHUNK.pack(word)
            i += len(part)
            continue
        part = symbols[i : i + 7]
        word = 0xC000
        for k, s in enumerate(part):
            word |= s << (12 - 2 * k)
        out += _CHUNK.pack(word)
        i += len(part)
    return bytes(out)


class TwccRecorder:
    """Arrival times of one transport's packets, and the feedback that reports them."""

    __slots__ = (
        "ext_id",
        "history",
        "max_history",
        "feedback_count",
        "packets_sent",
        "received",
        "_pending",
        "_arrivals",
        "_highest",
        "_next",
        "_floor",
    )

    def __init__(self, ext_id: int, *, history: float = 0.5, max_history: int = 2048) -> None:
        self.ext_id = ext_id
        self.history = history
        self.max_history = max_history
        self.feedback_count = 0  # the 8-bit counter of the next feedback packet
        self.packets_sent = 0  # feedback packets built
        self.received = 0  # RTP packets with a sequence number seen
        # seq (16 bit) -> arrival time, since the last build: the only per-packet work
        self._pending: dict[int, float] = {}
        # unwrapped seq -> arrival time, the last `history` seconds
        self._arrivals: dict[int, float] = {}
        self._highest = -1  # highest unwrapped seq seen (-1: none yet)
        self._next = 0  # first unwrapped seq not reported yet
        self._floor = 0  # arrivals below this are too old to report

    # -- hot path ---------------------------------------------------------
    def record(self, seq: int, now: float) -> None:
        """One RTP packet with transport-wide sequence number ``seq`` arrived at ``now``."""
        self._pending[seq] = now

    def on_rtp(self, data: bytes | bytearray, now: float) -> None:
        """A plaintext RTP packet arrived: record its sequence number, if it has one."""
        pos = find_extension(data, self.ext_id)
        if 0 <= pos < len(data) - 1:
            self._pending[(data[pos] << 8) | data[pos + 1]] = now

    # -- feedback ---------------------------------------------------------
    def build(self, now: float, sender_ssrc: int, media_ssrc: int) -> list[bytes]:
        """Transport-feedback packets for the packets recorded since the last call.

        Empty when nothing arrived.  Each packet is a complete RTCP packet (padded to
        32 bits with the P bit); send each as it is.
        """
        pending = self._pending
        if not pending:
            return []
        self._pending = {}
        self.received += len(pending)
        arrivals = self._arrivals
        highest = self._highest
        start = self._next
        for seq, t in pending.items():
            if highest < 0:
                # the first packet: unwrapped numbers start one cycle up, so a packet
                # reordered before it still gets a positive number
                ext = highest = start = seq + 0x10000
            else:
                d = (seq - highest) & 0xFFFF
                ext = highest + d if d < 0x8000 else highest + d - 0x10000
                if ext > highest:
                    highest = ext
            if ext < self._floor or ext in arrivals:
                continue  # too old to report, or a duplicate
            arrivals[ext] = t
            if ext < start:
                start = ext  # reported lost, arrived after all: report again from there
        if highest - start >= MAX_SPAN:
            start = highest - MAX_SPAN + 1
        self._highest = highest
        packets: list[bytes] = []
        if highest >= start:
            while start <= highest:
                pkt, start = self._packet(start, highest, sender_ssrc, media_ssrc)
                packets.append(pkt)
            self._next = highest + 1
        self._prune(now, highest)
        return packets

    def _packet(self, begin: int, end: int, sender_ssrc: int, media_ssrc: int) -> tuple[bytes, int]:
        """One feedback packet from ``begin`` (to ``end`` at most); returns it and where
        the next one starts.  It always ends with a received packet."""
        get = self._arrivals.get
        symbols: list[int] = []
        append = symbols.append
        deltas = bytearray()
        ref = -1
        prev = 0
        # up to the last received packet: symbols (seq - begin), bytes of deltas
        last_received = -1
        nbytes = 0
        budget = MAX_PACKET - 22  # header, and the chunk a partial group of 7 may need
        seq = begin
        while seq <= end:  # (at most MAX_SPAN < 65536 symbols: the count fits 16 bits)
            t = get(seq)
            if t is None:
                append(_NOT_RECEIVED)
                seq += 1
                continue
            tick = int(t * TICKS_PER_S)
            if ref < 0:
                ref = tick // TICKS_PER_REF
                prev = ref * TICKS_PER_REF
            delta = tick - prev
            if 0 <= delta <= 0xFF:
                # worst case of the chunks: 2 bytes per 7 symbols
                if nbytes + 1 + (seq - begin) // 7 * 2 > budget and last_received >= 0:
                    break
                append(_SMALL)
                deltas.append(delta)
                nbytes += 1
            elif -0x8000 <= delta <= 0x7FFF:
                if nbytes + 2 + (seq - begin) // 7 * 2 > budget and last_received >= 0:
                    break
                append(_LARGE)
                deltas += _LARGE_DELTA.pack(delta)
                nbytes += 2
            else:
                break  # does not fit: the next feedback packet starts here
            prev = tick
            seq += 1
            last_received = seq - begin
        if last_received < 0:  # nothing received (cannot happen: `end` was received)
            last_received = len(symbols)
            ref = 0
        del symbols[last_received:]
        body = encode_chunks(symbols) + deltas
        length = 20 + len(body)
        pad = -length % 4
        if pad:
            body += bytes(pad - 1) + bytes([pad])
        header = _HEADER.pack(
            (0xA0 if pad else 0x80) | FMT_TWCC,
            RTCP_RTPFB,
            (length + pad) // 4 - 1,
            sender_ssrc,
            media_ssrc,
            begin & 0xFFFF,
            len(symbols),
            ((ref & 0xFFFFFF) << 8) | self.feedback_count,
        )
        self.feedback_count = (self.feedback_count + 1) & 0xFF
        self.packets_sent += 1
        return header + body, begin + len(symbols)

    def _prune(self, now: float, highest: int) -> None:
        """Forget arrivals older than ``history`` or more than ``max_history`` back."""
        arrivals = self._arrivals
        old_time = now - self.history
        old_seq = highest - self.max_history
        dead = []
        for ext, t in arrivals.items():  # insertion order: roughly arrival order
            if t >= old_time and ext > old_seq:
                break
            dead.append(ext)
        for ext in dead:
            del arrivals[ext]
        if dead:
            self._floor = max(self._floor, max(dead) + 1)


# ---------------------------------------------------------------------------- SDP


@dataclass
class TwccOffer:
    """What one offered media section says about transport-cc."""

    mid: str
    ext_id: int  # the transport-wide sequence number extension's id (0: not offered)
    feedback_pts: set[str] = field(default_factory=set)  # payload types; "*" = all


def parse_offer(sdp: str) -> dict[str, TwccOffer]:
    """Media sections of an offer that offer transport-cc (the extension), by mid.

    aiortc 1.16 parses neither the extension's use nor ``a=rtcp-fb:* transport-cc``
    into its answers; this reads them from the SDP text.
    """
    found: dict[str, TwccOffer] = {}
    for section in sections(sdp)[1:]:
        mid = section_mid(section)
        offer = TwccOffer(mid, 0)
        for line in section:
            if line.startswith("a=extmap:"):
                parts = line[9:].split()
                ident = parts[0].split("/")[0] if parts else ""
                if len(parts) >= 2 and parts[1] == TWCC_URI and ident.isdigit():
                    offer.ext_id = int(ident)
            elif line.startswith("a=rtcp-fb:"):
                parts = line[10:].split()
                if len(parts) >= 2 and parts[1] == "transport-cc":
                    offer.feedback_pts.add(parts[0])
        if mid and offer.ext_id:
            found[mid] = offer
    return found


def accept_in_answer(answer: str, offers: dict[str, TwccOffer]) -> tuple[str, int]:
    """``answer`` accepting the offered transport-cc: (SDP text, extension id or 0).

    Each receiving answer section whose mid offered the extension gets its ``a=extmap``
    (the offer's id, unless the answer uses that id for something else) and
    ``a=rtcp-fb:PT transport-cc`` for each of its payload types the offer had it for.
    The id is returned (the same in every section of a bundle) when at least one
    section got both, i.e. when the browser will take transport-cc feedback.
    """
    if not offers:
        return answer, 0
    eol = "\r\n" if "\r\n" in answer else "\n"
    parts = sections(answer)
    negotiated = 0
    for section in parts[1:]:
        offer = offers.get(section_mid(section))
        if offer is None or section[0].split()[1:2] == ["0"]:
            continue
        if not any(ln in ("a=recvonly", "a=sendrecv") for ln in section):
            continue
        extmaps = {
            ln[9:].split()[0].split("/")[0]: ln.split()[1]
            for ln in section
            if ln.startswith("a=extmap:") and " " in ln
        }
        if extmaps.get(str(offer.ext_id), TWCC_URI) != TWCC_URI:
            continue  # the id is taken in the answer: do not negotiate it here
        if str(offer.ext_id) not in extmaps:
            at = max(
                (i for i, ln in enumerate(section) if ln.startswith(("a=extmap:", "a=mid:"))),
                default=len(section) - 1,
            )
            section.insert(at + 1, f"a=extmap:{offer.ext_id} {TWCC_URI}")
        feedback = False
        pts = [ln[9:].split()[0] for ln in section if ln.startswith("a=rtpmap:") and " " in ln]
        for pt in pts:
            if "*" not in offer.feedback_pts and pt not in offer.feedback_pts:
                continue
            line = f"a=rtcp-fb:{pt} transport-cc"
            feedback = True
            if line in section:
                continue
            prefixes = (f"a=rtpmap:{pt} ", f"a=rtcp-fb:{pt} ", f"a=fmtp:{pt} ")
            at = max(i for i, ln in enumerate(section) if ln.startswith(prefixes))
            section.insert(at + 1, line)
        if feedback and not negotiated:
            negotiated = offer.ext_id
    lines = [ln for section in parts for ln in section]
    return eol.join(lines) + eol, negotiated
