"""The forwarding core (no network): NACK cache, PLI throttling, last-N, continuity."""

from __future__ import annotations

from typing import Any

from parley.sfu import rtp as R
from parley.sfu.forwarder import Router, SlotSpec
from tests.sfu.sfu_packets import Wire, audio, parse, rtp, vp8_payload


def video_slots(n: int, base_ssrc: int, rtx: bool = False) -> list[SlotSpec]:
    return [
        SlotSpec(
            f"v{i}",
            "video",
            base_ssrc + i,
            96,
            "VP8",
            90000,
            rtx_ssrc=base_ssrc + 100 + i if rtx else None,
            rtx_payload_type=97 if rtx else None,
        )
        for i in range(n)
    ]


def audio_slots(n: int, base_ssrc: int) -> list[SlotSpec]:
    return [SlotSpec(f"a{i}", "audio", base_ssrc + i, 111, "opus", 48000) for i in range(n)]


def make_room(**kw: Any) -> tuple[Router, list[tuple[str, list[dict[str, str | None]]]]]:
    layouts: list[tuple[str, list[dict[str, str | None]]]] = []
    router = Router(on_layout=lambda pid, lay: layouts.append((pid, lay)), **kw)
    return router, layouts


def key(seq: int, ts: int, ssrc: int) -> bytes:
    return rtp(seq, ts, ssrc, payload=vp8_payload(True))


def delta(seq: int, ts: int, ssrc: int) -> bytes:
    return rtp(seq, ts, ssrc, payload=vp8_payload(False))


def test_forward_waits_for_keyframe_and_rewrites() -> None:
    router, _ = make_room()
    up = Wire()
    pub = router.add_publisher("alice", up)
    pub.add_source("cam", "video", 1111, 100, "VP8", 90000)
    down = Wire()
    router.add_subscriber("bob", down, video_slots(2, 5000))
    # joining asked the publisher for a key frame
    assert [fb.kind for fb in up.rtcp()] == ["pli"] and up.rtcp()[0].media_ssrcs == [1111]
    pub.on_rtp(delta(10, 0, 1111), 0.0)
    assert down.rtp() == []  # no key frame yet: delta frames are not forwarded
    pub.on_rtp(key(11, 3000, 1111), 0.03)
    pub.on_rtp(delta(12, 6000, 1111), 0.06)
    got = [parse(p) for p in down.rtp()]
    assert [g[3] for g in got] == [5000, 5000] and [g[0] for g in got] == [96, 96]
    assert (got[1][1] - got[0][1]) & 0xFFFF == 1
    assert got[1][2] - got[0][2] == 3000
    # the subscriber never receives its own media
    pub2 = router.add_publisher("bob", Wire())
    pub2.add_source("cam", "video", 2222, 100, "VP8", 90000)
    assert router.subscribers["bob"].slots[1].source is None


def test_continuity_after_source_switch() -> None:
    router, layouts = make_room(last_n=1)
    alice = router.add_publisher("alice", Wire())
    alice.add_source("cam", "video", 1, 100, "VP8", 90000)
    alice.add_source("mic", "audio", 11, 111, "opus", 48000, audio_level_ext=1)
    carol = router.add_publisher("carol", Wire())
    carol.add_source("cam", "video", 2, 100, "VP8", 90000)
    carol.add_source("mic", "audio", 12, 111, "opus", 48000, audio_level_ext=1)
    down = Wire()
    router.add_subscriber("bob", down, video_slots(1, 5000) + audio_slots(2, 6000))
    assert layouts[-1][1][0]["pid"] == "alice"  # first joiner first
    now = 0.0
    for i in range(30):
        alice.on_rtp((key if i == 0 else delta)(100 + i, 3000 * i, 1), now)
        carol.on_rtp((key if i % 10 == 0 else delta)(40000 + i, 777 + 3000 * i, 2), now)
        now += 1 / 30
    # carol starts speaking: after a tick she takes the single video slot
    for i in range(10):
        carol.on_rtp(audio(7 + i, 960 * i, 12, level=20), now)
        alice.on_rtp(audio(9 + i, 960 * i, 11, level=127), now)
    router.tick(now)
    assert layouts[-1][1][0]["pid"] == "carol"
    for i in range(30, 60):
        alice.on_rtp(delta(100 + i, 3000 * i, 1), now)
        carol.on_rtp((key if i % 10 == 0 else delta)(40000 + i, 777 + 3000 * i, 2), now)
        now += 1 / 30
    video = [parse(p) for p in down.rtp() if parse(p)[3] == 5000]
    seqs = [v[1] for v in video]
    assert all((b - a) & 0xFFFF == 1 for a, b in zip(seqs, seqs[1:], strict=False)), seqs
    assert len(video) == 30 + 30  # alice 0..29, then carol from her key frame at 30
    tss = [v[2] for v in video]
    assert all(0 < (b - a) & 0xFFFFFFFF <= 90000 for a, b in zip(tss, tss[1:], strict=False))


