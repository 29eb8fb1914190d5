"""Crafted RTP packets for the SFU unit tests (helper module, unique name across tests/)."""

from __future__ import annotations

import struct

from parley.sfu import rtp as R


def rtp(
    seq: int,
    ts: int,
    ssrc: int,
    *,
    pt: int = 96,
    payload: bytes = b"\x00" * 20,
    marker: bool = False,
    ext: list[tuple[int, bytes]] | None = None,
) -> bytes:
    """An RTP packet; ``ext``: one-byte header extensions (id, value)."""
    b0 = 0x80
    body = b""
    if ext:
        b0 |= 0x10
        raw = b"".join(bytes([(i << 4) | (len(v) - 1)]) + v for i, v in ext)
        raw += b"\x00" * (-len(raw) % 4)
        body = struct.pack("!HH", 0xBEDE, len(raw) // 4) + raw
    hdr = struct.pack(
        "!BBHII", b0, (0x80 if marker else 0) | pt, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc
    )
    return hdr + body + payload


def vp8_payload(key: bool, start: bool = True, picture_id: int = 5) -> bytes:
    """VP8 payload descriptor with a 15-bit picture id, then a VP8 payload header."""
    desc = bytes([0x90 if start else 0x80, 0x80]) + struct.pack("!H", 0x8000 | picture_id)
    vp8 = bytes([0x00 if key else 0x01, 0, 0]) if start else b"\x55\x55\x55"
    return desc + vp8 + b"\x11" * 30


def audio(seq: int, ts: int, ssrc: int, level: int, ext_id: int = 1) -> bytes:
    return rtp(seq, ts, ssrc, pt=111, payload=b"\x01" * 40, ext=[(ext_id, bytes([level]))])


def parse(pkt: bytes | bytearray) -> tuple[int, int, int, int]:
    """(payload type, seq, ts, ssrc)."""
    seq, ts, ssrc = struct.unpack_from("!HII", pkt, 2)
    return pkt[1] & 0x7F, seq, ts, ssrc


class Wire:
    """Collects what the router sends to one peer (the send function of a publisher or
    subscriber), and sorts it into RTP, RTCP feedback and PLIs."""

    def __init__(self) -> None:
        self.out: list[bytes] = []

    def __call__(self, data: bytes | bytearray) -> None:
        self.out.append(bytes(data))

    def rtp(self) -> list[bytes]:
        return [p for p in self.out if not R.is_rtcp(p)]

    def rtcp(self) -> list[R.RtcpFeedback]:
        return [fb for p in self.out if R.is_rtcp(p) for fb in R.parse_rtcp(p)]

    def plis(self) -> list[int]:
        """The media SSRC of every PLI sent, in order."""
        return [fb.media_ssrcs[0] for fb in self.rtcp() if fb.kind == "pli"]
