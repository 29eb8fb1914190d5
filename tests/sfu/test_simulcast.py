"""Simulcast: SDP rewriting, SSRC binding by rid, layer selection and switching."""

from __future__ import annotations

import struct
from typing import Any

from parley.sfu import rtp as R
from parley.sfu import simulcast
from parley.sfu.codecs import vp8 as VP8
from parley.sfu.forwarder import Router, SlotSpec
from tests.sfu.sfu_packets import Wire, parse, rtp, vp8_payload

# what Chromium offers for a camera sent with sendEncodings [{rid:"l"}, {rid:"h"}]
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
        "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid",
        "a=sendonly",
        "a=rtpmap:111 opus/48000/2",
        "a=ssrc:1 cname:x",
        "m=video 9 UDP/TLS/RTP/SAVPF 96 97",
        "c=IN IP4 0.0.0.0",
        "a=mid:1",
        "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid",
        "a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id",
        "a=extmap:11 urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id",
        "a=sendonly",
        "a=rtpmap:96 VP8/90000",
        "a=rtpmap:97 rtx/90000",
        "a=fmtp:97 apt=96",
        "a=rid:l send",
        "a=rid:h send",
        "a=simulcast:send l;h",
        "",
    ]
)

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
        "m=video 9 UDP/TLS/RTP/SAVPF 96 97",
        "c=IN IP4 0.0.0.0",
        "a=recvonly",
        "a=mid:1",
        "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid",
        "a=rtpmap:96 VP8/90000",
        "",
    ]
)


def test_offer_parsing_reads_rids_and_extension_ids() -> None:
    found = simulcast.parse_offer(OFFER)
    assert list(found) == ["1"]
    sim = found["1"]
    assert (sim.rids, sim.rid_ext, sim.rrid_ext, sim.mid_ext) == (["l", "h"], 10, 11, 4)
    # paused layers and alternatives: the first choice; other names: first = highest
    other = OFFER.replace("a=rid:l send", "a=rid:x send").replace("a=rid:h send", "a=rid:y send")
    other = other.replace("a=simulcast:send l;h", "a=simulcast:send ~y,z;x")
    assert simulcast.parse_offer(other)["1"].rids == ["x", "y"]
    assert simulcast.rank_rids(["h", "m", "l"]) == ["l", "m", "h"]
    # no simulcast, or no rid extension: nothing
    assert simulcast.parse_offer(OFFER.replace("a=simulcast:send l;h", "")) == {}
    assert simulcast.parse_offer(OFFER.replace("sdes:rtp-stream-id", "sdes:other")) == {}


def test_answer_accepts_simulcast_with_the_offers_ids() -> None:
    out = simulcast.accept_in_answer(ANSWER, simulcast.parse_offer(OFFER))
    video = out.split("m=video")[1].split("\r\n")
    audio = out.split("m=video")[0]
    assert "a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id" in video
    assert "a=extmap:11 urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id" in video
    assert "a=rid:l recv" in video and "a=rid:h recv" in video
    assert "a=simulcast:recv l;h" in video
    assert video[1].startswith("c=")  # c= stays before the attributes
    assert "rid" not in audio and "simulcast" not in audio
    assert out.endswith("\r\n") and "\n\n" not in out.replace("\r\n", "\n")
    # a rejected section is left alone; without offers the answer is unchanged
    rejected = ANSWER.replace("m=video 9", "m=video 0")
    assert "simulcast" not in simulcast.accept_in_answer(rejected, simulcast.parse_offer(OFFER))
    assert simulcast.accept_in_answer(ANSWER, {}) == ANSWER


def test_answer_is_accepted_by_aiortcs_parser() -> None:
    from aiortc.sdp import SessionDescription

    out = simulcast.accept_in_answer(ANSWER, simulcast.parse_offer(OFFER))
    parsed = SessionDescription.parse(out)
    assert [m.kind for m in parsed.media] == ["audio", "video"]


# ---------------------------------------------------------------- forwarding

RID_EXT, RRID_EXT, MID_EXT = 10, 11, 4


def key_payload(width: int, height: int) -> bytes:
    """A VP8 key frame start with its frame header (start code, size)."""
    desc = bytes([0x90, 0x80]) + struct.pack("!H", 0x8000 | 7)
    return desc + b"\x10\x02\x00\x9d\x01\x2a" + struct.pack("<HH", width, height) + b"\x00" * 20


