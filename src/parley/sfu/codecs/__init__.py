"""Codec payload inspection: what the forwarder needs to know inside RTP payloads.

One module per codec (:mod:`.vp8`, :mod:`.h264`), each with ``is_keyframe(packet)``
(does this RTP packet start a key frame: where a slot may start or switch layers) and
``keyframe_size(packet)`` (the picture size a key frame announces: how big each
simulcast layer is).  Plain functions on plaintext RTP packets (``bytes``), no state;
RTP header parsing itself is :mod:`parley.sfu.rtp`'s.  Which codecs are negotiated,
and how, is :mod:`parley.sfu.sdp_codecs`'.
"""

from __future__ import annotations

from collections.abc import Callable

from . import h264, vp8

__all__ = ["KeyframeFn", "SizeFn", "keyframe_functions"]

KeyframeFn = Callable[[bytes | bytearray], bool]
SizeFn = Callable[[bytes | bytearray], tuple[int, int] | None]

_KEYFRAME_FUNCTIONS: dict[str, tuple[KeyframeFn, SizeFn]] = {
    "VP8": (vp8.is_keyframe, vp8.keyframe_size),
    "H264": (h264.is_keyframe, h264.keyframe_size),
}


def keyframe_functions(codec: str) -> tuple[KeyframeFn, SizeFn] | None:
    """(is-key-frame-start, key-frame size) for a video codec name, None if unknown."""
    return _KEYFRAME_FUNCTIONS.get(codec.upper())
