"""How fast ``parley compose`` renders four 720p cameras, against real time.

Makes a recording of four participants (each a 1280x720 30 fps VP8 camera coded by
aiortc's encoder, and an Opus microphone) through :class:`RoomRecording`, as the SFU
would, then renders it to MP4 (1280x720, 25 fps, H.264 + AAC) and to WebM (VP8 + Opus),
and prints seconds of meeting per second of rendering (wall clock and CPU).

    python bench/compose.py               # 20 s of meeting
    python bench/compose.py --seconds 10
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from parley.recording.compose.render import compose  # noqa: E402
from parley.recording.session import RoomRecording  # noqa: E402
from tests.recording.media import FakeSource, opus_packets, video_packets  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=20)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rec = RoomRecording(Path(tmp) / "rec", "20260101T000000Z-000001", "bench",
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
            packets = video_packets(
                "VP8", args.seconds * 30, 10 + n, width=1280, height=720, key_every=90
            )
            feed += [(t, cam, d) for t, d in packets]
            feed += [(t, mic, d) for t, d in opus_packets(args.seconds * 50, 20 + n)]
        for t, src, d in sorted(feed, key=lambda x: x[0]):
            rec.rtp(src, d, base + t)
        rec.stop()
        rec.join()
        for suffix in (".mp4", ".webm"):
            out = Path(tmp) / f"meeting{suffix}"
            cpu = time.process_time()
            result = compose(rec.directory, out, progress=None)
            cpu = time.process_time() - cpu
            print(f"{suffix}: {result.seconds:.1f} s of meeting in {result.elapsed:.1f} s wall"
                  f" ({result.seconds / result.elapsed:.2f}x real time), {cpu:.1f} s CPU"
                  f" ({result.seconds / cpu:.2f}x real time per core)")  # fmt: skip


if __name__ == "__main__":
    main()