def layer_pkt(seq: int, ssrc: int, *, key: tuple[int, int] | None = None, rid: str = "") -> bytes:
    payload = key_payload(*key) if key else vp8_payload(False)
    ext = [(MID_EXT, b"1"), (RID_EXT, rid.encode())] if rid else None
    return rtp(seq, seq * 3000, ssrc, payload=payload, ext=ext)


def setup(**kw: Any) -> tuple[Router, Any, Wire, Wire, Any]:
    router = Router(**kw)
    up = Wire()
    pub = router.add_publisher("ada", up)
    pub.add_source(
        "camera", "video", 0, 96, "VP8", 90000,
        rids=["l", "h"], mid="1", rid_ext=RID_EXT, rrid_ext=RRID_EXT, mid_ext=MID_EXT,
    )  # fmt: skip
    down = Wire()
    sub = router.add_subscriber("bob", down, [SlotSpec("v0", "video", 7000, 96, "VP8", 90000)])
    return router, pub, up, down, sub


LOW, HIGH = 111, 222


def stream(router: Router, pub: Any, t0: float, seconds: float, keys: bool = False) -> float:
    """Both layers at 25 packets/s (a key frame first if ``keys``), ticking the router."""
    t = t0
    n = int(seconds * 25)
    for i in range(n):
        seq = int(t * 25) & 0xFFFF
        k = keys and i == 0
        pub.on_rtp(layer_pkt(seq, LOW, key=(320, 180) if k else None, rid="l"), t)
        pub.on_rtp(layer_pkt(seq, HIGH, key=(640, 360) if k else None, rid="h"), t)
        t += 0.04
        if i % 5 == 4:
            router.tick(t)
    return t


def test_layers_bind_by_rid_and_a_small_tile_gets_the_low_layer() -> None:
    router, pub, up, down, sub = setup()
    main = pub.sources["camera"]
    assert main.layers is not None and [s.rid for s in main.layers] == ["l", "h"]
    t = stream(router, pub, 1.0, 1.0, keys=True)
    assert {s.rid: s.ssrc for s in main.layers} == {"l": LOW, "h": HIGH}
    assert pub.unknown_ssrc == 0
    assert (main.layers[0].width, main.layers[1].width) == (320, 640)
    # no view known: the top layer
    slot = sub.slots[0]
    assert slot.source is main.layers[1]
    # a 200x112 tile: the low layer, from a key frame of it (PLI on its SSRC)
    sub.set_view("v0", 200, 112)
    up.out.clear()
    t = stream(router, pub, t, 0.4)
    assert LOW in up.plis()
    assert slot.pending is main.layers[0] and slot.source is main.layers[1]
    before = len(down.rtp())
    t = stream(router, pub, t, 0.2, keys=True)
    assert slot.source is main.layers[0] and slot.pending is None
    # continuity: one output SSRC, consecutive sequence numbers across the switch
    got = [parse(p) for p in down.rtp()]
    assert {g[3] for g in got} == {7000}
    seqs = [g[1] for g in got]
    assert all((b - a) & 0xFFFF == 1 for a, b in zip(seqs, seqs[1:], strict=False))
    assert len(down.rtp()) > before
    # a big tile: back to the high layer
    sub.set_view("v0", 1280, 720)
    t = stream(router, pub, t, 0.4)
    t = stream(router, pub, t, 0.2, keys=True)
    assert slot.source is main.layers[1]


def test_rtx_of_a_layer_binds_by_repaired_rid() -> None:
    router, pub, up, down, sub = setup()
    stream(router, pub, 1.0, 0.2, keys=True)
    main = pub.sources["camera"]
    orig = layer_pkt(77, LOW)
    rtx = R.rtx_wrap(orig, 333, 97, 5)
    rtx = rtp(5, 77 * 3000, 333, pt=97, payload=bytes(rtx[12:]), ext=[(RRID_EXT, b"l")])
    pub.on_rtp(rtx, 2.0)
    assert main.layers[0].rtx_ssrc == 333 and pub.by_rtx[333] is main.layers[0]


