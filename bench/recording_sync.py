"""Recording sync and key-frame requests (issue 14), on the recorder's own clock.

A synthetic publisher whose **beep and flash are simultaneous**: every 2 s (from 1 s) the
camera (320x240, 30 fps, aiortc's VP8 encoder) shows three white frames and the
microphone (aiortc's Opus encoder) a 1 kHz tone of 100 ms, starting at the same
instant; black and silence otherwise.  Its RTP clocks start at random values; it sends a
sender report (NTP <-> RTP) per stream every second, as browsers do; packets arrive
20-50 ms after capture (uniform jitter: they reorder).  A key-frame request (PLI) makes
the next camera frame a key frame.

The packets go through :class:`parley.recording.session.RoomRecording` exactly as the
SFU hands them (``rtp``, ``sr``), and the recording thread's loop is run as the
worker runs it, every ``DRAIN_EVERY`` (0.3 s), or ``HURRY_EVERY`` (0.1 s) after a round
that left a hole waiting or a key frame wanted, of
*simulated* time (drain, expire holes, key-frame requests), so ten minutes of media take
a minute or two, not ten.  What this measures is therefore the recorder (reordering,
frames, timestamps, the manifest's clock); the browser's own capture clocks and the
event loop's scheduling (a PLI is handed to the event loop with ``call_soon``: one more
loop turn) are not in it.

Then the files are decoded with PyAV: each flash's first white frame and each beep's
first loud sample are put on the wall clock (the manifest's ``start`` of the track + the
time in the file), and their difference is the audio/video offset at that moment.

With ``--loss 0.05``, 5 % of the camera's packets are lost: the video file must decode
without an error, and the time from each loss (when the packet would have arrived) to
the key-frame request that repairs it is reported.

    python bench/recording_sync.py --minutes 10
    python bench/recording_sync.py --minutes 2 --loss 0.05
    python bench/recording_sync.py --minutes 10 --audio-skew-ppm 50   # a drifting sound card
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import struct
import sys
import tempfile
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from aiortc.codecs.opus import OpusEncoder
from aiortc.codecs.vpx import Vp8Encoder

from parley.recording.session import RoomRecording
from parley.recording.worker import DRAIN_EVERY, HURRY_EVERY

HDR = struct.Struct("!BBHII")
V_SSRC, A_SSRC = 0x5151, 0x6262
W0 = 1_800_000_000.0  # the publisher's wall clock at t = 0 (Unix seconds)
FLASH_EVERY, FLASH_FIRST, FLASH_LEN = 2.0, 1.0, 0.1
W, H, FPS = 320, 240, 30


@dataclass(eq=False)
class Src:
    """A published stream as the recorder sees the forwarder's ``Source``."""

    ssrc: int
    kind: str
    codec: str
    clock_rate: int
    pid: str = "p_synthetic"
    screen: bool = False
    layer: int = 0
    plis: list[float] = field(default_factory=list)
    clock: list[float] = field(default_factory=lambda: [0.0])

    @property
    def track_id(self) -> str:
        return "camera" if self.kind == "video" else "mic"

    @property
    def main(self) -> Src:
        return self

    def request_keyframe(self, now: float) -> bool:
        self.plis.append(self.clock[0])
        return True


def ntp(unix: float) -> int:
    return int((unix + 2208988800) * 2**32)


def flashing(t: float) -> bool:
    if t < FLASH_FIRST:
        return False
    return (t - FLASH_FIRST) % FLASH_EVERY < FLASH_LEN - 1e-9


