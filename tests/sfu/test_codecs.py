"""Codec payload inspection (``parley.sfu.codecs``): plain bytes in, answers out."""

from __future__ import annotations

import pytest

from parley.sfu import codecs
from parley.sfu.codecs import h264, vp8


def test_exp_golomb_reader() -> None:
    # bits: 1 | 010 | 011 | 00100 | 00101 -> ue 0, 1, 2, 3 then se(4) = -2
    r = h264.BitReader(bytes([0b10100110, 0b01000010, 0b10000000]))
    assert [r.ue(), r.ue(), r.ue(), r.ue()] == [0, 1, 2, 3]
    assert r.se() == -2
    with pytest.raises(ValueError, match="too short"):
        h264.BitReader(b"\x00").ue()  # leading zeros run off the end
    with pytest.raises(ValueError, match="exp-Golomb"):
        h264.BitReader(b"\x00" * 8).ue()  # more than 31 leading zeros: refused, not looped


def test_sps_size_rejects_a_truncated_sps() -> None:
    with pytest.raises(ValueError):
        h264.sps_size(b"\x67\x42\xc0")


def test_nal_units_of_stap_a_stop_at_a_unit_running_past_the_packet() -> None:
    header = bytes([0x80, 102, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1])
    stap = bytes([24]) + b"\x00\x02\x67\x42" + b"\x00\x09\x68"  # second unit claims 9 bytes
    pkt = header + stap
    assert h264.nal_units(pkt) == [(15, 17)]


def test_keyframe_functions_know_vp8_and_h264_only() -> None:
    assert codecs.keyframe_functions("vp8") == (vp8.is_keyframe, vp8.keyframe_size)
    assert codecs.keyframe_functions("H264") == (h264.is_keyframe, h264.keyframe_size)
    assert codecs.keyframe_functions("AV1") is None
