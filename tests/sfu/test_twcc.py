"""Transport-wide congestion control feedback: built by parley.sfu.twcc, parsed back here.

The parser below is written from draft-holmer-rmcat-transport-wide-cc-extensions-01
section 3.1 independently of the builder; one test checks a byte layout worked out by
hand.  Arrival times are whole 250 µs ticks (plus a hair, so float rounding never
crosses a tick), which the feedback must reproduce exactly.
"""

from __future__ import annotations

import struct
from typing import Any

import pytest

from parley.sfu import rtp as R
from parley.sfu import twcc as T
from tests.sfu.sfu_packets import rtp

SENDER = 0x01020304
MEDIA = 0x0A0B0C0D


def at(tick: int) -> float:
    """Arrival time (seconds) of 250 µs tick ``tick``."""
    return tick / 4000 + 1e-7


def parse_feedback(pkt: bytes) -> dict[str, Any]:
    """One transport-feedback packet -> base, count, ref (64 ms units), fb count,
    sender/media SSRC, symbols and {seq: arrival tick or None}."""
    b0, pt, words = struct.unpack_from("!BBH", pkt, 0)
    assert b0 >> 6 == 2, "version"
    assert b0 & 0x1F == 15 and pt == 205, "RTPFB / FMT 15"
    assert len(pkt) == 4 * (words + 1), "length field"
    end = len(pkt)
    if b0 & 0x20:
        pad = pkt[-1]
        assert 1 <= pad <= 3 and all(b == 0 for b in pkt[end - pad : end - 1])
        end -= pad
    sender, media, base, count = struct.unpack_from("!IIHH", pkt, 4)
    ref = int.from_bytes(pkt[16:19], "big")
    if ref & 0x800000:
        ref -= 1 << 24
    fb_count = pkt[19]
    pos = 20
    symbols: list[int] = []
    kinds: list[str] = []
    while len(symbols) < count:
        (chunk,) = struct.unpack_from("!H", pkt, pos)
        pos += 2
        if not chunk & 0x8000:  # run length
            symbols += [(chunk >> 13) & 0x3] * (chunk & 0x1FFF)
            kinds.append("run")
        elif not chunk & 0x4000:  # 14 one-bit symbols
            symbols += [(chunk >> (13 - k)) & 1 for k in range(14)]
            kinds.append("vec1")
        else:  # 7 two-bit symbols
            symbols += [(chunk >> (12 - 2 * k)) & 3 for k in range(7)]
            kinds.append("vec2")
    symbols = symbols[:count]
    assert 3 not in symbols
    tick = ref * 256
    arrivals: dict[int, int | None] = {}
    for i, s in enumerate(symbols):
        seq = (base + i) & 0xFFFF
        if s == 0:
            arrivals[seq] = None
            continue
        if s == 1:
            delta = pkt[pos]
            pos += 1
        else:
            (delta,) = struct.unpack_from("!h", pkt, pos)
            pos += 2
        tick += delta
        arrivals[seq] = tick
    assert pos == end, "bytes left after the receive deltas (besides padding)"
    return {
        "sender": sender,
        "media": media,
        "base": base,
        "count": count,
        "ref": ref,
        "fb_count": fb_count,
        "symbols": symbols,
        "chunks": kinds,
        "arrivals": arrivals,
    }


def merged(packets: list[bytes]) -> dict[int, int | None]:
    """Every packet's report, later packets overriding earlier ones."""
    out: dict[int, int | None] = {}
    for p in packets:
        out.update(parse_feedback(p)["arrivals"])
    return out


def test_byte_layout_by_hand() -> None:
    rec = T.TwccRecorder(5)
    # 100 at 1.000 s (tick 4000), 101 at +1 ms, 103 at +0.5 ms; 102 lost
    rec.record(100, at(4000))
    rec.record(101, at(4004))
    rec.record(103, at(4006))
    (pkt,) = rec.build(1.1, SENDER, MEDIA)
    # reference time 4000 // 256 = 15 (tick 3840): deltas 160, 4, 2 (small)
    # symbols 1 1 0 1 -> one-bit vector 1 0 1101 0000000000 = 0xB400
    # 20 + 2 + 3 = 25 bytes -> 3 bytes of padding (P bit), 28 bytes = 7 words
    expected = (
        bytes([0xAF, 205, 0, 6])
        + struct.pack("!II", SENDER, MEDIA)
        + bytes([0x00, 100, 0x00, 4])
        + bytes([0, 0, 15, 0])
        + bytes([0xB4, 0x00, 160, 4, 2])
        + bytes([0, 0, 3])
    )
    assert pkt == expected
    assert rec.packets_sent == 1 and rec.feedback_count == 1 and rec.received == 3
    # nothing new: no feedback
    assert rec.build(1.2, SENDER, MEDIA) == []


