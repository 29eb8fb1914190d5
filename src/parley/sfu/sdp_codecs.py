"""Which codecs the SFU forwards, and how they appear in SDP (no aiortc internals here).

* **Publishing**: each published video is VP8 or H.264, whichever of the two comes first
  in the publisher's offer (a client that prefers H.264 lists it first with
  ``setCodecPreferences``); the answer accepts that one codec only.  H.264 must be
  packetization-mode 1, baseline or constrained baseline (what aiortc can match; every
  browser offers it).  Audio is Opus.
* **Subscribing**: the server offers every video slot with VP8 and H.264 (constrained
  baseline, packetization-mode 1, profile-level-id 42e01f), each with RTX, so any slot
  can carry a VP8 or an H.264 publisher; the forwarder rewrites each packet's payload
  type to the subscriber's for that codec.  A subscriber whose answer leaves H.264 out
  simply gets no slot for H.264 publishers.
"""

from __future__ import annotations

from collections.abc import Mapping

from aiortc import RTCRtpCodecCapability, RTCRtpSender
from aiortc.sdp import MediaDescription

__all__ = ["FORWARDED_CODECS", "SUBSCRIBE_H264_PROFILE", "slot_codecs", "subscribe_preferences"]

#: Codecs the forwarder handles, per kind (publish: the first of them in the offer's order).
FORWARDED_CODECS: dict[str, tuple[str, ...]] = {
    "video": ("video/VP8", "video/H264"),
    "audio": ("audio/opus",),
}
#: The one H.264 profile offered to subscribers (constrained baseline, level 3.1).
SUBSCRIBE_H264_PROFILE = "42e01f"


def _h264_forwardable(parameters: Mapping[str, object], profile: str | None = None) -> bool:
    if str(parameters.get("packetization-mode", "0")) != "1":
        return False
    return profile is None or str(parameters.get("profile-level-id", "")).lower() == profile


def subscribe_preferences(kind: str) -> list[RTCRtpCodecCapability]:
    """Codec preferences for a subscribe slot: the forwarded codecs (one H.264) + RTX."""
    wanted = FORWARDED_CODECS[kind]
    caps = RTCRtpSender.getCapabilities(kind).codecs
    prefs = [
        c
        for c in caps
        if c.mimeType in wanted
        and (c.mimeType != "video/H264" or _h264_forwardable(c.parameters, SUBSCRIBE_H264_PROFILE))
    ]
    prefs.sort(key=lambda c: wanted.index(c.mimeType))
    prefs += [c for c in caps if c.mimeType.endswith("/rtx")]
    return prefs


def slot_codecs(media: MediaDescription) -> tuple[tuple[str, int, int | None], ...]:
    """The forwarded codecs a subscriber accepted in one answer media section.

    ``(codec name, payload type, RTX payload type or None)``, the first payload type of
    each codec in the answer's order (H.264: packetization-mode 1 only).
    """
    forwarded = {m.split("/")[1].upper() for ms in FORWARDED_CODECS.values() for m in ms}
    rtx = {
        str(c.parameters.get("apt")): c.payloadType
        for c in media.rtp.codecs
        if c.mimeType.lower().endswith("/rtx")
    }
    out: list[tuple[str, int, int | None]] = []
    seen: set[str] = set()
    for c in media.rtp.codecs:
        name = c.mimeType.split("/")[1].upper()
        if name not in forwarded or name in seen or c.payloadType is None:
            continue
        if name == "H264" and not _h264_forwardable(c.parameters):
            continue
        seen.add(name)
        out.append((name, c.payloadType, rtx.get(str(c.payloadType))))
    return tuple(out)
