"""VP8 payload inspection: the RTP payload descriptor and the key frame header.

References: VP8 RTP payload RFC 7741 (payload descriptor), VP8 bitstream RFC 6386
(9.1: the frame tag, the start code and the key frame's size).
"""

from __future__ import annotations

import struct

from ..rtp import payload_offset

__all__ = ["is_keyframe", "keyframe_size"]

_SIZE = struct.Struct("<HH")


def is_keyframe(data: bytes | bytearray, offset: int | None = None) -> bool:
    """True if the RTP packet starts a VP8 key frame (RFC 7741 descriptor + VP8 header)."""
    pos = payload_offset(data) if offset is None else offset
    n = len(data)
    if pos >= n:
        return False
    b = data[pos]
    if not b & 0x10 or b & 0x07:  # S bit (start of partition) and partition index 0
        return False
    pos += 1
    if b & 0x80:  # X: extended control bits
        if pos >= n:
            return False
        x = data[pos]
        pos += 1
        if x & 0x80:  # I: picture id
            if pos >= n:
                return False
            pos += 2 if data[pos] & 0x80 else 1
        if x & 0x40:  # L: TL0PICIDX
            pos += 1
        if x & 0x30:  # T or K: TID/KEYIDX byte
            pos += 1
    if pos >= n:
        return False
    return not data[pos] & 0x01  # P bit of the VP8 payload header: 0 = key frame


def keyframe_size(data: bytes | bytearray) -> tuple[int, int] | None:
    """(width, height) if the RTP packet starts a VP8 key frame (RFC 6386 9.1), else None."""
    pos = payload_offset(data)
    n = len(data)
    if pos >= n:
        return None
    b = data[pos]
    if not b & 0x10 or b & 0x07:
        return None
    pos += 1
    if b & 0x80:
        if pos >= n:
            return None
        x = data[pos]
        pos += 1
        if x & 0x80:
            if pos >= n:
                return None
            pos += 2 if data[pos] & 0x80 else 1
        if x & 0x40:
            pos += 1
        if x & 0x30:
            pos += 1
    # 3-byte frame tag, start code 9d 01 2a, then 14-bit width and height (+2 scale bits)
    if pos + 10 > n or data[pos] & 0x01 or data[pos + 3 : pos + 6] != b"\x9d\x01\x2a":
        return None
    w, h = _SIZE.unpack_from(data, pos + 6)
    return w & 0x3FFF, h & 0x3FFF
