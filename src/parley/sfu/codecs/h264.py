"""H.264 payload inspection: NAL units in RTP packets, and the SPS's picture size.

References: H.264 RTP payload RFC 6184 (packetization mode 1: single NAL unit packets,
STAP-A, FU-A); H.264 itself: ITU-T H.264 7.3.2.1 for the sequence parameter set (SPS),
read with an exp-Golomb bit reader (9.1).
"""

from __future__ import annotations

import struct

from ..rtp import payload_offset

__all__ = ["BitReader", "is_keyframe", "keyframe_size", "nal_units", "sps_size"]

_H = struct.Struct("!H")

_NAL_IDR = 5
_NAL_SPS = 7
_NAL_STAP_A = 24
_NAL_FU_A = 28


def _key_nal(data: bytes | bytearray, nal_type: int, body: int, n: int) -> bool:
    """A key-frame start: an SPS, or the first slice (first_mb_in_slice 0) of an IDR.

    ``body`` is the offset of the byte after the NAL header (for IDR: the slice header,
    whose first field first_mb_in_slice is ue(v): value 0 is the single bit ``1``).
    """
    if nal_type == _NAL_SPS:
        return True
    return nal_type == _NAL_IDR and body < n and bool(data[body] & 0x80)


def is_keyframe(data: bytes | bytearray, offset: int | None = None) -> bool:
    """True if the RTP packet starts an H.264 key frame (RFC 6184 packetization mode 1).

    Single NAL unit packets, STAP-A (any aggregated unit) and FU-A start fragments are
    looked at; a key frame starts at its SPS (browsers send SPS and PPS right before each
    IDR picture) or, without one, at the first slice of the IDR picture.
    """
    pos = payload_offset(data) if offset is None else offset
    n = len(data)
    if pos >= n:
        return False
    nal_type = data[pos] & 0x1F
    if nal_type < _NAL_STAP_A:
        return _key_nal(data, nal_type, pos + 1, n)
    if nal_type == _NAL_STAP_A:
        pos += 1
        while pos + 2 < n:
            size = _H.unpack_from(data, pos)[0]
            pos += 2
            if _key_nal(data, data[pos] & 0x1F, pos + 1, min(n, pos + size)):
                return True
            pos += size
        return False
    if nal_type == _NAL_FU_A and pos + 1 < n:
        fu = data[pos + 1]
        return bool(fu & 0x80) and _key_nal(data, fu & 0x1F, pos + 2, n)
    return False


def nal_units(data: bytes | bytearray) -> list[tuple[int, int]]:
    """(start, end) of the complete NAL units in a single NAL unit or STAP-A packet."""
    pos = payload_offset(data)
    n = len(data)
    if data[0] & 0x20 and n > pos:  # RTP padding
        n -= data[n - 1]
    if pos >= n:
        return []
    nal_type = data[pos] & 0x1F
    if nal_type < _NAL_STAP_A:
        return [(pos, n)]
    units = []
    if nal_type == _NAL_STAP_A:
        pos += 1
        while pos + 2 < n:
            size = _H.unpack_from(data, pos)[0]
            pos += 2
            if size == 0 or pos + size > n:
                break
            units.append((pos, pos + size))
            pos += size
    return units


class BitReader:
    """Exp-Golomb bit reader over an RBSP (emulation prevention bytes removed)."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def bit(self) -> int:
        byte = self.pos >> 3
        if byte >= len(self.data):
            raise ValueError("SPS too short")
        b = (self.data[byte] >> (7 - (self.pos & 7))) & 1
        self.pos += 1
        return b

    def bits(self, count: int) -> int:
        v = 0
        for _ in range(count):
            v = (v << 1) | self.bit()
        return v

    def ue(self) -> int:
        zeros = 0
        while not self.bit():
            zeros += 1
            if zeros > 31:
                raise ValueError("bad exp-Golomb code")
        return (1 << zeros) - 1 + self.bits(zeros)

    def se(self) -> int:
        v = self.ue()
        return (v + 1) // 2 if v & 1 else -(v // 2)


_HIGH_PROFILES = frozenset((100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135))


def sps_size(sps: bytes | bytearray) -> tuple[int, int]:
    """(width, height) of the pictures an SPS NAL unit (header byte included) describes.

    Raises ValueError on a truncated or malformed SPS.
    """
    rbsp = bytes(sps[1:]).replace(b"\x00\x00\x03", b"\x00\x00")
    r = BitReader(rbsp)
    profile = r.bits(8)
    r.bits(16)  # constraint flags, level_idc
    r.ue()  # seq_parameter_set_id
    chroma = 1
    if profile in _HIGH_PROFILES:
        chroma = r.ue()
        if chroma == 3:
            r.bit()  # separate_colour_plane_flag
        r.ue()  # bit_depth_luma_minus8
        r.ue()  # bit_depth_chroma_minus8
        r.bit()  # qpprime_y_zero_transform_bypass_flag
        if r.bit():  # seq_scaling_matrix_present_flag
            for i in range(8 if chroma != 3 else 12):
                if r.bit():  # seq_scaling_list_present_flag[i]
                    last = scale = 8
                    for _ in range(16 if i < 6 else 64):
                        if scale:
                            scale = (last + r.se()) & 0xFF
                        last = scale or last
    r.ue()  # log2_max_frame_num_minus4
    poc_type = r.ue()
    if poc_type == 0:
        r.ue()  # log2_max_pic_order_cnt_lsb_minus4
    elif poc_type == 1:
        r.bit()
        r.se()
        r.se()
        for _ in range(r.ue()):
            r.se()
    r.ue()  # max_num_ref_frames
    r.bit()  # gaps_in_frame_num_value_allowed_flag
    width_mbs = r.ue() + 1
    height_units = r.ue() + 1
    frame_mbs_only = r.bit()
    if not frame_mbs_only:
        r.bit()  # mb_adaptive_frame_field_flag
    r.bit()  # direct_8x8_inference_flag
    width = width_mbs * 16
    height = (2 - frame_mbs_only) * height_units * 16
    if r.bit():  # frame_cropping_flag
        left, right, top, bottom = r.ue(), r.ue(), r.ue(), r.ue()
        crop_x = 1 if chroma in (0, 3) else 2
        crop_y = (2 if chroma == 1 else 1) * (2 - frame_mbs_only)
        width -= crop_x * (left + right)
        height -= crop_y * (top + bottom)
    if width <= 0 or height <= 0:
        raise ValueError("bad SPS picture size")
    return width, height


def keyframe_size(data: bytes | bytearray) -> tuple[int, int] | None:
    """(width, height) from the SPS an RTP packet carries (single NAL or STAP-A), or None."""
    for start, end in nal_units(data):
        if data[start] & 0x1F == _NAL_SPS:
            try:
                return sps_size(data[start:end])
            except ValueError:
                return None
    return None