def test_nack_answered_from_cache_with_rtx() -> None:
    router, _ = make_room()
    up = Wire()
    pub = router.add_publisher("alice", up)
    pub.add_source("cam", "video", 1, 100, "VP8", 90000)
    down = Wire()
    sub = router.add_subscriber("bob", down, video_slots(1, 5000, rtx=True))
    pkts = [key(200, 0, 1)] + [delta(200 + i, 3000 * i, 1) for i in range(1, 20)]
    for p in pkts:
        pub.on_rtp(p, 0.0)
    sent = down.rtp()
    assert len(sent) == 20
    out_seqs = [parse(p)[1] for p in sent]
    down.out.clear()
    never_sent = (out_seqs[-1] + 5) & 0xFFFF
    sub.on_rtcp(R.build_nack(77, 5000, [out_seqs[3], out_seqs[7], never_sent]), 1.0)
    rtx = down.rtp()
    assert len(rtx) == 2  # the never-sent one is not answered
    for r, idx in zip(rtx, (3, 7), strict=True):
        pt, _, ts, ssrc = parse(r)
        assert (pt, ssrc) == (97, 5100)
        assert ts == parse(sent[idx])[2]
        orig = R.rtx_unwrap(r, 5000, 96)
        assert orig is not None and orig == sent[idx]
    assert router.subscribers["bob"].slots[0].retransmitted == 2


def test_nack_without_rtx_resends_same_packet() -> None:
    router, _ = make_room()
    pub = router.add_publisher("alice", Wire())
    pub.add_source("mic", "audio", 11, 111, "opus", 48000)
    down = Wire()
    sub = router.add_subscriber("bob", down, audio_slots(1, 6000))
    for i in range(5):
        pub.on_rtp(audio(10 + i, 960 * i, 11, 127), 0.0)
    sent = down.rtp()
    down.out.clear()
    sub.on_rtcp(R.build_nack(77, 6000, [parse(sent[2])[1]]), 0.5)
    assert down.rtp() == [sent[2]]


def test_pli_forwarded_and_throttled() -> None:
    router, _ = make_room(pli_interval=0.5)
    up = Wire()
    pub = router.add_publisher("alice", up)
    src = pub.add_source("cam", "video", 1, 100, "VP8", 90000)
    subs = []
    for n in range(3):
        subs.append(router.add_subscriber(f"s{n}", Wire(), video_slots(1, 5000 + 10 * n)))
    pub.on_rtp(key(1, 0, 1), 100.0)
    up.out.clear()
    src.last_pli = float("-inf")
    src.pli_suppressed = 0
    # a storm of PLIs/FIRs from three subscribers within 0.5 s -> one PLI upstream
    t = 100.0
    for _ in range(10):
        for n, s in enumerate(subs):
            s.on_rtcp(R.build_pli(9, 5000 + 10 * n), t)
        subs[0].on_rtcp(R.build_fir(9, 5000, 1), t)
        t += 0.04
    plis = [fb for fb in up.rtcp() if fb.kind == "pli"]
    assert len(plis) == 1 and plis[0].media_ssrcs == [1]
    assert plis[0].sender_ssrc == router.rtcp_ssrc
    assert src.pli_suppressed == 39
    subs[1].on_rtcp(R.build_pli(9, 5010), 100.0 + 0.5)
    assert len([fb for fb in up.rtcp() if fb.kind == "pli"]) == 2
    # a PLI for an SSRC the subscriber does not receive is ignored
    subs[1].on_rtcp(R.build_pli(9, 123456), 200.0)
    assert len([fb for fb in up.rtcp() if fb.kind == "pli"]) == 2


