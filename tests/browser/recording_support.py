"""What the recording browser tests (Chromium, and Firefox with a Chromium host) share:
the finished recording on the server's disk, PyAV decoding, and playing a
recorded file in a Chromium ``<video>``."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import av


def finished_manifest(server: Any, room: str) -> tuple[Path, dict[str, Any]]:
    """The recording of ``room`` on the server's disk, once its files are complete."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for path in (server.data_dir / "recordings" / room).glob("*/manifest.json"):
            doc = json.loads(path.read_text())
            if doc.get("stop_reason"):
                return path.parent, doc
        time.sleep(0.3)
    raise AssertionError(f"no finished recording of {room}")


def decode_all(path: Path) -> int:
    """Decode every frame of the file's one stream with PyAV (raises on a decoding
    error); the number of frames decoded."""
    frames = 0
    with av.open(str(path)) as container:
        for packet in container.demux(container.streams[0]):
            for _ in packet.decode():
                frames += 1
    return frames


# In the page: download a recorded file with the host's credential, play it in a <video>
# to its end; returns what the element saw.
JS_PLAY = """
async ([url, token]) => {
  const res = await fetch(url, { headers: { Authorization: 'Bearer ' + token } });
  if (!res.ok) return { error: res.status };
  const blob = await res.blob();
  const v = document.createElement('video');
  v.muted = true;
  v.src = URL.createObjectURL(blob);
  document.body.append(v);
  await new Promise((ok, bad) => {
    v.onloadedmetadata = ok;
    v.onerror = () => bad(String(v.error && v.error.message));
  });
  const duration = v.duration;
  v.playbackRate = 4;
  await v.play();
  await new Promise((ok) => { v.onended = ok; });
  const q = v.getVideoPlaybackQuality();
  return { duration, currentTime: v.currentTime, frames: q.totalVideoFrames, width: v.videoWidth };
}
"""
