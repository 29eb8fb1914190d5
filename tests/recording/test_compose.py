"""``parley compose``: a recording made from real coded packets, rendered into one file
that ffprobe and PyAV read back (streams, duration, the active speaker's highlight)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest

from parley.recording.compose.chat import SHOW, ChatPanel
from parley.recording.compose.layout import layout
from parley.recording.compose.render import HIGHLIGHT, compose
from parley.recording.session import RoomRecording

from .media import FakeSource, opus_packets, video_packets


def make_recording(tmp_path: Path, seconds: int = 3) -> Path:
    rec = RoomRecording(
        tmp_path / "rec", "20261207T050000Z-c0ffee", "team",
        started_by={"id": "p_ada", "name": "Ada"}, call_soon=lambda f: f(),
    )  # fmt: skip
    rec.start()
    rec.event("join", participant="p_ada", name="Ada", role="host")
    rec.event("join", participant="p_bob", name="Bob", role="participant")
    rec.event("speaker", participant="p_bob")
    rec.event("chat", participant="p_bob", name="Bob", text="hello --> all", system=False)
    base = time.monotonic()
    feed = []
    for pid, ssrc in (("p_ada", 100), ("p_bob", 200)):
        cam = FakeSource(pid, "camera", "video", "VP8", 90000, ssrc)
        mic = FakeSource(pid, "mic", "audio", "opus", 48000, ssrc + 1)
        feed += [(t, cam, d) for t, d in video_packets("VP8", seconds * 30, ssrc)]
        feed += [(t, mic, d) for t, d in opus_packets(seconds * 50, ssrc + 1)]
    screen = FakeSource("p_ada", "screen", "video", "VP8", 90000, 300, screen=True)
    feed += [(t + 1.0, screen, d) for t, d in video_packets("VP8", 30, 300, width=640,
                                                           height=360)]  # fmt: skip
    for t, src, d in sorted(feed, key=lambda x: x[0]):
        rec.rtp(src, d, base + t)
    rec.stop()
    rec.join(30)
    return rec.directory


def probe(path: Path) -> dict:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-print_format", "json", "-show_streams", "-show_format",
         str(path)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return json.loads(out.stdout)


@pytest.mark.parametrize(
    ("suffix", "codecs"), [(".mp4", ("h264", "aac")), (".webm", ("vp8", "opus"))]
)
def test_compose_renders_a_file_that_plays(tmp_path: Path, suffix: str, codecs: tuple) -> None:
    directory = make_recording(tmp_path)
    out = tmp_path / f"meeting{suffix}"
    result = compose(directory, out, width=640, height=360, fps=15, vtt=out.with_suffix(".vtt"),
                     progress=None)  # fmt: skip
    info = probe(out)
    kinds = {s["codec_type"]: s["codec_name"] for s in info["streams"]}
    assert (kinds["video"], kinds["audio"]) == codecs
    assert float(info["format"]["duration"]) == pytest.approx(3.0, abs=0.3)
    assert result.tracks == 5
    frames = 0
    with av.open(str(out)) as c:
        for frame in c.decode(video=0):
            frames += 1
            if frames == 10:  # Bob speaks: his tile (first) is outlined
                img = frame.to_ndarray(format="rgb24")
    assert frames == pytest.approx(45, abs=2)
    outline = np.abs(img.astype(int) - np.array(HIGHLIGHT)).sum(axis=2) < 60
    assert outline.sum() > 200
    vtt = out.with_suffix(".vtt").read_text()
    assert vtt.startswith("WEBVTT") and "Bob: hello -> all" in vtt


def test_the_chat_burnt_in_shows_while_a_line_is_on_screen(tmp_path: Path) -> None:
    directory = make_recording(tmp_path, seconds=2)
    region = ChatPanel({}, 0.0, 640, 360, 1).rect(1)  # one chat line: one row
    text_pixels = []
    for burn in (False, True):
        out = tmp_path / f"chat-{burn}.mp4"
        compose(directory, out, width=640, height=360, fps=15, burn_chat=burn, progress=None)
        info = probe(out)  # it plays: both streams, the whole meeting
        assert {s["codec_type"] for s in info["streams"]} == {"video", "audio"}
        assert float(info["format"]["duration"]) == pytest.approx(2.0, abs=0.3)
        with av.open(str(out)) as c:
            for n, frame in enumerate(c.decode(video=0)):
                if n == 15:  # 1 s in: Bob's line ("hello --> all") is showing
                    luma = frame.to_ndarray(format="gray")
                    break
        x, y, w, h = region
        text_pixels.append(int((luma[y : y + h, x : x + w] > 200).sum()))
    plain, burnt = text_pixels
    assert burnt > plain + 150, text_pixels  # "BOB: HELLO --> ALL" in white on the panel


def test_the_cli_renders_and_refuses_bad_input(tmp_path: Path) -> None:
    directory = make_recording(tmp_path, seconds=2)
    out = tmp_path / "m.mp4"
    env_cmd = [sys.executable, "-m", "parley", "compose"]
    done = subprocess.run([*env_cmd, str(directory), "-o", str(out), "--size", "480x270",
                           "--burn-chat"],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "real time" in done.stdout and "%" in done.stderr  # the progress bar
    assert probe(out)["streams"]
    bad = subprocess.run([*env_cmd, str(tmp_path), "-o", str(out)], capture_output=True,
                         text=True, timeout=60)  # fmt: skip
    assert bad.returncode == 1 and "not a recording" in bad.stderr
    bad = subprocess.run([*env_cmd, str(directory), "-o", str(tmp_path / "m.avi")],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert bad.returncode == 1 and ".mp4 or a .webm" in bad.stderr


def test_layouts() -> None:
    tiles = layout(["a", "b", "c"], [], "c", 1280, 720)
    assert [t.key for t in tiles] == ["c", "a", "b"] and tiles[0].speaker
    tiles = layout(["a", "b"], ["s"], None, 1280, 720)
    screen = tiles[0]
    assert screen.screen and screen.rect[2] > 900  # the screen large
    assert all(t.rect[0] >= screen.rect[0] + screen.rect[2] for t in tiles[1:])
    for t in layout([str(i) for i in range(9)], [], None, 1280, 720):
        x, y, w, h = t.rect
        assert 0 <= x and x + w <= 1280 and 0 <= y and y + h <= 720


def test_the_chat_panel_shows_the_latest_lines_for_a_while() -> None:
    doc = {"events": [
        {"t": 101.0, "type": "chat", "name": "Ada", "text": "hello"},
        {"t": 102.0, "type": "chat", "name": "", "text": "Bob joined", "system": True},
        {"t": 103.0, "type": "chat", "name": "Bob", "text": "word " * 200},
        {"t": 104.0, "type": "chat", "name": "Cy", "text": "caf\u00e9 \u2615"},
        {"t": 104.5, "type": "leave", "participant": "p_cy"},
    ]}  # fmt: skip
    panel = ChatPanel(doc, 100.0, 640, 360, 1)
    assert panel.rows_at(0.5) == []
    assert panel.rows_at(1.5) == [("Ada: hello", False)]
    assert panel.rows_at(2.5) == [("Ada: hello", False), ("Bob joined", True)]
    rows = panel.rows_at(4.5)  # the newest whole lines that fit in four rows
    assert [r[0][:8] for r in rows] == ["Bob join", "Bob: wor", "word wor", "Cy: caf?"]
    assert rows[2][0].endswith("...") and all(len(r[0]) <= panel.chars for r in rows)
    assert panel.rows_at(1.0 + SHOW + 0.1)[0] == ("Bob joined", True)  # Ada's line is gone
    assert panel.rows_at(4.0 + SHOW + 0.1) == []


def test_a_frame_no_output_frame_shows_is_skipped_and_every_other_kept() -> None:
    from parley.recording.compose.tracks import shown

    for fps_in, fps_out, start in ((30, 25, 0.0), (30, 25, 1.37), (24, 25, 0.5), (60, 30, 0.01)):
        times = [start + k / fps_in for k in range(3 * fps_in)]
        kept = {k for k in range(len(times) - 1) if shown(times[k], times[k + 1], fps_out)}
        # what the compositor shows: at output frame i, the last frame at or before i/fps
        # (up to the last frame, which is always kept)
        ticks = [i / fps_out for i in range(int(times[-1] * fps_out) + 1)]
        on_screen = {
            max(k for k, t in enumerate(times) if t <= tick)
            for tick in ticks
            if times[0] <= tick < times[-1]
        }
        assert kept == on_screen
    assert all(shown(k / 30, (k + 1) / 30, 0) for k in range(30))  # 0: every frame
