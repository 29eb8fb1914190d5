"""Recording from RTP packets to files: checked with real ffprobe and PyAV decoding."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import av
import pytest

from parley.recording.session import RoomRecording
from tests.support.media_files import ffprobe

from .media import FakeSource, opus_packets, video_packets


def decode_all(path: Path) -> tuple[int, list[tuple[int, int]]]:
    """Frames decoded (errors raise; audio: samples) and the picture sizes seen."""
    n = 0
    sizes: list[tuple[int, int]] = []
    with av.open(str(path)) as container:
        stream = container.streams[0]
        for frame in container.decode(stream):
            n += frame.samples if isinstance(frame, av.AudioFrame) else 1
            if isinstance(frame, av.VideoFrame) and (
                not sizes or sizes[-1] != (frame.width, frame.height)
            ):
                sizes.append((frame.width, frame.height))
    return n, sizes


def record(tmp_path: Path, feed: list[tuple[float, FakeSource, bytes]], **kw) -> RoomRecording:
    rec = RoomRecording(
        tmp_path / "rec", "20261207T050000Z-abcdef", "team",
        started_by={"id": "p_host", "name": "Ada"}, call_soon=lambda f: f(), **kw,
    )  # fmt: skip
    rec.start()
    base = time.monotonic()
    for t, src, data in sorted(feed, key=lambda x: x[0]):
        rec.rtp(src, data, base + t)
    rec.stop()
    rec.join(30)
    assert not rec.running
    return rec


def test_vp8_and_opus_in_order(tmp_path: Path) -> None:
    cam = FakeSource("p_ada", "camera", "video", "VP8", 90000, 1111)
    mic = FakeSource("p_ada", "mic", "audio", "opus", 48000, 2222)
    feed = [(t, cam, d) for t, d in video_packets("VP8", 60, 1111)]
    feed += [(t, mic, d) for t, d in opus_packets(100, 2222)]
    rec = record(tmp_path, feed)
    manifest = json.loads((rec.directory / "manifest.json").read_text())
    assert manifest["stop_reason"] == "stopped"
    files = {t["track"]: t for t in manifest["tracks"]}
    assert set(files) == {"camera", "mic"}
    video = rec.directory / files["camera"]["file"]
    audio = rec.directory / files["mic"]["file"]
    assert video.suffix == ".webm" and audio.suffix == ".webm"
    v = ffprobe(video)
    assert v["streams"][0]["codec_name"] == "vp8"
    assert (v["streams"][0]["width"], v["streams"][0]["height"]) == (320, 240)
    assert float(v["format"]["duration"]) == pytest.approx(2.0, abs=0.1)
    a = ffprobe(audio)
    assert a["streams"][0]["codec_name"] == "opus"
    assert float(a["format"]["duration"]) == pytest.approx(2.0, abs=0.1)
    assert decode_all(video)[0] == 60
    assert decode_all(audio)[0] == 100 * 960 - 312  # 2 s, less the encoder's pre-skip
    assert files["camera"]["frames"] == 60 and files["camera"]["clock"] == "arrival"


def test_reordering_and_loss_never_write_a_broken_frame(tmp_path: Path) -> None:
    cam = FakeSource("p_bob", "camera", "video", "VP8", 90000, 3333)
    packets = video_packets("VP8", 150, 3333, width=640, height=360, key_every=30)
    rng = random.Random(7)
    kept = [(t, d) for t, d in packets if rng.random() >= 0.05]  # 5 % loss
    # reorder: every 7th packet a little late
    feed = [(t + (0.03 if i % 7 == 0 else 0.0), cam, d) for i, (t, d) in enumerate(kept)]
    rec = record(tmp_path, feed)
    track = rec.manifest()["tracks"][0]
    n, _ = decode_all(rec.directory / track["file"])  # PyAV raises on a decoding error
    assert 0 < n < 150
    assert track["frames"] == n
    assert track["frames_dropped"] > 0
    assert cam.plis, "a key frame was asked for after the loss"


def test_h264_goes_to_matroska(tmp_path: Path) -> None:
    cam = FakeSource("p_cy", "camera", "video", "H264", 90000, 4444)
    rec = record(tmp_path, [(t, cam, d) for t, d in video_packets("H264", 45, 4444)])
    track = rec.manifest()["tracks"][0]
    path = rec.directory / track["file"]
    assert path.suffix == ".mkv"
    info = ffprobe(path)["streams"][0]
    assert info["codec_name"] == "h264" and info["width"] == 320
    assert decode_all(path)[0] == 45


def test_simulcast_records_the_top_layer_and_survives_its_loss(tmp_path: Path) -> None:
    low = FakeSource("p_di", "camera", "video", "VP8", 90000, 5001, layer=0)
    high = FakeSource("p_di", "camera", "video", "VP8", 90000, 5002, layer=1)
    low.layers = high.layers = [low, high]
    low.main_ = high.main_ = high
    feed = [(t, low, d) for t, d in video_packets("VP8", 120, 5001, width=160, height=120,
                                                    key_every=15)]  # fmt: skip
    # the top layer for the first 2 s only (then e.g. the publisher's bandwidth drops)
    feed += [(t, high, d) for t, d in video_packets("VP8", 60, 5002, width=320, height=240)]
    rec = record(tmp_path, feed)
    manifest = rec.manifest()
    assert len(manifest["tracks"]) == 1
    track = manifest["tracks"][0]
    n, sizes = decode_all(rec.directory / track["file"])
    # the top layer from its first key frame, the lower one when the top stopped
    assert (320, 240) in sizes and sizes[-1] == (160, 120)
    assert [(s["width"], s["height"]) for s in track["sizes"]][-2:] == [(320, 240), (160, 120)]
    assert track["layer_switches"] >= 1
    assert track["duration"] == pytest.approx(4.0, abs=0.3)


def test_a_full_disk_stops_cleanly_and_the_files_play(tmp_path: Path) -> None:
    import parley.recording.session as session

    failed: list[str] = []
    cam = FakeSource("p_ed", "camera", "video", "VP8", 90000, 6001)
    old = session.MANIFEST_EVERY
    session.MANIFEST_EVERY = 0.0  # check the free space at once
    try:
        rec = RoomRecording(
            tmp_path / "rec", "20261207T050000Z-abcdef", "team",
            started_by={"id": "p_host", "name": "Ada"}, call_soon=lambda f: f(),
            on_failed=failed.append, min_free=1 << 62,  # more than any disk has
        )  # fmt: skip
        rec.start()
        base = time.monotonic()
        for t, d in video_packets("VP8", 30, 6001):
            rec.rtp(cam, d, base + t)
        rec.join(30)
    finally:
        session.MANIFEST_EVERY = old
    assert not rec.running
    assert failed == ["disk-full"]
    manifest = json.loads((rec.directory / "manifest.json").read_text())
    assert manifest["stop_reason"] == "disk-full"
    for track in manifest["tracks"]:
        decode_all(rec.directory / track["file"])


def test_audio_and_video_line_up_through_sender_reports(tmp_path: Path) -> None:
    """A beep and a flash made at the same instant, sent with unrelated RTP timestamp
    origins: in the files, placed by the manifest's starts, they are within 40 ms."""
    import numpy as np

    cam = FakeSource("p_ada", "camera", "video", "VP8", 90000, 7001)
    mic = FakeSource("p_ada", "mic", "audio", "opus", 48000, 7002)
    v_ts0, a_ts0 = 123_456, 987_654  # each stream's own random origin
    video = video_packets("VP8", 90, 7001, ts0=v_ts0, flash_at=45)  # flash at 1.5 s
    audio = opus_packets(150, 7002, ts0=a_ts0, beep_at=75)  # beep at 1.5 s
    # the audio stream starts 0.5 s later than the video (the microphone came on later)
    feed = [(t, cam, d) for t, d in video] + [(t, mic, d) for t, d in audio if t >= 0.5]
    rec = RoomRecording(
        tmp_path / "rec", "20261207T050000Z-abcdef", "team",
        started_by={"id": "p_host", "name": "Ada"}, call_soon=lambda f: f(),
    )  # fmt: skip
    rec.start()
    base = time.monotonic()
    ntp0 = (3_900_000_000 << 32) + (1 << 31)  # the capture clock's time at RTP origin
    # sender reports: both streams' RTP origins are the same NTP instant
    rec.sr(cam, ntp0 + (2 << 32), v_ts0 + 2 * 90000, base)
    rec.sr(mic, ntp0 + (2 << 32), a_ts0 + 2 * 48000, base)
    for t, src, d in sorted(feed, key=lambda x: x[0]):
        rec.rtp(src, d, base + t + (0.2 if src is mic else 0.0))  # audio arrives late
    rec.stop()
    rec.join(30)
    tracks = {t["track"]: t for t in rec.manifest()["tracks"]}
    assert tracks["camera"]["clock"] == tracks["mic"]["clock"] == "rtcp-sr"

    with av.open(str(rec.directory / tracks["camera"]["file"])) as c:
        lum = [(f.time, float(f.to_ndarray(format="gray").mean())) for f in c.decode(video=0)]
    flash = max(lum, key=lambda x: x[1])[0] + tracks["camera"]["start"]
    with av.open(str(rec.directory / tracks["mic"]["file"])) as c:
        energy = []
        for f in c.decode(audio=0):
            samples = f.to_ndarray().astype(np.float64)
            energy.append((f.time, float((samples**2).mean())))
    beep = max(energy, key=lambda x: x[1])[0] + tracks["mic"]["start"]
    assert abs(flash - beep) < 0.040, (flash, beep)


