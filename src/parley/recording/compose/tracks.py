"""The recording's track files, decoded for the compositor.

Video: one thread per file decodes ahead of the compositor (a few frames, bounded) and
scales each frame to the size its tile had last (the layout changes seldom), so the
compositor mostly finds its tiles ready; a frame that no output frame shows (a 30 fps
camera in a 25 fps file: one in six) is decoded (the next ones need it) but neither
scaled nor handed over.  FFmpeg's decoding and scaling release the
GIL: the tracks decode on every core while the compositor draws and the encoder
encodes.  Audio: decoded as the mix needs it (cheap), as float stereo at 48 kHz.
"""

from __future__ import annotations

import math
import queue
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
from av.video.reformatter import VideoReformatter

__all__ = ["RATE", "AudioTrack", "VideoTrack"]

RATE = 48000
AHEAD = 4  # decoded frames waiting per video track, at most


def planes_of(np: Any, frame: Any) -> tuple[Any, Any, Any]:
    """A YUV 4:2:0 frame's planes as arrays (views of the frame's memory)."""
    return tuple(
        np.frombuffer(pl, np.uint8).reshape(-1, pl.line_size)[: pl.height, : pl.width]
        for pl in frame.planes
    )


def scaled(np: Any, scaler: Any, frame: Any, w: int, h: int) -> tuple[Any, Any, Any]:
    """``frame`` at ``w`` x ``h`` in YUV 4:2:0, by ``scaler`` (a ``VideoReformatter``).

    One scaler per thread, kept: ``frame.reformat`` makes a new one per frame, i.e. a
    libswscale context set up per frame with a pool of threads of its own (``threads``
    0: one per core), 2.1 ms of CPU a 720p frame to a quarter of the picture against
    0.8 ms for a kept single-threaded one.  The tracks already scale on a thread each."""
    small = scaler.reformat(frame, width=w, height=h, format="yuv420p",
                            interpolation="FAST_BILINEAR", threads=1)  # fmt: skip
    return planes_of(np, small)


def shown(t: float, after: float, fps: float) -> bool:
    """Whether a frame from ``t`` until ``after`` (the next frame's time) is on screen in
    an output of ``fps`` frames a second, whose frame ``i`` shows the last frame whose
    time is ``<= i / fps`` (always, for ``fps`` 0)."""
    if fps <= 0:
        return True
    i = math.ceil(t * fps)  # the first output frame at or after t, as the compositor sees it
    if (i - 1) / fps >= t:
        i -= 1
    elif i / fps < t:
        i += 1
    return i / fps < after


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
    #: the output's frame rate: a frame no output frame shows is neither scaled nor
    #: queued (a 30 fps camera in a 25 fps file: one in six); 0: every frame
    fps: float = 0
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
    #: the decoding thread's scaler, and the compositor's (a new layout): see scaled()
    _scaler: Any = field(default_factory=VideoReformatter)
    _scaler_here: Any = field(default_factory=VideoReformatter)

    def _run(self) -> None:
        held: _Decoded | None = None  # the last frame decoded, until the next one's time
        try:
            with av.open(str(self.path)) as container:
                stream = container.streams.video[0]
                stream.thread_type = "AUTO"
                try:
                    for frame in container.decode(stream):
                        item = _Decoded(self.start + float(frame.time or 0.0), frame.width,
                                        frame.height, frame=frame)  # fmt: skip
                        if held is not None and shown(held.t, item.t, self.fps):
                            if not self._emit(held):
                                return
                        held = item
                except av.FFmpegError:
                    pass  # a damaged end of file: what decoded is shown
                if held is not None and not self._emit(held):
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the compositor
            self._put_last(exc)
            return
        self._put_last(None)

    def _emit(self, item: _Decoded) -> bool:
        """Scale ``item`` to the tile and hand it to the compositor; False: closed."""
        want = self.want
        if want is not None:
            item.size, item.planes = want, scaled(self.np, self._scaler, item.frame, *want)
        q, stop = self._queue, self._stop
        while not stop.is_set():
            try:
                q.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

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
            cur.size, cur.planes = (w, h), scaled(self.np, self._scaler_here, cur.frame, w, h)
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
