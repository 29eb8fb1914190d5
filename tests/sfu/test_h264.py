"""H.264 through the forwarding core (no network): key frames in the three RFC 6184
packetizations, picture sizes from the SPS, payload types rewritten per subscriber, and
rooms mixing VP8 and H.264 publishers."""

from __future__ import annotations

import fractions
import struct
from typing import Any

import av
import pytest
from aiortc.codecs.h264 import H264Encoder
from aiortc.sdp import SessionDescription

from parley.sfu import codecs as C
from parley.sfu import rtp as R
from parley.sfu import sdp_codecs as codecs
from parley.sfu.codecs import h264 as H264
from parley.sfu.codecs import vp8 as VP8
from parley.sfu.forwarder import Router, SlotSpec
from tests.sfu.sfu_packets import Wire, parse, rtp, vp8_payload

SPS = b"\x67\x42\xc0\x1f\xda\x01\x40\x16\xe8\x06\xd0\xa1\x35"  # any SPS header byte 0x67


def stap_a(*nals: bytes) -> bytes:
    return b"\x18" + b"".join(struct.pack("!H", len(n)) + n for n in nals)


def fu_a(nal_header: int, body: bytes, *, start: bool, end: bool = False) -> bytes:
    indicator = (nal_header & 0xE0) | 28
    fu = (0x80 if start else 0) | (0x40 if end else 0) | (nal_header & 0x1F)
    return bytes([indicator, fu]) + body


IDR_FIRST = b"\x65\x88" + b"\x84" * 20  # IDR slice, first_mb_in_slice = 0 (bit "1")
IDR_LATER = b"\x65\x1a" + b"\x84" * 20  # IDR slice, first_mb_in_slice != 0
NON_IDR = b"\x41\x9a" + b"\x22" * 20  # coded slice of a non-IDR picture
PPS = b"\x68\xce\x3c\x80"
SEI = b"\x06\x05\x10" + b"\x00" * 16


def h264(seq: int, ts: int, ssrc: int, payload: bytes, pt: int = 102) -> bytes:
    return rtp(seq, ts, ssrc, pt=pt, payload=payload)


@pytest.mark.parametrize(
    ("payload", "key"),
    [
        # single NAL unit packets
        (IDR_FIRST, True),
        (SPS, True),
        (IDR_LATER, False),  # the middle of a key frame is no place to start
        (NON_IDR, False),
        (PPS, False),
        # STAP-A
        (stap_a(SPS, PPS), True),
        (stap_a(PPS, SEI, IDR_FIRST), True),
        (stap_a(PPS, SEI), False),
        (stap_a(SEI, NON_IDR), False),
        # FU-A: only the start fragment of an IDR picture's first slice
        (fu_a(0x65, b"\x88" + b"\x00" * 30, start=True), True),
        (fu_a(0x65, b"\x00" * 30, start=False), False),
        (fu_a(0x65, b"\x00" * 30, start=False, end=True), False),
        (fu_a(0x65, b"\x1a" + b"\x00" * 30, start=True), False),
        (fu_a(0x41, b"\x9a" + b"\x00" * 30, start=True), False),
        # truncated / empty
        (b"", False),
        (b"\x18\x00", False),
        (b"\x7c", False),
    ],
)
def test_keyframe_detection_in_the_three_packetizations(payload: bytes, key: bool) -> None:
    assert H264.is_keyframe(h264(1, 0, 1, payload)) is key
    # header extensions in front of the payload change nothing
    pkt = rtp(1, 0, 1, pt=102, payload=payload, ext=[(3, b"\x01\x02\x03")])
    assert H264.is_keyframe(pkt) is key


def encoded(width: int, height: int, frames: int = 3) -> list[list[bytes]]:
    """RTP payloads of real H.264 frames (libx264 packetized by aiortc; a key frame first)."""
    encoder = H264Encoder()
    out = []
    for i in range(frames):
        frame = av.VideoFrame(width, height, "yuv420p")
        for plane in frame.planes:
            plane.update(bytes([(i * 40) % 256]) * plane.buffer_size)
        frame.pts = i * 3000
        frame.time_base = fractions.Fraction(1, 90000)
        payloads, _ = encoder.encode(frame, force_keyframe=i == 0)
        out.append(payloads)
    return out