def test_a_frame_that_never_ends_is_dropped_not_kept() -> None:
    from parley.recording.frames import MAX_FRAME_PACKETS, FrameAssembler

    from .media import rtp

    frames = FrameAssembler("VP8")
    key = video_packets("VP8", 1, 1)[0][1]  # a key frame's first packet (descriptor S=1)
    out = []
    for seq in range(MAX_FRAME_PACKETS + 10):  # same timestamp, never a marker
        out += frames.push(rtp(96, seq, 0, 1, key[12:]), 0.0)
    assert out == [] and len(frames._parts) < MAX_FRAME_PACKETS and frames.dropped >= 1


def test_rooms_recorded_at_once_share_a_thread_and_one_failing_stops_only_itself(
    tmp_path: Path,
) -> None:
    import parley.recording.session as session
    from parley.recording.worker import RecordingWorker

    worker = RecordingWorker()  # the server's is worker.shared(): one for every room
    failed: list[str] = []
    old = session.MANIFEST_EVERY
    session.MANIFEST_EVERY = 0.0  # check the free space at every round
    try:
        full, ok = (
            RoomRecording(
                tmp_path / name,
                f"20261207T050000Z-{name}",
                name,
                started_by={"id": "p_host", "name": "Ada"},
                call_soon=lambda f: f(),
                on_failed=failed.append,
                min_free=min_free,
                worker=worker,
            )  # fmt: skip
            for name, min_free in (("full", 1 << 62), ("ok00", 0))
        )
        full.start()
        ok.start()
        cam_a = FakeSource("p_a", "camera", "video", "VP8", 90000, 7001)
        cam_b = FakeSource("p_b", "camera", "video", "VP8", 90000, 7002)
        base = time.monotonic()
        packets = video_packets("VP8", 60, 7002)
        for t, d in video_packets("VP8", 30, 7001):
            full.rtp(cam_a, d, base + t)
        for t, d in packets[: len(packets) // 2]:
            ok.rtp(cam_b, d, base + t)
        full.join(30)
        assert not full.running and failed == ["disk-full"]
        assert ok.running  # the other room records on
        for t, d in packets[len(packets) // 2 :]:
            ok.rtp(cam_b, d, base + t)
        ok.stop()
        ok.join(30)
    finally:
        session.MANIFEST_EVERY = old
    assert not ok.running and failed == ["disk-full"]
    manifest = json.loads((ok.directory / "manifest.json").read_text())
    assert manifest["stop_reason"] == "stopped"
    (track,) = manifest["tracks"]
    assert track["frames"] == 60
    assert decode_all(ok.directory / track["file"])[0] == 60
    assert json.loads((full.directory / "manifest.json").read_text())["stop_reason"] == "disk-full"


def test_opus_is_muxed_in_packets_of_up_to_120_ms_that_decode_the_same(tmp_path: Path) -> None:
    """Consecutive 20 ms Opus packets go into the file as one packet of up to 120 ms
    (only the framing changes: one mux call each, not one per 20 ms); a gap, or a
    packet of another shape, starts a new one.  The decoded sound is the same, sample
    for sample, and every packet is where its RTP timestamp puts it."""
    import numpy as np

    from parley.recording.writer import TrackWriter

    payloads = [d[12:] for _, d in opus_packets(100, 1, beep_at=50)]
    frames: list[tuple[int, bytes]] = [(i * 960, p) for i, p in enumerate(payloads)]
    del frames[40:42]  # a gap of 40 ms (lost packets)
    # a two-frame packet (code 1: 40 ms) where frames 70-71 were: muxed alone
    two = bytes((payloads[70][0] | 1,)) + payloads[70][1:] * 2
    frames = [f for f in frames if f[0] not in (70 * 960, 71 * 960)]
    frames.insert(68, (70 * 960, two))
    writer = TrackWriter(tmp_path / "mic.webm", "OPUS", 48000)
    for pts, data in frames:
        assert writer.write(data, pts, True)
    writer.close()
    assert writer.frames == len(frames) == 97

    reference = av.CodecContext.create("opus", "r")
    expected = [f.to_ndarray() for _, d in frames for f in reference.decode(av.Packet(d))]
    with av.open(str(tmp_path / "mic.webm")) as c:
        stream = c.streams[0]
        muxed = [(p.pts, p.duration) for p in c.demux(stream) if p.size]
    with av.open(str(tmp_path / "mic.webm")) as c:
        decoded = [f.to_ndarray() for f in c.decode(c.streams[0])]
    got = np.concatenate(decoded, axis=1)
    want = np.concatenate(expected, axis=1)[:, 312:]  # the file's pre-skip (OpusHead)
    assert got.shape == want.shape and np.array_equal(got, want)
    starts = [pts for pts, _ in muxed]  # milliseconds (Matroska)
    # 0-38 (7 packets), then the gap: 840 ms on, 42-67 (5 packets), the 40 ms packet
    # alone at 1400 ms, then from 1440 ms 72-99 (5 packets)
    assert len(muxed) == 7 + 5 + 1 + 5
    assert starts[:8] == [0, 120, 240, 360, 480, 600, 720, 840]
    assert 1400 in starts and starts[starts.index(1400) + 1] == 1440


def test_a_recording_hurries_its_rounds_only_while_a_loss_waits(tmp_path: Path) -> None:
    """The worker's rounds are far apart (worker.DRAIN_EVERY) unless a recording says
    it is in a hurry: a hole waits for its late packet, or a key frame is wanted; the
    key frame request then goes out as soon as the hole is given up."""
    clock = [100.0]
    cam = FakeSource("p_ada", "camera", "video", "VP8", 90000, 1111)
    rec = RoomRecording(
        tmp_path / "rec", "20261207T050000Z-abcdef", "team",
        started_by={"id": "p_host", "name": "Ada"}, call_soon=lambda f: f(),
        monotonic=lambda: clock[0], wall=lambda: 1.8e9 + clock[0],
    )  # fmt: skip
    rec.directory.mkdir(parents=True)
    packets = video_packets("VP8", 40, 1111)

    def arrive(until: float, skip: int = -1) -> None:
        for i, (t, data) in enumerate(packets):
            if clock[0] - 100.0 <= t < until and i != skip:
                rec.rtp(cam, data, 100.0 + t)

    arrive(0.5)  # in order, starting with a key frame
    clock[0] = 100.47
    assert rec.step() is False and not rec.hurry  # a key frame is asked for at the start
    assert cam.plis == [100.47]
    lost = next(i for i, (t, _) in enumerate(packets) if t >= 0.6)
    arrive(0.8, skip=lost)  # a hole: it waits for the late packet
    clock[0] = 100.8
    assert rec.step() is False and rec.hurry and cam.plis == [100.47]
    arrive(1.0, skip=lost)
    clock[0] = 101.0  # 0.4 s after the hole: given up, a key frame asked for
    assert rec.step() is False and cam.plis == [100.47, 101.0] and not rec.hurry
    rec.stop()
    assert rec.step() is True
