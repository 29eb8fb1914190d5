"""A recording whose process was killed (SIGKILL) mid-recording is found and finished:
its files complete and readable by ffprobe, its manifest finished ("interrupted") at the
last moment written.  A recording a live process writes is left alone."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from parley.recording.manifest import read_manifest
from parley.recording.recovery import finish, interrupted
from parley.recording.session import RoomRecording
from tests.support.media_files import ffprobe

ROOT = Path(__file__).resolve().parents[2]

# Records four seconds of VP8 + Opus, waits until the files hold most of it, then dies
# the way a node dies: SIGKILL, nothing closed.
CHILD = """
import os, signal, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[2])
from parley.recording.session import RoomRecording
from tests.recording.media import FakeSource, opus_packets, video_packets

rec = RoomRecording(Path(sys.argv[1]), "20261207T050000Z-dead01", "team",
                    started_by={"id": "p_ada", "name": "Ada"})
rec.start()
rec.event("join", participant="p_ada", name="Ada", role="host")
cam = FakeSource("p_ada", "camera", "video", "VP8", 90000, 10)
mic = FakeSource("p_ada", "mic", "audio", "opus", 48000, 11)
feed = [(t, cam, d) for t, d in video_packets("VP8", 120, 10)]
feed += [(t, mic, d) for t, d in opus_packets(200, 11)]
base = time.monotonic()
for t, src, d in sorted(feed, key=lambda x: x[0]):
    rec.rtp(src, d, base + t)
deadline = time.monotonic() + 30
while rec._queue and time.monotonic() < deadline:
    time.sleep(0.05)
time.sleep(0.5)
os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.timeout(120)
def test_a_killed_recording_is_finished_and_its_files_play(tmp_path: Path) -> None:
    root = tmp_path / "recordings"
    directory = root / "team" / "20261207T050000Z-dead01"
    child = subprocess.run([sys.executable, "-c", CHILD, str(directory), str(ROOT)],
                           capture_output=True, text=True, timeout=90)  # fmt: skip
    assert child.returncode == -9, child.stderr
    before = read_manifest(directory)
    assert before is not None and before["stopped_at"] is None  # it never got to finish
    assert {t["track"] for t in before["tracks"]} == {"camera", "mic"}

    # a recording a live process writes is not "interrupted"
    live = RoomRecording(root / "team" / "20261207T050001Z-a11ve1", "20261207T050001Z-a11ve1",
                         "team", started_by={"id": "x", "name": "X"})  # fmt: skip
    live.start()
    try:
        assert interrupted(root) == [directory]
        assert finish(live.directory) is None
    finally:
        live.stop()
        live.join(10)

    doc = finish(directory)
    assert doc is not None and doc["stop_reason"] == "interrupted"
    assert read_manifest(directory) == doc
    ends = [t["end"] for t in doc["tracks"]]
    assert doc["stopped_at"] == pytest.approx(max(ends), abs=0.5)
    assert doc["stopped_at"] - doc["started_at"] > 2.0
    for track in doc["tracks"]:
        info = ffprobe(directory / track["file"])
        duration = float(info["format"]["duration"])  # complete: it has one again
        assert 2.0 < duration < 4.5, (track["file"], duration)
        assert track["duration"] == pytest.approx(duration, abs=0.3)
        assert info["streams"][0]["codec_name"] == ("vp8" if track["kind"] == "video" else "opus")
    # the microphone's 20 ms frames are counted, not the file's packets (up to 120 ms)
    mic = next(t for t in doc["tracks"] if t["track"] == "mic")
    assert mic["frames"] == pytest.approx(mic["duration"] / 0.02 + 1, abs=1)
    assert not list(directory.glob("*.tmp"))
    assert interrupted(root) == [] and finish(directory) is None  # once