def test_in_order_run_and_parse_rtcp() -> None:
    rec = T.TwccRecorder(3)
    ticks = {1000 + i: 40_000 + 20 * i for i in range(100)}  # every 5 ms
    for seq, tick in ticks.items():
        rec.record(seq, at(tick))
    (pkt,) = rec.build(12.0, SENDER, MEDIA)
    fb = parse_feedback(pkt)
    assert fb["base"] == 1000 and fb["count"] == 100 and fb["fb_count"] == 0
    assert fb["sender"] == SENDER and fb["media"] == MEDIA
    assert fb["arrivals"] == ticks
    assert fb["chunks"] == ["run"]  # 100 x "small delta"
    assert fb["ref"] == 40_000 // 256
    # the project's own RTCP parser walks over it (e.g. inside a compound)
    parsed = R.parse_rtcp(pkt + R.build_pli(1, 2))
    assert [p.kind for p in parsed] == ["other", "pli"] and parsed[0].length == len(pkt)


def test_loss_is_reported_not_received() -> None:
    rec = T.TwccRecorder(3)
    received = [0, 1, 2, 5, 6, 30, 31]  # 3-4 lost, 7-29 lost (a run of 23)
    for seq in received:
        rec.record(seq, at(10_000 + 8 * seq))
    (pkt,) = rec.build(3.0, SENDER, MEDIA)
    fb = parse_feedback(pkt)
    assert fb["base"] == 0 and fb["count"] == 32
    for seq in range(32):
        assert fb["arrivals"][seq] == (10_000 + 8 * seq if seq in received else None)
    assert "run" in fb["chunks"] and "vec1" in fb["chunks"]


def test_reordering_in_one_window_gives_negative_deltas() -> None:
    rec = T.TwccRecorder(3)
    order = [(10, 800), (12, 804), (11, 806), (14, 810), (13, 811), (15, 1400)]
    for seq, tick in order:
        rec.record(seq, at(tick))
    (pkt,) = rec.build(1.0, SENDER, MEDIA)
    fb = parse_feedback(pkt)
    assert fb["arrivals"] == dict(order)
    # in sequence order: 12 and 14 arrived before their predecessors (negative deltas),
    # 15 589 ticks after 13 (more than 255): large deltas
    assert fb["symbols"] == [1, 1, 2, 1, 2, 2]
    assert fb["chunks"] == ["vec2"]


def test_late_packet_reported_lost_is_reported_again() -> None:
    rec = T.TwccRecorder(3)
    for seq in (1, 2, 4, 5):
        rec.record(seq, at(4000 + seq))
    first = merged(rec.build(1.1, SENDER, MEDIA))
    assert first[3] is None
    rec.record(3, at(4100))  # 3 arrives late
    rec.record(6, at(4101))
    (pkt,) = rec.build(1.2, SENDER, MEDIA)
    fb = parse_feedback(pkt)
    assert fb["base"] == 3 and fb["fb_count"] == 1
    assert fb["arrivals"] == {3: 4100, 4: 4004, 5: 4005, 6: 4101}
    # a duplicate changes nothing and is not reported again
    rec.record(6, at(4200))
    assert rec.build(1.3, SENDER, MEDIA) == []