def test_real_encoder_output_key_frames_and_sizes() -> None:
    frames = encoded(320, 180)
    key, *deltas = frames
    starts = [H264.is_keyframe(h264(i, 0, 1, p)) for i, p in enumerate(key)]
    assert starts[0] is True  # SPS + PPS aggregated in front of the IDR picture
    assert not any(H264.is_keyframe(h264(i, 0, 1, p)) for d in deltas for i, p in enumerate(d))
    assert H264.keyframe_size(h264(0, 0, 1, key[0])) == (320, 180)
    assert H264.keyframe_size(h264(0, 0, 1, deltas[0][0])) is None
    # cropping (sizes that are no multiple of 16) and larger pictures
    for w, h in ((642, 362), (1280, 720), (160, 120)):
        first = encoded(w, h, frames=1)[0][0]
        assert H264.keyframe_size(h264(0, 0, 1, first)) == (w, h)


def test_keyframe_functions_per_codec() -> None:
    assert C.keyframe_functions("VP8") == (VP8.is_keyframe, VP8.keyframe_size)
    assert C.keyframe_functions("h264") == (H264.is_keyframe, H264.keyframe_size)
    assert C.keyframe_functions("opus") is None
    assert H264.keyframe_size(h264(0, 0, 1, stap_a(b"\x67\x42"))) is None  # truncated SPS


# ------------------------------------------------------------------ forwarding


VP8_PT, VP8_RTX, H264_PT, H264_RTX = 96, 97, 102, 103


def both_codecs(n: int, base: int) -> list[SlotSpec]:
    """Subscriber video slots accepting VP8 (96, RTX 97) and H.264 (102, RTX 103)."""
    return [
        SlotSpec(
            f"v{i}",
            "video",
            base + i,
            VP8_PT,
            "VP8",
            90000,
            rtx_ssrc=base + 100 + i,
            rtx_payload_type=VP8_RTX,
            codecs=(("H264", H264_PT, H264_RTX),),
        )  # fmt: skip
        for i in range(n)
    ]


def vp8_only(n: int, base: int) -> list[SlotSpec]:
    return [SlotSpec(f"v{i}", "video", base + i, VP8_PT, "VP8", 90000) for i in range(n)]


def make_room(**kw: Any) -> tuple[Router, list[tuple[str, list[dict[str, str | None]]]]]:
    layouts: list[tuple[str, list[dict[str, str | None]]]] = []
    return Router(on_layout=lambda pid, lay: layouts.append((pid, lay)), **kw), layouts


def test_h264_publisher_forwarded_with_the_subscribers_payload_type() -> None:
    router, _ = make_room()
    up = Wire()
    pub = router.add_publisher("ada", up)
    pub.add_source("camera", "video", 1111, 125, "H264", 90000, rtx_ssrc=1112)
    down = Wire()
    router.add_subscriber("bob", down, both_codecs(2, 5000))
    assert up.plis() == [1111]  # a key frame is asked for at once
    pub.on_rtp(h264(10, 0, 1111, NON_IDR, pt=125), 0.0)
    assert down.rtp() == []  # no key frame yet
    pub.on_rtp(h264(11, 3000, 1111, stap_a(SPS, PPS), pt=125), 0.03)
    pub.on_rtp(h264(12, 3000, 1111, fu_a(0x65, b"\x88" + b"\0" * 9, start=True), pt=125), 0.03)
    pub.on_rtp(h264(13, 3000, 1111, fu_a(0x65, b"\0" * 9, start=False, end=True), pt=125), 0.03)
    pub.on_rtp(h264(14, 6000, 1111, NON_IDR, pt=125), 0.06)
    got = [parse(p) for p in down.rtp()]
    assert [g[0] for g in got] == [H264_PT] * 4
    assert {g[3] for g in got} == {5000}
    # a NACK is answered over RTX with the RTX payload type whose apt is H.264's
    sub = router.subscribers["bob"]
    sub.on_rtcp(R.build_nack(0x99, 5000, [got[1][1]]), 0.1)
    rtx = down.rtp()[-1]
    assert parse(rtx)[0] == H264_RTX and parse(rtx)[3] == 5100
    restored = R.rtx_unwrap(rtx, 5000, H264_PT)
    assert restored is not None and parse(restored)[:2] == (H264_PT, got[1][1])


