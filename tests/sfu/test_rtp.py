"""Header parsing/rewriting and RTCP parsing/building on crafted bytes."""

from __future__ import annotations

import struct

from parley.sfu import rtp as R
from parley.sfu.codecs import vp8 as VP8
from tests.sfu.sfu_packets import audio, parse, rtp, vp8_payload


def test_payload_offset_and_extensions() -> None:
    p = rtp(1, 2, 3, ext=[(1, b"\x85"), (3, b"abc")], payload=b"PAYLOAD")
    assert p[R.payload_offset(p) :] == b"PAYLOAD"
    assert R.audio_level(p, 1) == 5
    assert R.find_extension(p, 3) > 0 and p[R.find_extension(p, 3) :][:3] == b"abc"
    assert R.find_extension(p, 2) == -1
    assert R.audio_level(rtp(1, 2, 3), 1) == -1


def test_two_byte_extension_profile() -> None:
    raw = bytes([5, 1, 0x33, 0])  # id 5, length 1, value, padding
    hdr = struct.pack("!BBHII", 0x90, 111, 1, 2, 3) + struct.pack("!HH", 0x1000, 1)
    p = hdr + raw + b"x"
    assert R.audio_level(p, 5) == 0x33


def test_vp8_keyframe_detection() -> None:
    assert VP8.is_keyframe(rtp(1, 1, 1, payload=vp8_payload(True)))
    assert not VP8.is_keyframe(rtp(1, 1, 1, payload=vp8_payload(False)))
    assert not VP8.is_keyframe(rtp(1, 1, 1, payload=vp8_payload(True, start=False)))
    # with header extensions in front
    assert VP8.is_keyframe(rtp(1, 1, 1, payload=vp8_payload(True), ext=[(2, b"\x01\x02\x03")]))


def test_rewriter_continuity_across_source_switch() -> None:
    rw = R.StreamRewriter(0xABCD, 100, 90000, initial_seq=1000, initial_ts=5000)
    out = [rw.rewrite(rtp(60000 + i, 90000 * 7 + 3000 * i, 11), 1.0 + i / 30) for i in range(5)]
    assert all(o is not None for o in out)
    seqs = [parse(o)[1] for o in out if o]
    assert seqs == [1000, 1001, 1002, 1003, 1004]
    assert all(parse(o)[0] == 100 and parse(o)[3] == 0xABCD for o in out if o)
    # switch to a different source with unrelated numbering, 100 ms later
    rw.resync()
    o2 = [rw.rewrite(rtp(65530 + i, 12345 + 3000 * i, 22), 1.2 + i / 30) for i in range(10)]
    seqs2 = [parse(o)[1] for o in o2 if o]
    assert seqs2 == [(1005 + i) & 0xFFFF for i in range(10)]  # no gap, across seq wrap of input
    ts_last_a = parse(out[-1])[2]  # type: ignore[arg-type]
    ts_first_b = parse(o2[0])[2]  # type: ignore[arg-type]
    gap = (ts_first_b - ts_last_a) & 0xFFFFFFFF
    assert 0 < gap <= int((1.2 - (1.0 + 4 / 30)) * 90000) + 1
    # a late packet of the new source from before the switch point is dropped
    assert rw.rewrite(rtp(65529, 0, 22), 1.6) is None
    # a late packet of the old source is never forwarded as the new one
    late = rw.rewrite(rtp(60002, 0, 11), 1.6)
    assert late is not None and parse(late)[1] == 1015  # a new segment, still gapless
    assert rw.switches == 3


def test_rewriter_reordering_and_long_run() -> None:
    rw = R.StreamRewriter(1, 96, 90000, initial_seq=0)
    rw.rewrite(rtp(10, 0, 5), 0.0)
    rw.rewrite(rtp(12, 0, 5), 0.0)
    o = rw.rewrite(rtp(11, 0, 5), 0.0)  # reordered, still in the segment
    assert o is not None and parse(o)[1] == 1
    assert rw.last_seq == 2
    for i in range(13, 13 + 70000):  # more than a full 16-bit cycle
        assert rw.rewrite(rtp(i, 0, 5), 0.0) is not None
    assert rw.last_seq == (13 + 70000 - 1 - 10) & 0xFFFF