def test_sequence_wraparound() -> None:
    rec = T.TwccRecorder(3)
    seqs = [(65530 + i) & 0xFFFF for i in range(12)]  # 65530 .. 65535, 0 .. 5
    for i, seq in enumerate(seqs):
        if seq == 1:
            continue  # lost, right after the wrap
        rec.record(seq, at(9000 + 4 * i))
    (pkt,) = rec.build(3.0, SENDER, MEDIA)
    fb = parse_feedback(pkt)
    assert fb["base"] == 65530 and fb["count"] == 12
    assert fb["arrivals"][1] is None and fb["arrivals"][0] == 9000 + 24
    assert fb["arrivals"][5] == 9000 + 44
    # next windows continue across another wrap, and a packet reordered over the wrap
    rec.record(7, at(9100))
    rec.record(6, at(9101))
    fb2 = parse_feedback(rec.build(3.1, SENDER, MEDIA)[0])
    assert fb2["base"] == 6 and fb2["arrivals"] == {6: 9101, 7: 9100}


def test_first_packet_reordered_across_wrap() -> None:
    rec = T.TwccRecorder(3)
    rec.record(1, at(500))
    rec.record(65535, at(502))  # sent before 1, arrives after it
    rec.record(0, at(503))
    fb = parse_feedback(rec.build(1.0, SENDER, MEDIA)[0])
    assert fb["base"] == 65535 and fb["arrivals"] == {65535: 502, 0: 503, 1: 500}


def test_large_deltas_and_a_long_pause() -> None:
    rec = T.TwccRecorder(3)
    rec.record(1, at(1000))
    rec.record(2, at(1000 + 255))  # the largest small delta
    rec.record(3, at(1000 + 255 + 256))  # 64 ms: large
    rec.record(4, at(1000 + 511 + 32767))  # the largest large delta (~8.19 s)
    fb = parse_feedback(rec.build(20.0, SENDER, MEDIA)[0])
    assert fb["symbols"] == [1, 1, 2, 2]
    assert fb["arrivals"] == {1: 1000, 2: 1255, 3: 1511, 4: 1511 + 32767}
    # a pause longer than a 16-bit delta: a second feedback packet, its own reference
    rec2 = T.TwccRecorder(3)
    rec2.record(10, at(1000))
    rec2.record(11, at(1000 + 40_000))  # 10 s later
    rec2.record(12, at(1000 + 40_004))
    packets = rec2.build(30.0, SENDER, MEDIA)
    assert len(packets) == 2
    a, b = (parse_feedback(p) for p in packets)
    assert (a["base"], a["count"], a["fb_count"]) == (10, 1, 0)
    assert (b["base"], b["count"], b["fb_count"]) == (11, 2, 1)
    assert b["ref"] == 41_000 // 256
    assert merged(packets) == {10: 1000, 11: 41_000, 12: 41_004}
    # going back in time by more than 8 s (reordered around a pause): split as well
    rec3 = T.TwccRecorder(3)
    rec3.record(21, at(50_000))
    rec3.record(20, at(50_000 + 40_000))
    assert merged(rec3.build(30.0, SENDER, MEDIA)) == {20: 90_000, 21: 50_000}


def test_long_run_over_many_windows_and_wraps() -> None:
    rec = T.TwccRecorder(3)
    seen: dict[int, int | None] = {}
    counts = []
    tick = 100_000
    seq = 60_000
    lost = 0
    for window in range(700):  # 70 s of 100 ms windows, ~140k packets: two wraps
        for _ in range(200):
            tick += 2  # 0.5 ms apart
            if (seq * 7919) % 101 == 0:
                lost += 1
                seen[seq & 0xFFFF] = None
            else:
                rec.record(seq & 0xFFFF, at(tick))
                seen[seq & 0xFFFF] = tick
            seq += 1
        for pkt in rec.build(at(tick), SENDER, MEDIA):
            fb = parse_feedback(pkt)
            counts.append(fb["fb_count"])
            for s, t in fb["arrivals"].items():
                assert t == seen.get(s), (window, s)
    assert counts == [i & 0xFF for i in range(len(counts))]
    assert len(counts) >= 700 and rec.received == 140_000 - lost
    assert len(rec._arrivals) <= rec.max_history  # bounded memory


def test_big_window_is_split_by_size() -> None:
    rec = T.TwccRecorder(3)
    ticks = {}
    for i in range(3000):  # irregular gaps: two-bit vectors, large deltas
        seq = (65000 + i) & 0xFFFF
        if i % 3 == 2:
            continue
        ticks[seq] = 10_000 + 300 * i + (i % 5)
        rec.record(seq, at(ticks[seq]))
    packets = rec.build(500.0, SENDER, MEDIA)
    assert len(packets) > 1
    assert all(len(p) <= T.MAX_PACKET for p in packets)
    parsed = [parse_feedback(p) for p in packets]
    # contiguous: each starts where the previous ended
    for a, b in zip(parsed, parsed[1:], strict=False):
        assert (a["base"] + a["count"]) & 0xFFFF == b["base"]
        assert a["symbols"][-1] != 0  # each ends with a received packet
    got = merged(packets)
    assert {s: t for s, t in got.items() if t is not None} == ticks