def test_mixed_room_each_slot_keeps_its_codecs_payload_type() -> None:
    router, layouts = make_room()
    ada = router.add_publisher("ada", Wire())
    ada.add_source("camera", "video", 1, 100, "VP8", 90000)
    bob = router.add_publisher("bob", Wire())
    bob.add_source("camera", "video", 2, 125, "H264", 90000)
    down = Wire()
    router.add_subscriber("cy", down, both_codecs(2, 5000))
    shown = {s["pid"]: s["mid"] for s in layouts[-1][1] if s["pid"]}
    assert set(shown) == {"ada", "bob"}
    ssrc = {pid: 5000 + int(mid[1:]) for pid, mid in shown.items()}
    for i in range(5):
        ada.on_rtp(rtp(100 + i, 3000 * i, 1, pt=100, payload=vp8_payload(i == 0)), i / 30)
        bob.on_rtp(h264(200 + i, 3000 * i, 2, SPS if i == 0 else NON_IDR, pt=125), i / 30)
    got = [parse(p) for p in down.rtp()]
    assert {g[0] for g in got if g[3] == ssrc["ada"]} == {VP8_PT}
    assert {g[0] for g in got if g[3] == ssrc["bob"]} == {H264_PT}
    assert len(got) == 10
    # a subscriber that accepts only VP8 gets no slot for the H.264 publisher
    router.add_subscriber("dee", Wire(), vp8_only(2, 6000))
    dee = [lay for pid, lay in layouts if pid == "dee"][-1]
    assert [s["pid"] for s in dee] == ["ada", None]


def test_slot_switching_codec_changes_payload_type_at_a_key_frame() -> None:
    router, layouts = make_room(last_n=1)
    ada = router.add_publisher("ada", Wire())
    ada.add_source("camera", "video", 1, 100, "VP8", 90000)
    ada.add_source("mic", "audio", 11, 111, "opus", 48000, audio_level_ext=1)
    bob_up = Wire()
    bob = router.add_publisher("bob", bob_up)
    bob.add_source("camera", "video", 2, 125, "H264", 90000)
    bob.add_source("mic", "audio", 12, 111, "opus", 48000, audio_level_ext=1)
    down = Wire()
    router.add_subscriber("cy", down, both_codecs(1, 5000))
    assert layouts[-1][1][0]["pid"] == "ada"
    now = 0.0
    for i in range(10):
        ada.on_rtp(rtp(100 + i, 3000 * i, 1, pt=100, payload=vp8_payload(i == 0)), now)
        now += 1 / 30
    # Bob's camera sends too; Bob speaks: he takes the single slot, and his H.264 starts
    # at its next key frame
    bob.on_rtp(h264(299, 0, 2, NON_IDR, pt=125), now)
    for i in range(10):
        bob.on_rtp(rtp(7 + i, 960 * i, 12, pt=111, ext=[(1, b"\x14")]), now)
    bob_up.out.clear()
    router.tick(now)
    assert layouts[-1][1][0]["pid"] == "bob" and 2 in bob_up.plis()
    bob.on_rtp(h264(300, 0, 2, NON_IDR, pt=125), now)
    bob.on_rtp(h264(301, 3000, 2, stap_a(PPS, SEI, IDR_FIRST), pt=125), now + 0.03)
    bob.on_rtp(h264(302, 6000, 2, NON_IDR, pt=125), now + 0.06)
    video = [parse(p) for p in down.rtp() if parse(p)[3] == 5000]
    assert [v[0] for v in video] == [VP8_PT] * 10 + [H264_PT] * 2
    seqs = [v[1] for v in video]
    assert all((b - a) & 0xFFFF == 1 for a, b in zip(seqs, seqs[1:], strict=False))