def test_rewriter_strips_extensions() -> None:
    rw = R.StreamRewriter(9, 111, 48000)
    o = rw.rewrite(audio(1, 960, 7, 30), 0.0)
    assert o is not None and not o[0] & 0x10 and o[12:] == b"\x01" * 40
    rw2 = R.StreamRewriter(9, 111, 48000, strip_extensions=False)
    o2 = rw2.rewrite(audio(1, 960, 7, 30), 0.0)
    assert o2 is not None and R.audio_level(o2, 1) == 30


def test_retransmit_mapping() -> None:
    rw = R.StreamRewriter(9, 96, 90000, initial_seq=500)
    pkts = [rtp(100 + i, 1000, 7) for i in range(5)]
    for p in pkts:
        rw.rewrite(p, 0.0)
    assert rw.input_seq(502) == 102
    assert rw.input_seq(505) == -1  # not sent yet
    assert rw.input_seq(499) == -1  # before the segment
    again = rw.retransmit(pkts[2])
    assert again is not None and parse(again)[1] == 502


def test_rtx_wrap_unwrap_roundtrip() -> None:
    p = rtp(4242, 77, 5, pt=96, payload=b"media")
    w = R.rtx_wrap(p, rtx_ssrc=6, rtx_pt=97, rtx_seq=9)
    assert parse(w) == (97, 9, 77, 6)
    u = R.rtx_unwrap(w, ssrc=5, payload_type=96)
    assert u == p


def test_rtcp_build_and_parse_compound() -> None:
    lost = [100, 101, 105, 117, 118, 300]
    compound = (
        R.build_rr(1, [(5, 10, 3, 70000, 0, 0, 0)])
        + R.build_pli(1, 5)
        + R.build_fir(1, 6, 3)
        + R.build_nack(1, 5, lost)
        + R.build_remb(1, 1_234_567, [5, 6])
        + R.build_sr(8, 0x1122334455667788, 999, 10, 2000)
    )
    fbs = R.parse_rtcp(compound)
    kinds = [f.kind for f in fbs]
    assert kinds == ["rr", "pli", "fir", "nack", "remb", "sr"]
    assert fbs[0].media_ssrcs == [5]
    assert fbs[1].media_ssrcs == [5]
    assert fbs[2].media_ssrcs == [6]
    assert sorted(fbs[3].lost) == sorted(lost)
    assert abs(fbs[4].bitrate - 1_234_567) < 1_234_567 / 1000 and fbs[4].media_ssrcs == [5, 6]
    assert fbs[5].sender_ssrc == 8 and fbs[5].ntp == 0x1122334455667788 and fbs[5].rtp_ts == 999
    # the same packets as aiortc parses them (an independent implementation)
    from aiortc.rtp import RtcpPacket, RtcpPsfbPacket, RtcpRtpfbPacket

    parsed = RtcpPacket.parse(compound)
    nack = [p for p in parsed if isinstance(p, RtcpRtpfbPacket)][0]
    assert sorted(nack.lost) == sorted(lost)
    assert any(isinstance(p, RtcpPsfbPacket) and p.fmt == 1 for p in parsed)


def test_parse_rtcp_ignores_garbage() -> None:
    assert R.parse_rtcp(b"\x00\x01") == []
    assert R.parse_rtcp(R.build_pli(1, 2) + b"\xff\xff\xff")[0].kind == "pli"
    assert R.is_rtcp(R.build_pli(1, 2)) and not R.is_rtcp(rtp(1, 1, 1))


def test_retransmit_cache() -> None:
    c = R.RetransmitCache(8)
    for s in range(65530, 65546):
        c.put(s & 0xFFFF, bytes([s & 0xFF]))
    assert c.get(65545 & 0xFFFF) == bytes([65545 & 0xFF])
    assert c.get(65530) is None  # evicted
    assert (65540 & 0xFFFF) in c
