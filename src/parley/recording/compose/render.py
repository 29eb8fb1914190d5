"""Render a recording (its manifest and track files) into one file: video grid + mixed audio.

The manifest's clock is the timeline: every track starts at its ``start`` (aligned through
RTCP sender reports when recorded).  At each output frame (``fps``) the tiles follow the
meeting: cameras that are on (``media`` events), a shared screen large, the active speaker
first and outlined (``speaker`` events), names on the tiles (``join``/``rename``), and a
name-only tile for someone heard but not seen.  Every audio track is decoded and mixed at
its place on the timeline.  Output: ``.mp4`` (H.264 + AAC) or ``.webm`` (VP8 + Opus);
``vtt``: the meeting's chat as WebVTT subtitles; ``burn_chat``: the chat drawn into the
picture (:mod:`.chat`).

Decoding, scaling and encoding are FFmpeg's (PyAV), on threads of their own
(:mod:`.tracks`, :mod:`.encoder`): FFmpeg releases the GIL, so they overlap on every
core.  This module only decides what goes where and copies tiles into the frame (NumPy).
"""

from __future__ import annotations

import bisect
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av

from ..manifest import read_manifest
from .chat import ChatPanel
from .encoder import Encoder
from .font import draw_text, text_width
from .layout import Tile, fit, layout
from .tracks import RATE, AudioTrack, VideoTrack, planes_of

__all__ = ["ComposeError", "ComposeResult", "compose", "webvtt"]

BACKGROUND = (32, 33, 36)
TILE = (60, 64, 67)
HIGHLIGHT = (138, 180, 248)