def test_huge_sequence_jump_is_capped() -> None:
    rec = T.TwccRecorder(3)
    rec.record(0, at(100))
    rec.build(1.0, SENDER, MEDIA)
    rec.record(30_000, at(200))  # 30k "lost": report at most MAX_SPAN of them
    packets = rec.build(1.1, SENDER, MEDIA)
    fb = parse_feedback(packets[0])
    assert sum(parse_feedback(p)["count"] for p in packets) == T.MAX_SPAN
    assert fb["chunks"][0] == "run"
    assert merged(packets)[30_000] == 200


def test_on_rtp_reads_the_header_extension() -> None:
    rec = T.TwccRecorder(5)
    rec.on_rtp(rtp(1, 0, 9, ext=[(1, b"\x10"), (5, struct.pack("!H", 0xFFFE))]), at(100))
    rec.on_rtp(rtp(2, 0, 9, ext=[(5, struct.pack("!H", 0xFFFF))]), at(104))
    rec.on_rtp(rtp(3, 0, 9, ext=[(1, b"\x10")]), at(108))  # no sequence number: ignored
    rec.on_rtp(rtp(4, 0, 9), at(112))
    fb = parse_feedback(rec.build(1.0, SENDER, MEDIA)[0])
    assert fb["arrivals"] == {0xFFFE: 100, 0xFFFF: 104}


@pytest.mark.parametrize(
    ("symbols", "chunks"),
    [
        ([1] * 8191 + [1] * 3, ["run", "run"]),
        ([0] * 20, ["run"]),
        ([1, 0] * 7, ["vec1"]),
        ([1, 2, 0, 1, 1, 1, 1, 1], ["vec2", "run"]),
        ([2] * 3, ["run"]),
        ([1, 0, 1], ["vec1"]),
    ],
)
def test_chunk_encoding(symbols: list[int], chunks: list[str]) -> None:
    raw = T.encode_chunks(symbols)
    kinds = []
    decoded: list[int] = []
    for (c,) in struct.iter_unpack("!H", raw):
        if not c & 0x8000:
            kinds.append("run")
            decoded += [(c >> 13) & 3] * (c & 0x1FFF)
        elif not c & 0x4000:
            kinds.append("vec1")
            decoded += [(c >> (13 - k)) & 1 for k in range(14)]
        else:
            kinds.append("vec2")
            decoded += [(c >> (12 - 2 * k)) & 3 for k in range(7)]
    assert kinds == chunks
    assert decoded[: len(symbols)] == symbols
    assert not any(decoded[len(symbols) :])


# ---------------------------------------------------------------- SDP

# what Chromium offers (trimmed): transport-cc extension id 3 on both, feedback per codec
OFFER = "\r\n".join(
    [
        "v=0",
        "o=- 1 2 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0 1",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111",
        "c=IN IP4 0.0.0.0",
        "a=mid:0",
        "a=extmap:1 urn:ietf:params:ietf:rtp-hdrext:ssrc-audio-level",
        f"a=extmap:3 {T.TWCC_URI}",
        "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid",
        "a=sendonly",
        "a=rtpmap:111 opus/48000/2",
        "a=rtcp-fb:111 transport-cc",
        "a=fmtp:111 minptime=10;useinbandfec=1",
        "a=ssrc:1 cname:x",
        "m=video 9 UDP/TLS/RTP/SAVPF 96 97",
        "c=IN IP4 0.0.0.0",
        "a=mid:1",
        "a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
        f"a=extmap:3 {T.TWCC_URI}",
        "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid",
        "a=sendonly",
        "a=rtpmap:96 VP8/90000",
        "a=rtcp-fb:96 goog-remb",
        "a=rtcp-fb:96 transport-cc",
        "a=rtcp-fb:96 nack",
        "a=rtpmap:97 rtx/90000",
        "a=fmtp:97 apt=96",
        "a=ssrc:2 cname:x",
        "",
    ]
)