def test_keyframe_request_repeated_until_keyframe() -> None:
    router, _ = make_room(pli_interval=0.5)
    up = Wire()
    pub = router.add_publisher("alice", up)
    pub.add_source("cam", "video", 1, 100, "VP8", 90000)
    router.add_subscriber("bob", Wire(), video_slots(1, 5000))
    for t in (0.2, 0.6, 1.2, 1.3):
        router.tick(t)
    assert len([fb for fb in up.rtcp() if fb.kind == "pli"]) == 3  # t=0 (join), 0.6, 1.2
    pub.on_rtp(key(1, 0, 1), 1.4)
    router.tick(2.0)
    assert len([fb for fb in up.rtcp() if fb.kind == "pli"]) == 3


def test_last_n_switching_on_audio_level() -> None:
    speakers: list[str | None] = []
    router, layouts = make_room(last_n=2)
    router.on_speaker = speakers.append
    pubs = {}
    for n, pid in enumerate(["p0", "p1", "p2", "p3"]):
        pub = router.add_publisher(pid, Wire())
        pub.add_source("cam", "video", 100 + n, 100, "VP8", 90000)
        pub.add_source("mic", "audio", 200 + n, 111, "opus", 48000, audio_level_ext=1)
        pubs[pid] = pub
    down = Wire()
    router.add_subscriber("viewer", down, video_slots(2, 5000) + audio_slots(4, 6000))

    def shown() -> set[str | None]:
        return {s["pid"] for s in layouts[-1][1] if s["kind"] == "video"}

    def speak(pid: str, t: float, level: int = 25) -> None:
        for i in range(10):
            for other, pub in pubs.items():
                lvl = level if other == pid else 127
                pub.on_rtp(audio(int(t * 50) + i, 0, 200 + int(other[1]), lvl), t)
        router.tick(t)

    assert shown() == {"p0", "p1"}
    speak("p3", 1.0)
    assert shown() == {"p3", "p1"} or shown() == {"p3", "p0"}
    assert speakers == ["p3"]
    slot_of_p3 = [s["mid"] for s in layouts[-1][1] if s["pid"] == "p3"]
    speak("p2", 2.0)
    assert shown() == {"p3", "p2"}
    # p3 kept its slot (no reshuffling of the ones that stay)
    assert [s["mid"] for s in layouts[-1][1] if s["pid"] == "p3"] == slot_of_p3
    assert speakers == ["p3", "p2"]
    # quiet talk below the speech threshold changes nothing
    n_layouts = len(layouts)
    speak("p0", 3.0, level=110)
    assert shown() == {"p3", "p2"} and len(layouts) == n_layouts
    # audio is always forwarded: all four audio sources (nobody excluded here) have a slot
    assert {s["pid"] for s in layouts[-1][1] if s["kind"] == "audio"} == {"p0", "p1", "p2", "p3"}
    # a leaving publisher frees its slot for the next in line
    router.remove_publisher("p2")
    assert "p2" not in shown() and len(shown() - {None}) == 2