def test_loss_lowers_the_layer_and_it_comes_back() -> None:
    router, pub, up, down, sub = setup()
    slot = sub.slots[0]
    main = pub.sources["camera"]
    t = stream(router, pub, 1.0, 1.0, keys=True)
    assert slot.source is main.layers[1]
    # the subscriber reports 20 % loss for two seconds: one layer lower
    for _ in range(3):
        sub.on_rtcp(R.build_rr(1, [(7000, 51, 10, 100, 0, 0, 0)]), t)
        t = stream(router, pub, t, 1.0, keys=True)
    assert sub.penalty == 1 and slot.source is main.layers[0]
    # no more loss: back up after the backoff
    sub.on_rtcp(R.build_rr(1, [(7000, 0, 10, 100, 0, 0, 0)]), t)
    for _ in range(10):
        t = stream(router, pub, t, 1.0, keys=True)
    assert sub.penalty == 0 and slot.source is main.layers[1]


def test_remb_far_below_the_forwarded_rate_lowers_the_layer() -> None:
    router, pub, up, down, sub = setup()
    slot = sub.slots[0]
    main = pub.sources["camera"]
    t = stream(router, pub, 1.0, 6.0, keys=True)
    for _ in range(3):
        sub.on_rtcp(R.build_remb(1, 1000, [7000]), t)
        t = stream(router, pub, t, 1.0, keys=True)
    assert sub.penalty >= 1 and slot.source is main.layers[0]


def test_a_layer_the_publisher_stopped_sending_is_not_chosen() -> None:
    router, pub, up, down, sub = setup()
    slot = sub.slots[0]
    main = pub.sources["camera"]
    t = stream(router, pub, 1.0, 1.0, keys=True)
    assert slot.source is main.layers[1]
    # only the low layer keeps coming (the browser dropped "h", e.g. its CPU is short):
    # within a second the subscriber watches "l" instead of a frozen picture
    for i in range(25):
        pub.on_rtp(layer_pkt(1000 + i, LOW, key=(320, 180) if i % 5 == 0 else None), t)
        t += 0.04
        if i % 5 == 4:
            router.tick(t)
    assert slot.source is main.layers[0]
    assert any(parse(p)[3] == 7000 for p in down.rtp()[-5:])


def test_publisher_rembs_ignore_subscribers_of_simulcast() -> None:
    router, pub, up, down, sub = setup(max_video_bitrate=2_000_000)
    t = stream(router, pub, 1.0, 1.0, keys=True)
    sub.on_rtcp(R.build_remb(1, 100_000, [7000]), t)
    up.out.clear()
    router.send_receiver_reports(t)
    rembs = [fb for p in up.out for fb in R.parse_rtcp(p) if fb.kind == "remb"]
    assert rembs and rembs[0].bitrate >= 1_900_000 and sorted(rembs[0].media_ssrcs) == [LOW, HIGH]
    rrs = [fb for p in up.out for fb in R.parse_rtcp(p) if fb.kind == "rr"]
    assert sorted(rrs[0].media_ssrcs) == [LOW, HIGH]


def test_removing_a_simulcast_track_empties_the_slot() -> None:
    router, pub, up, down, sub = setup()
    stream(router, pub, 1.0, 0.4, keys=True)
    pub.remove_source("camera")
    assert sub.slots[0].source is None and pub.by_ssrc == {} and pub.rids == {}


def test_extension_value_and_keyframe_size() -> None:
    pkt = layer_pkt(1, 5, key=(640, 360), rid="h")
    assert R.extension_value(pkt, RID_EXT) == b"h" and R.extension_value(pkt, MID_EXT) == b"1"
    assert R.extension_value(pkt, 3) is None
    assert VP8.keyframe_size(pkt) == (640, 360)
    assert VP8.keyframe_size(layer_pkt(2, 5)) is None


def test_aiortc_passes_packets_of_unannounced_ssrcs_to_the_hook() -> None:
    """Simulcast layers' SSRCs are in no SDP: aiortc must unprotect them (SRTP policy
    SSRC_ANY_INBOUND) and RawMediaTransport's hook must get them before any routing."""
    import inspect

    from aiortc import RTCDtlsTransport

    setup_src = inspect.getsource(RTCDtlsTransport._setup_srtp)
    assert "SSRC_ANY_INBOUND" in setup_src.split("rx_policy")[1].split("tx_policy")[0]
    recv_src = inspect.getsource(RTCDtlsTransport._recv_next)
    assert "self._rx_srtp.unprotect(data)" in recv_src
    assert "self._handle_rtp_data(data" in recv_src  # hooked by RawMediaTransport