# what aiortc answers to it: no transport-cc anywhere
ANSWER = "\r\n".join(
    [
        "v=0",
        "o=- 3 4 IN IP4 0.0.0.0",
        "s=-",
        "t=0 0",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111",
        "c=IN IP4 0.0.0.0",
        "a=recvonly",
        "a=mid:0",
        "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid",
        "a=rtpmap:111 opus/48000/2",
        "m=video 9 UDP/TLS/RTP/SAVPF 96 97",
        "c=IN IP4 0.0.0.0",
        "a=recvonly",
        "a=mid:1",
        "a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
        "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid",
        "a=rtpmap:96 VP8/90000",
        "a=rtcp-fb:96 nack",
        "a=rtcp-fb:96 goog-remb",
        "a=rtpmap:97 rtx/90000",
        "a=fmtp:97 apt=96",
        "",
    ]
)


def section(sdp: str, mid: str) -> list[str]:
    parts = sdp.split("m=")
    return next(("m=" + p).splitlines() for p in parts[1:] if f"a=mid:{mid}\r\n" in p + "\r\n")


def test_answer_accepts_offered_transport_cc() -> None:
    offers = T.parse_offer(OFFER)
    assert {m: (o.ext_id, o.feedback_pts) for m, o in offers.items()} == {
        "0": (3, {"111"}),
        "1": (3, {"96"}),
    }
    out, ext = T.accept_in_answer(ANSWER, offers)
    assert ext == 3
    for mid, pt in (("0", "111"), ("1", "96")):
        lines = section(out, mid)
        assert f"a=extmap:3 {T.TWCC_URI}" in lines
        assert f"a=rtcp-fb:{pt} transport-cc" in lines
        # right after the codec's own lines, never for RTX
        assert lines.index(f"a=rtcp-fb:{pt} transport-cc") > lines.index(
            f"a=rtpmap:{pt} " + ("opus/48000/2" if pt == "111" else "VP8/90000")
        )
    assert "a=rtcp-fb:97 transport-cc" not in out
    # aiortc's own parser reads the result (the test client side is aiortc too)
    from aiortc.sdp import SessionDescription

    parsed = SessionDescription.parse(out)
    video = parsed.media[1]
    assert T.TWCC_URI in [e.uri for e in video.rtp.headerExtensions]
    assert any(f.type == "transport-cc" for f in video.rtp.codecs[0].rtcpFeedback)
    # idempotent
    assert T.accept_in_answer(out, offers) == (out, 3)


def test_answer_without_transport_cc_in_the_offer() -> None:
    # no extension offered: nothing changes
    plain = OFFER.replace(f"a=extmap:3 {T.TWCC_URI}\r\n", "")
    assert T.accept_in_answer(ANSWER, T.parse_offer(plain)) == (ANSWER, 0)
    # "a=rtcp-fb:* transport-cc" covers every payload type
    star = OFFER.replace("a=rtcp-fb:96 transport-cc", "a=rtcp-fb:* transport-cc")
    out, ext = T.accept_in_answer(ANSWER, T.parse_offer(star))
    assert ext == 3 and "a=rtcp-fb:97 transport-cc" in out
    # the extension without the feedback: the id is accepted but not reported back
    no_fb = OFFER.replace("a=rtcp-fb:111 transport-cc\r\n", "").replace(
        "a=rtcp-fb:96 transport-cc\r\n", ""
    )
    out, ext = T.accept_in_answer(ANSWER, T.parse_offer(no_fb))
    assert ext == 0 and "transport-cc" not in out and T.TWCC_URI in out
    # the answer uses the offer's id for another extension: not negotiated there
    clash = ANSWER.replace("a=extmap:2 http", "a=extmap:3 http")
    out, ext = T.accept_in_answer(clash, T.parse_offer(OFFER))
    assert "a=rtcp-fb:96 transport-cc" not in out and "a=rtcp-fb:111 transport-cc" in out
    assert ext == 3
    # a rejected section is left alone
    rejected = ANSWER.replace("m=video 9 ", "m=video 0 ")
    out, _ = T.accept_in_answer(rejected, T.parse_offer(OFFER))
    assert "a=rtcp-fb:96 transport-cc" not in out


