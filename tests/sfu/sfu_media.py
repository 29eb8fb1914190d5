"""Synthetic media for the SFU tests (cheap to encode)."""

from __future__ import annotations

import asyncio
import fractions
import time

import av
from aiortc import MediaStreamTrack


class SmallVideo(MediaStreamTrack):
    """A small moving synthetic picture (cheap to encode), 30 fps."""

    kind = "video"

    def __init__(self, width: int = 160, height: int = 120) -> None:
        super().__init__()
        self.width, self.height = width, height
        self.n = 0
        self.t0: float | None = None

    async def recv(self) -> av.VideoFrame:
        if self.t0 is None:
            self.t0 = time.monotonic()
        delay = self.t0 + self.n / 30 - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        frame = av.VideoFrame(self.width, self.height, "yuv420p")
        for plane in frame.planes:
            plane.update(bytes([(self.n * 7) % 256]) * plane.buffer_size)
        frame.pts = self.n * 3000
        frame.time_base = fractions.Fraction(1, 90000)
        self.n += 1
        return frame