def yuv(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    """BT.601 limited-range Y, U, V of an RGB colour (the frame is drawn in YUV 4:2:0, the
    encoders' own format: no colour conversion per frame)."""
    r, g, b = rgb
    y = 16 + (65.738 * r + 129.057 * g + 25.064 * b) / 256
    u = 128 + (-37.945 * r - 74.494 * g + 112.439 * b) / 256
    v = 128 + (112.439 * r - 94.154 * g - 18.285 * b) / 256
    return round(y), round(u), round(v)


class ComposeError(Exception):
    """The directory is not a recording that can be composed (the message says why)."""


@dataclass
class ComposeResult:
    seconds: float  # length of the output
    elapsed: float  # wall-clock seconds it took
    frames: int
    tracks: int


def _np() -> Any:
    try:
        import numpy
    except ImportError:  # pragma: no cover - numpy ships with the test extras
        raise ComposeError("parley compose needs NumPy: pip install numpy") from None
    return numpy


@dataclass
class _Timeline:
    """The manifest's events, as state at a time."""

    names: dict[str, str] = field(default_factory=dict)
    speaker_t: list[float] = field(default_factory=list)
    speaker: list[str | None] = field(default_factory=list)
    media: dict[str, tuple[list[float], list[tuple[bool, bool]]]] = field(default_factory=dict)
    rename: dict[str, tuple[list[float], list[str]]] = field(default_factory=dict)

    @classmethod
    def of(cls, doc: dict[str, Any], t0: float) -> _Timeline:
        tl = cls(names=dict(doc.get("participants") or {}))
        for e in doc.get("events") or []:
            t = float(e.get("t", 0)) - t0
            pid = e.get("participant")
            kind = e.get("type")
            if kind == "speaker":
                tl.speaker_t.append(t)
                tl.speaker.append(pid)
            elif kind == "media" and pid:
                ts, states = tl.media.setdefault(pid, ([], []))
                ts.append(t)
                states.append((bool(e.get("cam", True)), bool(e.get("screen", True))))
            elif kind in ("join", "rename") and pid and e.get("name"):
                ts2, names = tl.rename.setdefault(pid, ([], []))
                ts2.append(t)
                names.append(str(e["name"]))
        return tl

    def speaker_at(self, t: float) -> str | None:
        i = bisect.bisect_right(self.speaker_t, t)
        return self.speaker[i - 1] if i else None

    def shows(self, pid: str, screen: bool, t: float) -> bool:
        """Whether ``pid``'s camera (or screen) is on at ``t`` (on, if nobody said)."""
        ts, states = self.media.get(pid, ([], []))
        i = bisect.bisect_right(ts, t)
        if not i:
            return True
        cam, scr = states[i - 1]
        return scr if screen else cam

    def name_at(self, pid: str, t: float) -> str:
        ts, names = self.rename.get(pid, ([], []))
        i = bisect.bisect_right(ts, t)
        return names[i - 1] if i else self.names.get(pid, pid)


def _vtt_time(t: float) -> str:
    ms = int(round(max(0.0, t) * 1000))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


def webvtt(doc: dict[str, Any], t0: float) -> str:
    """The meeting's chat as WebVTT cues (each shown 5 s, or until the next line)."""
    lines = [e for e in doc.get("events") or [] if e.get("type") == "chat"]
    out = ["WEBVTT", ""]
    for i, e in enumerate(lines):
        start = float(e["t"]) - t0
        end = start + 5.0
        if i + 1 < len(lines):
            end = min(end, max(start + 1.0, float(lines[i + 1]["t"]) - t0))
        text = str(e.get("text", "")).replace("-->", "->").replace("\n", " ")
        who = str(e.get("name") or "")
        out += [f"{_vtt_time(start)} --> {_vtt_time(end)}", f"{who}: {text}" if who else text, ""]
    return "\n".join(out)


def _progress(done: float, total: float, started: float) -> None:
    width = 30
    frac = min(1.0, done / total) if total > 0 else 1.0
    elapsed = time.monotonic() - started
    speed = done / elapsed if elapsed > 0 else 0.0
    bar = "#" * int(frac * width) + "-" * (width - int(frac * width))
    sys.stderr.write(
        f"\r[{bar}] {frac * 100:5.1f}%  {done:6.1f}/{total:.1f} s  {speed:4.1f}x real time"
    )
    sys.stderr.flush()


def compose(
    directory: Path,
    output: Path,
    *,
    width: int = 1280,
    height: int = 720,
    fps: int = 25,
    vtt: Path | None = None,
    burn_chat: bool = False,
    progress: Callable[[float, float, float], None] | None = _progress,
) -> ComposeResult:
    """Render the recording in ``directory`` into ``output`` (see the module docstring)."""
    np = _np()
    doc = read_manifest(directory)
    if doc is None:
        raise ComposeError(f"{directory} has no readable manifest.json: not a recording")
    tracks = [t for t in doc.get("tracks") or [] if isinstance(t, dict) and t.get("frames")]
    if not tracks:
        raise ComposeError(f"{directory}: the recording has no media")
    suffix = output.suffix.lower()
    if suffix not in (".mp4", ".webm"):
        raise ComposeError("the output must be a .mp4 or a .webm file")
    t0 = min(float(t["start"]) for t in tracks)
    total = max(float(t["end"]) for t in tracks) - t0
    timeline = _Timeline.of(doc, t0)
    videos: list[VideoTrack] = []
    audios: list[AudioTrack] = []
    for tr in tracks:
        path = directory / str(tr["file"])
        if not path.is_file() or path.parent != directory:
            continue
        start, end = float(tr["start"]) - t0, float(tr["end"]) - t0
        if tr.get("kind") == "video":
            key = f"{tr['participant']}/{tr['track']}/{tr['file']}"
            videos.append(VideoTrack(key, str(tr["participant"]), bool(tr.get("screen")), start,
                                     end, path, np, fps))  # fmt: skip
        elif tr.get("kind") == "audio":
            audios.append(AudioTrack(str(tr["participant"]), start, end, path, np))
    if vtt is not None:
        vtt.write_text(webvtt(doc, t0), "utf-8")

    started = time.monotonic()
    encoder = Encoder(output, width, height, fps, RATE)
    frames = int(math.ceil(total * fps))
    block = RATE // fps  # audio samples per video frame (fps divides 48000 for 10/15/20/25/30)
    background = yuv(BACKGROUND)
    label_scale = max(1, height // 360)
    chat = ChatPanel(doc, t0, width, height, label_scale) if burn_chat else None
    last_progress = 0.0
    try:
        for i in range(frames):
            t = i / fps
            # drawn straight into the encoder's frame (YUV 4:2:0): no copy of the picture
            vf = av.VideoFrame(width, height, "yuv420p")
            planes = planes_of(np, vf)
            for plane, value in zip(planes, background, strict=True):
                plane.fill(value)
            shown: dict[str, VideoTrack] = {}
            cams: list[str] = []
            screens: list[str] = []
            for v in videos:
                if t > v.end + 0.5:
                    v.close()  # over: its decoder goes
                    continue
                if t >= v.start - 1.0:
                    v.prepare()  # decoding ahead of its first frame
                if t < v.start or not timeline.shows(v.participant, v.screen, t):
                    v.want = None  # not drawn: its decoder need not scale
                    continue
                if v.at(t) is None:
                    continue
                shown[v.key] = v
                (screens if v.screen else cams).append(v.key)
            seen = {v.participant for v in shown.values() if not v.screen}
            heard = [
                a.participant for a in audios if a.start <= t <= a.end and a.participant not in seen
            ]
            for pid in dict.fromkeys(heard):
                cams.append("voice:" + pid)  # heard, not seen: a tile with the name
            speaker = timeline.speaker_at(t)
            speaker_key = next(
                (k for k in cams if k.split("/")[0].removeprefix("voice:") == speaker), None
            )
            for tile in layout(cams, screens, speaker_key, width, height):
                _draw(planes, tile, shown.get(tile.key), timeline, t, label_scale)
            if chat is not None:
                chat.draw(planes, t)
            vf.pts = i
            mix = np.zeros((2, block), dtype=np.float32)
            for a in audios:
                a.add_into(mix, i * block)
            np.clip(mix, -1.0, 1.0, out=mix)
            af = av.AudioFrame.from_ndarray(mix, format="fltp", layout="stereo")
            af.sample_rate = RATE
            af.pts = i * block
            encoder.put(vf, af)
            if progress is not None and (time.monotonic() - last_progress > 0.5 or i == frames - 1):
                last_progress = time.monotonic()
                progress((i + 1) / fps, total, started)
        encoder.finish()
    except BaseException:
        encoder.abort()
        raise
    finally:
        for v in videos:
            v.close()
        for a in audios:
            a.close()
    if progress is not None:
        sys.stderr.write("\n")
    return ComposeResult(frames / fps, time.monotonic() - started, frames, len(tracks))


def _box(planes: Any, x: int, y: int, w: int, h: int, rgb: tuple[int, int, int]) -> None:
    """Fill a rectangle (even coordinates) with a colour, in the three planes."""
    for i, (plane, value) in enumerate(zip(planes, yuv(rgb), strict=True)):
        d = 1 if i == 0 else 2
        plane[y // d : (y + h) // d, x // d : (x + w) // d] = value


def _draw(planes: Any, tile: Tile, video: VideoTrack | None, tl: _Timeline, t: float,
          scale: int) -> None:  # fmt: skip
    x, y, w, h = tile.rect
    if tile.speaker:
        b = max(2, scale * 2)
        _box(planes, max(0, x - b), max(0, y - b), w + 2 * b, h + 2 * b, HIGHLIGHT)
    _box(planes, x, y, w, h, TILE)
    if video is not None and video.current is not None:
        frame = video.current
        fx, fy, fw, fh = fit(frame.width, frame.height, tile.rect)
        for i, (plane, src) in enumerate(zip(planes, video.planes(fw, fh), strict=True)):
            d = 1 if i == 0 else 2
            plane[fy // d : fy // d + src.shape[0], fx // d : fx // d + src.shape[1]] = src
        pid = video.participant
    else:
        pid = tile.key.removeprefix("voice:")
    name = tl.name_at(pid, t)
    if tile.screen:
        name += " (screen)"
    name = "".join(c if 32 <= ord(c) < 127 else "?" for c in name)[:40]
    s = scale if w >= 200 else 1
    tw = min(text_width(name, s) + 8 * s, w) & ~1
    lh = (9 * s + 1) & ~1
    ly = (y + h - lh - 4 * s) & ~1
    _box(planes, x + 4 * s & ~1, ly, tw, lh, (0, 0, 0))
    draw_text(planes[0], name, x + 8 * s, ly + s, s, 235)