def test_a_camera_that_sends_nothing_gives_its_slot_to_one_that_does() -> None:
    # Ada spoke last but turned her camera off (her client sends no video); Bob's camera
    # is on. With one video slot, the viewer sees Bob, and Ada again once she sends.
    router, layouts = make_room(last_n=1)
    ada, bob = router.add_publisher("ada", Wire()), router.add_publisher("bob", Wire())
    for n, pub in enumerate((ada, bob)):
        pub.add_source("cam", "video", 100 + n, 100, "VP8", 90000)
        pub.add_source("mic", "audio", 200 + n, 111, "opus", 48000, audio_level_ext=1)
    router.add_subscriber("viewer", Wire(), video_slots(1, 5000) + audio_slots(2, 6000))

    def run(t0: float, ada_video: bool) -> float:
        t = t0
        for i in range(50):  # one second: Ada talks; Bob's camera always sends
            ada.on_rtp(audio(int(t * 50), 0, 200, 20), t)
            bob.on_rtp(key(int(t * 50), 0, 101), t)
            if ada_video:
                ada.on_rtp(key(int(t * 50), 0, 100), t)
            t += 0.02
            if i % 10 == 9:
                router.tick(t)
        return t

    def shown() -> str | None:
        return layouts[-1][1][0]["pid"]

    t = run(1.0, ada_video=False)
    t = run(t, ada_video=False)
    t = run(t, ada_video=False)
    assert router.speaker == "ada" and shown() == "bob"
    run(t, ada_video=True)
    assert shown() == "ada"


def test_screen_share_has_priority_and_leaves_cleanly() -> None:
    router, layouts = make_room(last_n=1)
    a = router.add_publisher("a", Wire())
    a.add_source("cam", "video", 1, 100, "VP8", 90000)
    router.add_subscriber("v", Wire(), video_slots(1, 5000))
    b = router.add_publisher("b", Wire())
    b.add_source("screen", "video", 2, 100, "VP8", 90000, screen=True)
    assert layouts[-1][1][0] == {"mid": "v0", "kind": "video", "pid": "b", "track": "screen"}
    b.remove_source("screen")
    assert layouts[-1][1][0]["pid"] == "a"


def test_codec_mismatch_is_not_forwarded() -> None:
    router, layouts = make_room()
    a = router.add_publisher("a", Wire())
    a.add_source("cam", "video", 1, 102, "H264", 90000)
    router.add_subscriber("v", Wire(), video_slots(1, 5000))
    assert layouts[-1][1][0]["pid"] is None


def test_publisher_loss_triggers_nack_upstream_and_rtx_repairs() -> None:
    router, _ = make_room(nack_retry=0.1)
    up = Wire()
    pub = router.add_publisher("alice", up)
    src = pub.add_source("cam", "video", 1, 100, "VP8", 90000, rtx_ssrc=3)
    down = Wire()
    router.add_subscriber("bob", down, video_slots(1, 5000))
    up.out.clear()
    pub.on_rtp(key(10, 0, 1), 0.0)
    pub.on_rtp(delta(11, 0, 1), 0.0)
    pub.on_rtp(delta(14, 0, 1), 0.01)  # 12 and 13 lost
    nacks = [fb for fb in up.rtcp() if fb.kind == "nack"]
    assert len(nacks) == 1 and sorted(nacks[0].lost) == [12, 13] and nacks[0].media_ssrcs == [1]
    # the publisher retransmits 12 over RTX: it is unwrapped, cached and forwarded in place
    pub.on_rtp(R.rtx_wrap(delta(12, 0, 1), 3, 101, 500), 0.05)
    assert 12 in src.cache
    router.tick(0.2)  # 13 is still missing: NACKed again
    nacks = [fb for fb in up.rtcp() if fb.kind == "nack"]
    assert len(nacks) == 2 and nacks[1].lost == [13]
    seqs = [parse(p)[1] for p in down.rtp()]
    base = seqs[0]
    assert [(s - base) & 0xFFFF for s in seqs] == [0, 1, 4, 2]
    # receiver report and REMB towards the publisher
    up.out.clear()
    router.send_receiver_reports(1.0)
    kinds = [fb.kind for fb in up.rtcp()]
    assert kinds == ["rr", "remb"]


