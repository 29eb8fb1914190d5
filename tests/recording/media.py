"""RTP packets of a synthetic source, coded by aiortc's own encoders (real VP8, H.264, Opus)."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from fractions import Fraction

import av
import numpy as np
from aiortc.codecs.h264 import H264Encoder
from aiortc.codecs.opus import OpusEncoder
from aiortc.codecs.vpx import Vp8Encoder

_HDR = struct.Struct("!BBHII")


def rtp(pt: int, seq: int, ts: int, ssrc: int, payload: bytes, marker: bool = False) -> bytes:
    return (
        _HDR.pack(0x80, (0x80 if marker else 0) | pt, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc) + payload
    )


def video_packets(
    codec: str, frames: int, ssrc: int, *, width: int = 320, height: int = 240,
    fps: int = 30, key_every: int = 0, seq0: int = 0, ts0: int = 0, flash_at: int = -1,
) -> list[tuple[float, bytes]]:  # fmt: skip
    """(send time in seconds, RTP packet) of ``frames`` synthetic frames."""
    enc = Vp8Encoder() if codec == "VP8" else H264Encoder()
    out = []
    seq = seq0
    for i in range(frames):
        level = 255 if i == flash_at else (i * 3) % 200
        img = np.full((height, width, 3), level, dtype=np.uint8)
        img[: height // 4, : width // 4] = (i * 7) % 255  # something that moves
        frame = av.VideoFrame.from_ndarray(img, format="rgb24")
        frame.pts = i * 90000 // fps
        frame.time_base = Fraction(1, 90000)
        payloads, _ = enc.encode(frame, force_keyframe=i == 0 or (key_every and i % key_every == 0))
        ts = ts0 + i * 90000 // fps
        for j, payload in enumerate(payloads):
            out.append((i / fps, rtp(96, seq, ts, ssrc, payload, j == len(payloads) - 1)))
            seq += 1
    return out


def opus_packets(
    frames: int, ssrc: int, *, seq0: int = 0, ts0: int = 0, beep_at: int = -1
) -> list[tuple[float, bytes]]:
    """20 ms Opus packets of a quiet tone (a loud beep at frame ``beep_at``)."""
    enc = OpusEncoder()
    out = []
    for i in range(frames):
        t = np.arange(960) + i * 960
        amp = 20000 if i == beep_at else 300
        samples = (np.sin(2 * np.pi * 440 * t / 48000) * amp).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(
            np.repeat(samples, 2).reshape(1, -1), format="s16", layout="stereo"
        )
        frame.sample_rate = 48000
        frame.pts = i * 960
        frame.time_base = Fraction(1, 48000)
        payloads, _ = enc.encode(frame)
        for payload in payloads:
            out.append((i * 0.02, rtp(111, seq0 + i, ts0 + i * 960, ssrc, payload, True)))
    return out


@dataclass(eq=False)
class FakeSource:
    """What a recording reads of the forwarder's Source (identity-hashed, like it)."""

    pid: str
    track_id: str
    kind: str
    codec: str
    clock_rate: int
    ssrc: int
    screen: bool = False
    layer: int = 0
    layers: list[FakeSource] | None = None
    main_: FakeSource | None = None
    plis: list[float] = field(default_factory=list)

    @property
    def main(self) -> FakeSource:
        return self.main_ or self

    def request_keyframe(self, now: float) -> bool:
        self.plis.append(now)
        return True