def run(minutes: float, loss: float, skew_ppm: float, tmp: Path, seed: int) -> dict[str, object]:
    rnd = random.Random(seed)
    seconds = minutes * 60
    sim = [0.0]
    video = Src(V_SSRC, "video", "VP8", 90000, clock=sim)
    audio = Src(A_SSRC, "audio", "opus", 48000, clock=sim)
    rec = RoomRecording(
        tmp / "rec", "20270101T000000Z-000001", "bench",
        started_by={"id": "admin", "name": "bench"},
        call_soon=lambda f: f(),  # a PLI reaches the publisher at once (simulated)
        wall=lambda: W0 + sim[0], monotonic=lambda: sim[0],
    )  # fmt: skip
    rec.directory.mkdir(parents=True)
    venc, aenc = Vp8Encoder(), OpusEncoder()
    venc.target_bitrate = 300_000
    v0, a0 = rnd.getrandbits(32), rnd.getrandbits(32)
    vseq, aseq = rnd.getrandbits(16), rnd.getrandbits(16)
    black = av.VideoFrame.from_ndarray(np.zeros((H, W, 3), np.uint8), format="rgb24")
    white = av.VideoFrame.from_ndarray(np.full((H, W, 3), 255, np.uint8), format="rgb24")
    audio_rate = 48000 * (1 + skew_ppm * 1e-6)  # samples the sound card makes per second
    pending: list[tuple[float, int, Src, bytes]] = []  # (arrival, order, source, packet)
    losses: list[float] = []
    order = 0
    vi = ai = 0
    served = 0
    last_sr = -1.0
    t = 0.0
    hurry = False
    while t < seconds + 3.0:  # 3 s more: what waits is written
        t += HURRY_EVERY if hurry else DRAIN_EVERY
        sim[0] = t
        # the publisher: what it captured up to t
        while vi / FPS < t and vi / FPS < seconds:
            cap = vi / FPS
            frame = white if flashing(cap) else black
            frame.pts, frame.time_base = vi * 3000, Fraction(1, 90000)
            force = len(video.plis) > served  # a request arrived: the next frame is a key
            served = len(video.plis)
            payloads, _ = venc.encode(frame, force_keyframe=force or vi == 0)
            ts = (v0 + round(cap * 90000)) & 0xFFFFFFFF
            for j, p in enumerate(payloads):
                marker = 0x80 if j == len(payloads) - 1 else 0
                pkt = HDR.pack(0x80, marker | 96, vseq & 0xFFFF, ts, V_SSRC) + p
                vseq += 1
                arrival = cap + 0.02 + rnd.random() * 0.03
                if rnd.random() < loss:
                    losses.append(arrival)
                    continue
                order += 1
                pending.append((arrival, order, video, pkt))
            vi += 1
        while ai * 960 / audio_rate < t and ai * 960 / audio_rate < seconds:
            cap = ai * 960 / audio_rate  # the real time its first sample was captured
            n = np.arange(960) + ai * 960
            beep = flashing(cap)
            amp = 12000 if beep else 0
            s = (np.sin(2 * np.pi * 1000 * n / 48000) * amp).astype(np.int16)
            frame = av.AudioFrame.from_ndarray(np.repeat(s, 2).reshape(1, -1), "s16", "stereo")
            frame.sample_rate, frame.pts, frame.time_base = 48000, ai * 960, Fraction(1, 48000)
            for p in aenc.encode(frame)[0]:
                ts = (a0 + ai * 960) & 0xFFFFFFFF
                pkt = HDR.pack(0x80, 0x80 | 111, aseq & 0xFFFF, ts, A_SSRC) + p
                aseq += 1
                order += 1
                pending.append((cap + 0.02 + rnd.random() * 0.03, order, audio, pkt))
            ai += 1
        if t - last_sr >= 1.0:  # sender reports: the publisher's NTP <-> RTP at t
            last_sr = t
            rec.sr(video, ntp(W0 + t), (v0 + round(t * 90000)) & 0xFFFFFFFF, t)
            rec.sr(audio, ntp(W0 + t), (a0 + round(t * audio_rate)) & 0xFFFFFFFF, t)
        pending.sort()
        due = 0
        while due < len(pending) and pending[due][0] <= t:
            due += 1
        for arrival, _, src, pkt in pending[:due]:
            rec.rtp(src, pkt, arrival)  # its own arrival time, as the forwarder's tap gives it
        del pending[:due]
        # the recording thread's round (RoomRecording.step, less the manifest)
        rec._drain()
        hurry = False
        for track in rec.tracks.values():
            track.tick(t)
            rec._keyframes(track, t)
            hurry = hurry or bool(track.wants_key) or track.waiting
    rec._finish()
    doc = json.loads((rec.directory / "manifest.json").read_text())
    return {"doc": doc, "dir": rec.directory, "plis": video.plis, "losses": losses}