def test_h264_simulcast_layer_sizes_from_sps_and_switch_at_key_frame() -> None:
    low_key, *_ = encoded(320, 180, frames=1)
    high_key, *_ = encoded(640, 360, frames=1)
    router = Router()
    up = Wire()
    pub = router.add_publisher("ada", up)
    pub.add_source(
        "camera", "video", 0, 125, "H264", 90000,
        rids=["l", "h"], mid="1", rid_ext=10, mid_ext=4,
    )  # fmt: skip
    down = Wire()
    sub = router.add_subscriber("bob", down, both_codecs(1, 7000))
    main = pub.sources["camera"]
    assert main.layers is not None

    def send(t: float, key: bool) -> float:
        for i in range(10):
            seq = int(t * 25) & 0xFFFF
            for ssrc, rid, first in ((111, b"l", low_key[0]), (222, b"h", high_key[0])):
                payload = first if key and i == 0 else NON_IDR
                ext = [(4, b"1"), (10, rid)]
                pub.on_rtp(rtp(seq, seq * 3000, ssrc, pt=125, payload=payload, ext=ext), t)
            t += 0.04
            if i % 5 == 4:
                router.tick(t)
        return t

    t = send(1.0, key=True)
    assert [(s.width, s.height) for s in main.layers] == [(320, 180), (640, 360)]
    slot = sub.slots[0]
    assert slot.source is main.layers[1]  # no view known: the top layer
    sub.set_view("v0", 200, 112)  # a small tile: the low layer, at its next key frame
    up.out.clear()
    t = send(t, key=False)
    assert 111 in up.plis() and slot.pending is main.layers[0]
    send(t, key=True)
    assert slot.source is main.layers[0] and slot.pending is None
    assert {parse(p)[0] for p in down.rtp()} == {H264_PT}


# ------------------------------------------------------------------ SDP


ANSWER_VIDEO = "\r\n".join(
    [
        "v=0",
        "o=- 1 2 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        "m=video 9 UDP/TLS/RTP/SAVPF 97 98 101 102 99",
        "c=IN IP4 0.0.0.0",
        "a=mid:0",
        "a=recvonly",
        "a=rtpmap:97 VP8/90000",
        "a=rtpmap:98 rtx/90000",
        "a=fmtp:98 apt=97",
        "a=rtpmap:101 H264/90000",
        "a=fmtp:101 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
        "a=rtpmap:102 rtx/90000",
        "a=fmtp:102 apt=101",
        "a=rtpmap:99 H264/90000",
        "a=fmtp:99 packetization-mode=1;profile-level-id=42001f",
        "",
    ]
)


def test_slot_codecs_from_a_subscribe_answer() -> None:
    media = SessionDescription.parse(ANSWER_VIDEO).media[0]
    assert codecs.slot_codecs(media) == (("VP8", 97, 98), ("H264", 101, 102))
    # packetization-mode 0 is not forwarded; no H.264 at all: VP8 only
    mode0 = ANSWER_VIDEO.replace(
        "packetization-mode=1;profile-level-id=42e01f", "profile-level-id=42e01f"
    )
    mode0 = mode0.replace("a=fmtp:99 packetization-mode=1;", "a=fmtp:99 ")
    assert codecs.slot_codecs(SessionDescription.parse(mode0).media[0]) == (("VP8", 97, 98),)
    # the subscribe offer lists VP8 first, then one H.264 (constrained baseline, mode 1)
    prefs = codecs.subscribe_preferences("video")
    main = [c for c in prefs if not c.mimeType.endswith("/rtx")]
    assert [c.mimeType for c in main] == ["video/VP8", "video/H264"]
    assert main[1].parameters["profile-level-id"] == "42e01f"
    assert main[1].parameters["packetization-mode"] == "1"


def test_garbage_never_raises() -> None:
    import random

    rng = random.Random(6)
    for _ in range(3000):
        payload = bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 40)))
        if payload and rng.random() < 0.5:
            payload = bytes([rng.choice((0x18, 0x7C, 0x67, 0x65))]) + payload
        pkt = h264(1, 0, 1, payload)
        assert H264.is_keyframe(pkt) in (True, False)
        size = H264.keyframe_size(pkt)
        assert size is None or (size[0] > 0 and size[1] > 0)
