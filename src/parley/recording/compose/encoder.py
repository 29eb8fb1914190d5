"""The output file: frames encoded and muxed on a thread of their own.

The compositor hands over each finished picture and its audio (:meth:`Encoder.put`)
and goes on with the next one while this thread encodes (FFmpeg releases the GIL), so
drawing, decoding and encoding overlap on the cores there are.  At most a few frames
wait (bounded).  A failure while encoding (a full disk) comes back from ``put`` or
``finish``.

``.mp4``: H.264 (libx264, ``preset`` :data:`X264_PRESET`, CRF 23) + AAC.  ``.webm``:
VP8 (libvpx, real-time, speed 8) + Opus.
"""

from __future__ import annotations

import queue
import threading
from pathlib import Path
from typing import Any

import av

__all__ = ["X264_PRESET", "Encoder"]

X264_PRESET = "superfast"
WAITING = 4  # pictures waiting for the encoder, at most


class Encoder:
    """See the module docstring."""

    def __init__(self, output: Path, width: int, height: int, fps: int, rate: int) -> None:
        self.out = out = av.open(str(output), "w")
        try:
            if output.suffix.lower() == ".mp4":
                vs = out.add_stream("libx264", rate=fps,
                                    options={"preset": X264_PRESET, "crf": "23"})  # fmt: skip
                aus = out.add_stream("aac", rate=rate)
            else:
                vp8 = {"deadline": "realtime", "cpu-used": "8", "crf": "10", "b": "2M",
                       "lag-in-frames": "0"}  # fmt: skip
                vs = out.add_stream("libvpx", rate=fps, options=vp8)
                aus = out.add_stream("libopus", rate=rate)
            vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
            vs.thread_type = "AUTO"
            aus.layout = "stereo"
        except BaseException:
            out.close()
            raise
        self.video, self.audio = vs, aus
        self._queue: queue.Queue[tuple[Any, Any] | None] = queue.Queue(WAITING)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="encode", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        out, vs, aus = self.out, self.video, self.audio
        try:
            while True:
                item = self._queue.get()
                if item is None:
                    break
                vf, af = item
                for packet in vs.encode(vf):
                    out.mux(packet)
                for packet in aus.encode(af):
                    out.mux(packet)
            for stream in (vs, aus):
                for packet in stream.encode(None):
                    out.mux(packet)
        except BaseException as exc:  # noqa: BLE001 - handed to the compositor
            self._error = exc
            while True:  # unblock a compositor waiting to put
                try:
                    if self._queue.get_nowait() is None:
                        break
                except queue.Empty:
                    break

    def _check(self) -> None:
        if self._error is not None:
            raise self._error

    def put(self, video: Any, audio: Any) -> None:
        """Encode one picture and its audio (returns once the encoder has room)."""
        while True:
            self._check()
            try:
                self._queue.put((video, audio), timeout=0.2)
                return
            except queue.Full:
                if not self._thread.is_alive():
                    self._check()
                    raise RuntimeError("the encoder stopped") from None

    def finish(self) -> None:
        """Flush the encoders and close the file."""
        try:
            if self._thread.is_alive():
                self._queue.put(None)
                self._thread.join()
            self._check()
        finally:
            self.out.close()

    def abort(self) -> None:
        """Stop without finishing (an error elsewhere): the file is closed as it is."""
        if self._thread.is_alive():
            while True:
                try:
                    self._queue.get_nowait()
                except queue.Empty:
                    break
            self._queue.put(None)
            self._thread.join()
        self.out.close()