# ---------------------------------------------------------------- forwarder


def test_router_sends_feedback_and_no_fixed_remb_to_twcc_publishers() -> None:
    from parley.sfu.forwarder import Router

    router = Router()
    up_twcc: list[bytes] = []
    up_remb: list[bytes] = []
    ada = router.add_publisher("ada", lambda p: up_twcc.append(bytes(p)))
    bob = router.add_publisher("bob", lambda p: up_remb.append(bytes(p)))
    ada.enable_twcc(3)
    for pub in (ada, bob):
        pub.add_source("camera", "video", 1000, 96, "VP8", 90000, rtx_ssrc=1001)
    for i in range(20):
        ext = [(3, struct.pack("!H", 500 + i))]
        if i == 7:
            continue  # lost
        ssrc = 1001 if i == 12 else 4242 if i == 15 else 1000  # RTX, unknown SSRC
        pkt = rtp(i, i * 3000, ssrc, ext=ext)
        ada.on_rtp(pkt, at(8000 + 20 * i))
        bob.on_rtp(pkt, at(8000 + 20 * i))
    up_twcc.clear()  # NACKs for the lost packet
    up_remb.clear()
    assert router.send_transport_feedback(2.1) == 1
    (fb_pkt,) = up_twcc
    fb = parse_feedback(fb_pkt)
    assert fb["sender"] == router.rtcp_ssrc and fb["media"] == 1000
    assert fb["base"] == 500 and fb["count"] == 20
    assert fb["arrivals"] == {500 + i: None if i == 7 else 8000 + 20 * i for i in range(20)}
    assert up_remb == []  # no recorder, no feedback
    assert router.send_transport_feedback(2.2) == 0
    # receiver reports: REMB only for the publisher without transport-cc
    up_twcc.clear()
    router.send_receiver_reports(2.3)
    kinds_twcc = [fb.kind for p in up_twcc for fb in R.parse_rtcp(p)]
    kinds_remb = [fb.kind for p in up_remb for fb in R.parse_rtcp(p)]
    assert kinds_twcc == ["rr"] and kinds_remb == ["rr", "remb"]
    # back to REMB when a renegotiation drops it
    ada.enable_twcc(0)
    router.send_receiver_reports(2.4)
    assert [fb.kind for fb in R.parse_rtcp(up_twcc[-1])] == ["rr", "remb"]


async def test_publish_answer_negotiates_transport_cc() -> None:
    from aiortc import RTCConfiguration, RTCPeerConnection
    from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack

    from parley.sfu.aiortc import host_addresses
    from parley.sfu.peer import SfuRoom

    host_addresses.restrict_host_addresses(["127.0.0.1"])
    room = SfuRoom(lambda pid, p: None, last_n=1, audio_slots=0)
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        pc.addTransceiver(AudioStreamTrack(), direction="sendonly")
        pc.addTransceiver(VideoStreamTrack(), direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        offer = pc.localDescription.sdp
        assert "transport-cc" not in offer  # aiortc does not offer it: add it as Chrome does
        lines = []
        for line in offer.splitlines():
            lines.append(line)
            if line.startswith("a=mid:"):
                lines.append(f"a=extmap:5 {T.TWCC_URI}")
            if line.startswith("a=rtpmap:") and "rtx" not in line:
                lines.append(f"a=rtcp-fb:{line[9:].split()[0]} transport-cc")
        munged = "\r\n".join(lines) + "\r\n"
        [reply] = await room.handle_signal("ada", {"sfu": "publish", "sdp": munged})
        assert reply["sfu"] == "publish-answer", reply
        answer = reply["sdp"]
        assert answer.count(f"a=extmap:5 {T.TWCC_URI}") == 2
        assert answer.count(" transport-cc") == 2  # Opus and VP8 (one codec each)
        assert room.peers["ada"]._twcc_ext == 5
        # without it in the offer: plain REMB
        [reply2] = await room.handle_signal("bob", {"sfu": "publish", "sdp": offer})
        assert "transport-cc" not in reply2["sdp"]
        assert room.peers["bob"]._twcc_ext == 0
    finally:
        await pc.close()
        await room.close()
        host_addresses.restrict_host_addresses(None)
