"""How fast ``parley compose`` renders four 720p cameras, against real time.

Makes a recording of four participants (each a 1280x720 30 fps VP8 camera coded by
aiortc's encoder, and an Opus microphone) through :class:`RoomRecording`, as the SFU
would, then renders it to MP4 (1280x720, 25 fps, H.264 + AAC) and to WebM (VP8 + Opus),
and prints seconds of meeting per second of rendering (wall clock and CPU).

Baseline, in the same run: decoding the recording's tracks and nothing else (the
least any renderer of these files must do), so the ratio render / decode is
comparable across runs on a loaded machine.

    python bench/compose.py                          # 20 s of meeting
    python bench/compose.py --seconds 10
    python bench/compose.py --recording /tmp/rec4    # make it there once, reuse it after
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import av

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from parley.recording.compose.render import compose  # noqa: E402
from parley.recording.manifest import read_manifest  # noqa: E402
from parley.recording.session import RoomRecording  # noqa: E402
from tests.recording.media import FakeSource, opus_packets, video_packets  # noqa: E402


def record(directory: Path, seconds: int) -> Path:
    rec = RoomRecording(directory, "20260101T000000Z-000001", "bench",
                        started_by={"id": "admin", "name": "bench"})  # fmt: skip
    rec.start()
    base = time.monotonic()
    feed = []
    print("coding four 720p cameras ...", file=sys.stderr)
    for n in range(4):
        pid = f"p_{n}"
        rec.event("join", participant=pid, name=f"Person {n + 1}", role="participant")
        cam = FakeSource(pid, "camera", "video", "VP8", 90000, 10 + n)
        mic = FakeSource(pid, "mic", "audio", "opus", 48000, 20 + n)
        packets = video_packets("VP8", seconds * 30, 10 + n, width=1280, height=720, key_every=90)
        feed += [(t, cam, d) for t, d in packets]
        feed += [(t, mic, d) for t, d in opus_packets(seconds * 50, 20 + n)]
    for k in range(seconds):  # someone says something every second, for --burn-chat
        rec.event("chat", participant="p_0", name="Person 1", text=f"line {k}", system=False)
    for t, src, d in sorted(feed, key=lambda x: x[0]):
        rec.rtp(src, d, base + t)
    rec.stop()
    rec.join()
    return rec.directory


def decode_only(directory: Path) -> tuple[float, float]:
    """(wall, CPU) seconds to decode every track of the recording (the baseline)."""
    wall, cpu = time.monotonic(), time.process_time()
    for track in (read_manifest(directory) or {}).get("tracks", []):
        with av.open(str(directory / track["file"])) as c:
            stream = c.streams[0]
            stream.codec_context.thread_type = "AUTO"
            for _ in c.decode(stream):
                pass
    return time.monotonic() - wall, time.process_time() - cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--recording", type=Path, help="where the recording is (made if absent)")
    ap.add_argument("--formats", default=".mp4,.webm")
    ap.add_argument("--burn-chat", action="store_true")
    ap.add_argument("--x264-preset", help="libx264's preset for the MP4 (default: the renderer's)")
    args = ap.parse_args()
    if args.x264_preset:
        from parley.recording.compose import encoder

        encoder.X264_PRESET = args.x264_preset
    with tempfile.TemporaryDirectory() as tmp:
        directory = args.recording or Path(tmp) / "rec"
        if read_manifest(directory) is None:
            directory = record(directory, args.seconds)
        print(f"load average {os.getloadavg()[0]:.1f}", file=sys.stderr)
        wall, cpu = decode_only(directory)
        print(f"baseline, decoding the tracks: {wall:.1f} s wall, {cpu:.1f} s CPU")
        for suffix in args.formats.split(","):
            out = Path(tmp) / f"meeting{suffix}"
            cpu0 = time.process_time()
            extra = {"burn_chat": True} if args.burn_chat else {}  # (older versions: none)
            result = compose(directory, out, progress=None, **extra)
            used = time.process_time() - cpu0
            print(f"{suffix}: {result.seconds:.1f} s of meeting in {result.elapsed:.1f} s wall"
                  f" ({result.seconds / result.elapsed:.2f}x real time, {result.elapsed / wall:.2f}"
                  f"x the decoding), {used:.1f} s CPU ({result.seconds / used:.2f}x real time"
                  f" per core), {out.stat().st_size / 1e6:.2f} MB")  # fmt: skip
        print(f"load average {os.getloadavg()[0]:.1f}", file=sys.stderr)


if __name__ == "__main__":
    main()
