"""Micro-benchmark: server CPU per recorded RTP packet (parley.recording), against the
forwarding of the same packets without recording, in the same run.

The packets are real: a synthetic 1280x720 30 fps source coded by aiortc's VP8 encoder
(about 1.2 Mbit/s) and a 48 kHz tone coded by its Opus encoder (50 packets/s),
packetized as aiortc does.  One publisher, one subscriber (a video and an audio slot,
``send`` a no-op: the forwarding CPU without SRTP and sockets, i.e. the part recording
adds to).  Three figures, ``time.process_time()`` / ``time.thread_time()``:

* ``forward``: ``Publisher.on_rtp`` per packet, no recording;
* ``forward + tap``: the same with the room recorded: the packet path only queues
  (``RoomRecording.rtp``); ``tap`` = the difference, the cost on the forwarding path;
* ``writer``: the recording thread's work per packet (reorder, frames, depayload, PyAV
  mux into WebM on disk, manifest), measured by running it in this thread.

``recording total`` = tap + writer: what recording adds per packet.  From it, the rooms
one core records: ``1 / (packets per second of one speaker * total)``.

    python bench/recording.py                  # 10 s of media, 5 repeats
    python bench/recording.py --seconds 5 --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import struct
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from aiortc.codecs.opus import OpusEncoder
from aiortc.codecs.vpx import Vp8Encoder

from parley.recording.session import RoomRecording
from parley.sfu.forwarder import Router, SlotSpec

HDR = struct.Struct("!BBHII")
V_SSRC, A_SSRC = 0x1111, 0x2222


def media(seconds: int, width: int, height: int) -> list[tuple[int, int, int, bool, bytes]]:
    """(ssrc, seq, ts, marker, payload) of ``seconds`` of camera + microphone, in send order."""
    out: list[tuple[float, int, int, bool, bytes]] = []
    venc = Vp8Encoder()
    venc.target_bitrate = 1_200_000
    rng = np.random.default_rng(1)
    base = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    for i in range(seconds * 30):
        img = np.roll(base, i * 4, axis=1)  # a moving picture: real inter frames
        frame = av.VideoFrame.from_ndarray(img, format="rgb24")
        frame.pts, frame.time_base = i * 3000, Fraction(1, 90000)
        payloads, _ = venc.encode(frame, force_keyframe=i % 90 == 0)
        for j, p in enumerate(payloads):
            out.append((i / 30, V_SSRC, i * 3000, j == len(payloads) - 1, p))
    aenc = OpusEncoder()
    for i in range(seconds * 50):
        t = np.arange(960) + i * 960
        s = (np.sin(2 * np.pi * 440 * t / 48000) * 8000).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(np.repeat(s, 2).reshape(1, -1), "s16", "stereo")
        frame.sample_rate, frame.pts, frame.time_base = 48000, i * 960, Fraction(1, 48000)
        for p in aenc.encode(frame)[0]:
            out.append((i / 50, A_SSRC, i * 960, True, p))
    out.sort(key=lambda x: x[0])
    seqs = {V_SSRC: 0, A_SSRC: 0}
    packets = []
    for _, ssrc, ts, marker, payload in out:
        packets.append((ssrc, seqs[ssrc], ts, marker, payload))
        seqs[ssrc] += 1
    return packets


def rtp_round(packets: list[tuple[int, int, int, bool, bytes]], k: int) -> list[bytes]:
    """The packets of repeat ``k``: sequence numbers and timestamps carry on."""
    n = {V_SSRC: sum(1 for p in packets if p[0] == V_SSRC), A_SSRC: 0}
    n[A_SSRC] = len(packets) - n[V_SSRC]
    span = {V_SSRC: packets[-1][2] + 3000, A_SSRC: 0}
    span[A_SSRC] = max(p[2] for p in packets if p[0] == A_SSRC) + 960
    span[V_SSRC] = max(p[2] for p in packets if p[0] == V_SSRC) + 3000
    out = []
    for ssrc, seq, ts, marker, payload in packets:
        pt = 96 if ssrc == V_SSRC else 111
        out.append(
            HDR.pack(0x80, (0x80 if marker else 0) | pt, (seq + k * n[ssrc]) & 0xFFFF,
                     (ts + k * span[ssrc]) & 0xFFFFFFFF, ssrc) + payload
        )  # fmt: skip
    return out


def room() -> tuple[Router, object]:
    router = Router()
    pub = router.add_publisher("p_pub", lambda b: None)
    pub.add_source("camera", "video", V_SSRC, 96, "VP8", 90000)
    pub.add_source("mic", "audio", A_SSRC, 111, "opus", 48000)
    slots = [
        SlotSpec("0", "video", 0xAAAA, 96, "VP8", 90000),
        SlotSpec("1", "audio", 0xBBBB, 111, "opus", 48000),
    ]
    router.add_subscriber("p_sub", lambda b: None, slots)
    return router, pub


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    print("coding the source ...", file=sys.stderr)
    packets = media(args.seconds, 1280, 720)
    video = sum(1 for p in packets if p[0] == V_SSRC)
    pps = len(packets) / args.seconds
    kbps = sum(len(p[4]) + 12 for p in packets) * 8 / args.seconds / 1000
    print(f"{len(packets)} packets ({video} video), {pps:.0f} packets/s, {kbps:.0f} kbit/s")
    fwd, tap, writer = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(args.repeats):
            data = rtp_round(packets, 2 * k)
            router, pub = room()
            t0 = time.process_time()
            for d in data:
                pub.on_rtp(d, 1.0)  # type: ignore[attr-defined]
            fwd.append((time.process_time() - t0) / len(data))

            data = rtp_round(packets, 2 * k + 1)
            router, pub = room()
            rec = RoomRecording(Path(tmp) / f"r{k}", f"20260101T000000Z-00000{k}", "bench",
                                started_by={"id": "admin", "name": "bench"})  # fmt: skip
            rec.directory.mkdir(parents=True)
            router.set_recorder(rec)
            t0 = time.process_time()
            for d in data:
                pub.on_rtp(d, 1.0)  # type: ignore[attr-defined]
            tap.append((time.process_time() - t0) / len(data) - fwd[-1])
            t0 = time.thread_time()  # the recording thread's work, run here
            rec._drain()
            rec._finish()
            writer.append((time.thread_time() - t0) / len(data))
            files = [t for t in rec.manifest()["tracks"]]
            assert len(files) == 2 and all(t["frames"] > 0 for t in files), files

    def us(xs: list[float]) -> str:
        return f"{statistics.median(xs) * 1e6:.2f} ({min(xs) * 1e6:.2f}–{max(xs) * 1e6:.2f})"

    total = [a + b for a, b in zip(tap, writer, strict=True)]
    print(f"\nµs per packet, median (min–max) of {args.repeats}:")
    print(f"  forward (no recording)   {us(fwd)}")
    ratio = statistics.median([(f + t) / f for f, t in zip(fwd, tap, strict=True)])
    print(f"  tap on the packet path   {us(tap)}   ratio forward+tap / forward: {ratio:.3f}")
    print(f"  writer (recording thread) {us(writer)}")
    print(f"  recording total          {us(total)}   ratio to forwarding: "
          f"{statistics.median(total) / statistics.median(fwd):.2f}")  # fmt: skip
    per_room = pps * statistics.median(total)
    print(f"  one speaker (audio + 720p camera): {pps:.0f} packets/s -> {per_room * 100:.2f} % "
          f"of a core; rooms recorded per core: {1 / per_room:.0f}")  # fmt: skip


if __name__ == "__main__":
    main()
