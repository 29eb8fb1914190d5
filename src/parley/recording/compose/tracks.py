"""The recording's track files, decoded for the compositor.

Video: one thread per file decodes ahead of the compositor (a few frames, bounded) and
scales each frame to the size its tile had last (the layout changes seldom), so the
compositor mostly finds its tiles ready.  FFmpeg's decoding and scaling release the
GIL: the tracks decode on every core while the compositor draws and the encoder
encodes.  Audio: decoded as the mix needs it (cheap), as float stereo at 48 kHz.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av

__all__ = ["RATE", "AudioTrack", "VideoTrack"]

RATE = 48000
AHEAD = 4  # decoded frames waiting per video track, at most


def planes_of(np: Any, frame: Any) -> tuple[Any, Any, Any]:
    """A YUV 4:2:0 frame's planes as arrays (views of the frame's memory)."""
    return tuple(
        np.frombuffer(pl, np.uint8).reshape(-1, pl.line_size)[: pl.height, : pl.width]
        for pl in frame.planes
    )


def scaled(np: Any, frame: Any, w: int, h: int) -> tuple[Any, Any, Any]:
    small = frame.reformat(width=w, height=h, format="yuv420p", interpolation="FAST_BILINEAR")
    return planes_of(np, small)


@dataclass
class _Decoded:
    t: float  # timeline seconds
    width: int
    height: int
    size: tuple[int, int] | None = None  # what ``planes`` was scaled to
    planes: Any = None
    frame: Any = None  # the decoded frame (to scale to another size)


@dataclass
class VideoTrack:
    """One video file: the frame to show at a time, scaled (see the module docstring)."""

    key: str
    participant: str
    screen: bool
    start: float  # timeline seconds of the file's first frame
    end: float
    path: Path
    np: Any = None
    #: the size the compositor wants (its tile, fitted); the decoder scales to it
    want: tuple[int, int] | None = None
    current: _Decoded | None = None
    _ahead: _Decoded | None = None
    _done: bool = False
    _queue: queue.Queue[_Decoded | BaseException | None] = field(
        default_factory=lambda: queue.Queue(AHEAD)
    )
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _run(self) -> None:
        q, stop = self._queue, self._stop
        try:
            with av.open(str(self.path)) as container:
                stream = container.streams.video[0]
                stream.thread_type = "AUTO"
                for frame in container.decode(stream):
                    item = _Decoded(self.start + float(frame.time or 0.0), frame.width,
                                    frame.height, frame=frame)  # fmt: skip
                    want = self.want
                    if want is not None:
                        item.size, item.planes = want, scaled(self.np, frame, *want)
                    while not stop.is_set():
                        try:
                            q.put(item, timeout=0.2)
                            break
                        except queue.Full:
                            continue
                    if stop.is_set():
                        return
        except av.FFmpegError:
            pass  # a damaged end of file: what decoded is shown
        except BaseException as exc:  # noqa: BLE001 - handed to the compositor
            self._put_last(exc)
            return
        self._put_last(None)

    def _put_last(self, item: BaseException | None) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def prepare(self) -> None:
        """Start decoding (ahead of the first frame it is asked for)."""
        if self._thread is None and not self._stop.is_set():
            self._thread = threading.Thread(target=self._run, name=f"decode {self.path.name}",
                                            daemon=True)  # fmt: skip
            self._thread.start()

    def _next(self) -> None:
        self.prepare()
        if self._stop.is_set():  # closed
            self._done, self._ahead = True, None
            return
        item = self._queue.get()
        if isinstance(item, BaseException):
            raise item
        if item is None:
            self._done = True
        self._ahead = item

    def at(self, t: float) -> _Decoded | None:
        """The frame to show at timeline time ``t`` (None before the first)."""
        if self._ahead is None and not self._done:
            self._next()
        while self._ahead is not None and self._ahead.t <= t:
            self.current = self._ahead
            self._ahead = None
            self._next()
        return self.current

    def planes(self, w: int, h: int) -> Any:
        """The current frame at ``w`` x ``h`` in YUV 4:2:0: (Y, U, V) arrays."""
        cur = self.current
        assert cur is not None
        self.want = (w, h)
        if cur.size != (w, h):  # a new layout: scaled here, once
            cur.size, cur.planes = (w, h), scaled(self.np, cur.frame, w, h)
        return cur.planes

    def close(self) -> None:
        """Stop decoding (for good) and let the file go."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._ahead = self.current = None
        self._done = True


@dataclass
class AudioTrack:
    participant: str
    start: float
    end: float
    path: Path
    np: Any = None
    container: Any = None
    frames: Any = None
    buf: Any = None  # float32 (2, n) samples of the current frame
    pos: int = 0  # timeline sample of buf[:, 0]

    def open(self) -> None:
        self.container = av.open(str(self.path))
        self.frames = iter(self.container.decode(self.container.streams.audio[0]))
        self._next()

    def _next(self) -> None:
        np = self.np
        try:
            frame = next(self.frames)
        except (StopIteration, av.FFmpegError):
            self.buf = None
            return
        arr = frame.to_ndarray().astype(np.float32)
        if frame.format.is_planar:
            arr = arr.reshape(len(frame.layout.channels), -1)
        else:
            arr = arr.reshape(-1, len(frame.layout.channels)).T
        if arr.shape[0] == 1:
            arr = np.vstack([arr, arr])
        if frame.format.name.startswith("s16"):
            arr /= 32768.0
        self.buf = arr[:2]
        self.pos = int(round((self.start + float(frame.time or 0.0)) * RATE))

    def add_into(self, mix: Any, start: int) -> None:
        """Add this track's samples overlapping ``[start, start + mix width)`` into ``mix``."""
        if self.frames is None:
            self.open()
        end = start + mix.shape[1]
        while self.buf is not None and self.pos < end:
            n = self.buf.shape[1]
            lo, hi = max(self.pos, start), min(self.pos + n, end)
            if hi > lo:
                mix[:, lo - start : hi - start] += self.buf[:, lo - self.pos : hi - self.pos]
            if self.pos + n <= end:
                self._next()
            else:
                break

    def close(self) -> None:
        if self.container is not None:
            self.container.close()