def test_sender_report_rewritten_per_slot() -> None:
    router, _ = make_room()
    pub = router.add_publisher("alice", Wire())
    pub.add_source("mic", "audio", 11, 111, "opus", 48000)
    down = Wire()
    router.add_subscriber("bob", down, audio_slots(1, 6000))
    pub.on_rtp(audio(1, 48000, 11, 127), 0.0)
    first_ts = parse(down.rtp()[0])[2]
    pub.on_rtcp(R.build_sr(11, 0xAABBCCDD00000000, 48000 + 960, 1, 40), 0.1)
    srs = [fb for fb in down.rtcp() if fb.kind == "sr"]
    assert len(srs) == 1 and srs[0].sender_ssrc == 6000
    assert srs[0].rtp_ts == (first_ts + 960) & 0xFFFFFFFF and srs[0].ntp == 0xAABBCCDD00000000


class RecordingTap:
    """What a recording is told (``forwarder.Tap``), kept in lists."""

    def __init__(self) -> None:
        self.srs: list[tuple[int, int, int]] = []
        self.packets: list[int] = []

    def rtp(self, src: Any, data: bytes, now: float) -> None:
        self.packets.append(src.ssrc)

    def sr(self, src: Any, ntp: int, rtp_ts: int, now: float) -> None:
        self.srs.append((src.ssrc, ntp, rtp_ts))

    def ended(self, src: Any) -> None:
        pass


def test_a_recording_started_between_sender_reports_gets_the_last_one() -> None:
    # Browsers send an audio stream's sender report every few seconds: a recording that
    # starts in between must not wait for the next one to place its files in time.
    router, _ = make_room()
    pub = router.add_publisher("alice", Wire())
    pub.add_source("mic", "audio", 11, 111, "opus", 48000)
    pub.add_source("cam", "video", 1, 100, "VP8", 90000)
    pub.on_rtp(audio(1, 48000, 11, 127), 0.0)
    pub.on_rtcp(R.build_sr(11, 0xAABBCCDD00000000, 48000 + 960, 1, 40), 0.1)
    tap = RecordingTap()
    router.set_recorder(tap)
    assert tap.srs == [(11, 0xAABBCCDD00000000, 48000 + 960)]  # the camera sent none yet
    pub.on_rtcp(R.build_sr(11, 0xAABBCCDE00000000, 96000, 2, 80), 1.1)
    assert tap.srs[-1] == (11, 0xAABBCCDE00000000, 96000)  # and the next ones as they come


def test_a_camera_signalled_off_gives_its_slot_even_if_its_browser_keeps_sending() -> None:
    # Firefox keeps sending the last frame about once a second after its camera track is
    # replaced by none: arrival alone says "sending". Ada spoke last and said her camera
    # is off (the room's `cam` state); Bob's camera is on. One video slot: Bob's.
    cams = {"ada": False, "bob": True}
    router, layouts = make_room(last_n=1, camera_on=lambda pid: cams.get(pid, True))
    ada, bob = router.add_publisher("ada", Wire()), router.add_publisher("bob", Wire())
    for n, pub in enumerate((ada, bob)):
        pub.add_source("cam", "video", 100 + n, 100, "VP8", 90000)
        pub.add_source("mic", "audio", 200 + n, 111, "opus", 48000, audio_level_ext=1)
    router.add_subscriber("viewer", Wire(), video_slots(1, 5000) + audio_slots(2, 6000))
    seq = {"ada": 0, "bob": 0}

    def run(t0: float) -> float:
        t = t0
        for i in range(50):  # one second: Ada talks; Bob's camera sends 50 frames
            ada.on_rtp(audio(int(t * 50), 0, 200, 20), t)
            seq["bob"] += 1
            bob.on_rtp(key(seq["bob"], 0, 101), t)
            if i == 0:  # Ada's browser: the frozen frame, once a second
                seq["ada"] += 1
                ada.on_rtp(key(seq["ada"], 0, 100), t)
            t += 0.02
            if i % 10 == 9:
                router.tick(t)
        return t

    def shown() -> str | None:
        return layouts[-1][1][0]["pid"]

    t = run(1.0)
    t = run(t)
    assert router.speaker == "ada" and shown() == "bob"
    cams["ada"] = True  # she turns her camera back on: the speaker is shown again
    run(t)
    assert shown() == "ada"