def flashes(path: Path, start: float) -> tuple[list[float], int]:
    """Wall-clock times of each flash's first white frame; decode errors (exceptions)."""
    out: list[float] = []
    errors = 0
    was = False
    with av.open(str(path)) as c:
        try:
            for frame in c.decode(c.streams.video[0]):
                bright = frame.to_ndarray(format="gray").mean() > 128
                if bright and not was:
                    out.append(start + float(frame.time or 0.0))
                was = bright
        except av.error.FFmpegError:
            errors += 1
    return out, errors


def beeps(path: Path, start: float) -> list[float]:
    """Wall-clock times of each beep's first loud sample."""
    out: list[float] = []
    was = False
    with av.open(str(path)) as c:
        for frame in c.decode(c.streams.audio[0]):
            x = frame.to_ndarray()
            x = np.abs(x[0] if x.ndim == 2 else x)
            if x.dtype.kind == "f":
                x = x * 32768
            loud = np.nonzero(x > 3000)[0]
            if len(loud) and not was:
                out.append(start + float(frame.time or 0.0) + loud[0] / frame.sample_rate)
            was = bool(len(loud)) and (len(x) - loud[-1]) < 480
            if not len(loud):
                was = False
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--loss", type=float, default=0.0, help="camera packet loss (0-1)")
    ap.add_argument("--audio-skew-ppm", type=float, default=0.0)
    ap.add_argument("--seed", type=int, default=14)
    args = ap.parse_args()
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        r = run(args.minutes, args.loss, args.audio_skew_ppm, Path(tmp), args.seed)
        doc: dict = r["doc"]  # type: ignore[assignment]
        directory: Path = r["dir"]  # type: ignore[assignment]
        tracks = {t["kind"]: t for t in doc["tracks"]}
        v, a = tracks["video"], tracks["audio"]
        print(f"{args.minutes:g} min of media recorded in {time.monotonic() - t0:.0f} s;"
              f" clocks: video {v['clock']}, audio {a['clock']}", file=sys.stderr)  # fmt: skip
        fl, errors = flashes(directory / v["file"], v["start"])
        bp = beeps(directory / a["file"], a["start"])
    print(f"video: {v['frames']} frames, {v['frames_dropped']} dropped, "
          f"{v['keyframes_requested']} key frames requested; decode errors: {errors}")  # fmt: skip
    # pair each flash with the beep nearest to it (they are 2 s apart)
    offsets = []
    for f in fl:
        b = min(bp, key=lambda x: abs(x - f), default=None)
        if b is not None and abs(b - f) < 0.5:
            offsets.append((f - W0, (b - f) * 1000))
    if offsets:
        ms = [o for _, o in offsets]
        first, last = offsets[0], offsets[-1]
        print(f"flash/beep pairs: {len(offsets)} (of {len(fl)} flashes, {len(bp)} beeps)")
        print(f"audio - video offset, ms: first {first[1]:+.1f} (at {first[0]:.0f} s), "
              f"last {last[1]:+.1f} (at {last[0]:.0f} s), median {statistics.median(ms):+.1f}, "
              f"worst {max(ms, key=abs):+.1f}")  # fmt: skip
    losses: list[float] = r["losses"]  # type: ignore[assignment]
    plis: list[float] = r["plis"]  # type: ignore[assignment]
    if losses:
        # a loss is repaired by the first request at or after it
        waits = []
        for t in losses:
            after = [p for p in plis if p >= t]
            if after:
                waits.append(after[0] - t)
        waits.sort()
        p95 = waits[int(len(waits) * 0.95)]
        print(f"losses: {len(losses)}, key-frame requests: {len(plis)}; loss -> request, ms:"
              f" median {statistics.median(waits) * 1000:.0f}, p95 {p95 * 1000:.0f},"
              f" max {waits[-1] * 1000:.0f}")  # fmt: skip


if __name__ == "__main__":
    main()
