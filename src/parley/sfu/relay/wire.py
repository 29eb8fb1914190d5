"""The relay's datagrams: framing, the per-datagram tag, replay protection.  No I/O.

One UDP datagram carries one RTP packet, one RTCP compound or one track description:

```
offset  size
0       2     magic b"PR"
2       1     version (1)
3       1     kind: 1 RTP, 2 RTCP towards the edge (sender reports),
              3 describe (a publisher's tracks), 4 RTCP towards the origin (feedback)
4       8     epoch: the sending process's start time (ms); a restarted node's is higher
12      8     counter: per sending process, +1 each datagram (replay window)
20      1+n   sending node id (1..64 bytes)
.       1+n   room (1..200 bytes)
.       1+n   publisher's participant id (0..64 bytes)
.       m     payload (at most MAX_PAYLOAD bytes)
end-16  16    tag: HMAC-SHA256(key, everything before it), first 16 bytes
```

``key`` is derived from the cluster's relay secret (:func:`relay_key`).  A datagram
with a bad magic, version, length or tag raises :class:`Refused`; so does a replay
(:class:`ReplayWindow`: per sending node, the newest epoch and a 64-datagram window
behind the highest counter, as in SRTP).
"""

from __future__ import annotations

import hmac
import struct
from dataclasses import dataclass

import msgspec

__all__ = [
    "DESCRIBE",
    "FEEDBACK",
    "MAX_DATAGRAM",
    "MAX_PAYLOAD",
    "RTCP",
    "RTP",
    "Datagram",
    "Refused",
    "ReplayWindow",
    "Track",
    "decode_tracks",
    "encode_tracks",
    "open_datagram",
    "relay_key",
    "seal",
]

MAGIC = b"PR"
VERSION = 1
RTP, RTCP, DESCRIBE, FEEDBACK = 1, 2, 3, 4
KINDS = frozenset((RTP, RTCP, DESCRIBE, FEEDBACK))
TAG = 16
MAX_NODE = 64
MAX_ROOM = 200
MAX_PID = 64
#: An RTP packet from a browser is at most ~1200 bytes; a describe of MAX_TRACKS tracks
#: well under this.
MAX_PAYLOAD = 1500
MAX_DATAGRAM = 4 + 16 + 3 + MAX_NODE + MAX_ROOM + MAX_PID + MAX_PAYLOAD + TAG
MAX_TRACKS = 8
_HEAD = struct.Struct("!2sBBQQ")


class Refused(Exception):
    """A datagram the relay does not accept; ``reason`` is a short fixed word (logged and
    counted per reason, never with the datagram's content)."""

    def __init__(self, reason: str, node: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.node = node


@dataclass(frozen=True, slots=True)
class Datagram:
    kind: int
    epoch: int
    counter: int
    node: str
    room: str
    pid: str
    payload: bytes


def relay_key(secret: str) -> bytes:
    """The tag key: the secret itself is never used directly (another purpose may share it)."""
    return hmac.digest(secret.encode(), b"parley media relay v1", "sha256")


def _field(value: str, limit: int, what: str, *, empty: bool = False) -> bytes:
    raw = value.encode()
    if len(raw) > limit or (not raw and not empty):
        raise ValueError(f"relay {what} must be 1..{limit} bytes")
    return bytes((len(raw),)) + raw


def seal(
    key: bytes,
    kind: int,
    epoch: int,
    counter: int,
    node: str,
    room: str,
    pid: str,
    payload: bytes | bytearray,
) -> bytes:
    """One datagram, tagged."""
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"relay payload over {MAX_PAYLOAD} bytes")
    body = b"".join(
        (
            _HEAD.pack(MAGIC, VERSION, kind, epoch, counter),
            _field(node, MAX_NODE, "node id"),
            _field(room, MAX_ROOM, "room"),
            _field(pid, MAX_PID, "participant id", empty=True),
            payload,
        )
    )
    return body + hmac.digest(key, body, "sha256")[:TAG]


def _node_of(data: bytes) -> str:
    """The node a datagram claims to come from (for the log), or ""."""
    if len(data) <= _HEAD.size:
        return ""
    n = data[_HEAD.size]
    return data[_HEAD.size + 1 : _HEAD.size + 1 + min(n, MAX_NODE)].decode("utf-8", "replace")


def open_datagram(key: bytes, data: bytes) -> Datagram:
    """Check and split a datagram (its tag first, then its fields)."""
    if len(data) < _HEAD.size + 3 + TAG or len(data) > MAX_DATAGRAM:
        raise Refused("length")
    magic, version, kind, epoch, counter = _HEAD.unpack_from(data)
    if magic != MAGIC or version != VERSION:
        raise Refused("magic")
    body, tag = data[:-TAG], data[-TAG:]
    if not hmac.compare_digest(hmac.digest(key, body, "sha256")[:TAG], tag):
        raise Refused("tag", _node_of(data))
    if kind not in KINDS:
        raise Refused("kind", _node_of(data))
    off = _HEAD.size
    fields: list[str] = []
    for limit in (MAX_NODE, MAX_ROOM, MAX_PID):
        if off >= len(body):
            raise Refused("length")
        n = body[off]
        if n > limit or off + 1 + n > len(body):
            raise Refused("length")
        try:
            fields.append(body[off + 1 : off + 1 + n].decode())
        except UnicodeDecodeError:
            raise Refused("encoding") from None
        off += 1 + n
    node, room, pid = fields
    if not node or not room:
        raise Refused("length")
    return Datagram(kind, epoch, counter, node, room, pid, body[off:])


class ReplayWindow:
    """Per sending node: its newest epoch, highest counter and a 64-bit window.

    A datagram of an older epoch than the newest seen (a replay of a previous process's
    traffic), or a counter seen before / more than 64 behind, is a replay.  Memory: one
    entry per node that passed the tag check (cluster members only)."""

    WIDTH = 64

    def __init__(self) -> None:
        self._state: dict[str, tuple[int, int, int]] = {}  # node -> (epoch, highest, bitmap)

    def accept(self, node: str, epoch: int, counter: int) -> bool:
        state = self._state.get(node)
        if state is None or epoch > state[0]:
            self._state[node] = (epoch, counter, 1)
            return True
        known_epoch, highest, bitmap = state
        if epoch < known_epoch:
            return False
        if counter > highest:
            shift = counter - highest
            bitmap = ((bitmap << shift) | 1) & ((1 << self.WIDTH) - 1) if shift < 64 else 1
            self._state[node] = (epoch, counter, bitmap)
            return True
        behind = highest - counter
        if behind >= self.WIDTH or bitmap & (1 << behind):
            return False
        self._state[node] = (epoch, highest, bitmap | (1 << behind))
        return True

    def forget(self, node: str) -> None:
        self._state.pop(node, None)


class Track(msgspec.Struct, array_like=True, forbid_unknown_fields=True):
    """One published track as the origin forwards it (RTX already unwrapped there).

    ``ssrcs``: the stream's SSRC, or a simulcast track's known layer SSRCs (0: not seen
    yet), lowest layer first, with their ``rids``."""

    track_id: str
    kind: str
    codec: str
    payload_type: int
    clock_rate: int
    audio_level_ext: int
    screen: bool
    ssrcs: list[int]
    rids: list[str]


_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(list[Track]).decode


def encode_tracks(tracks: list[Track]) -> bytes:
    return _encode(tracks[:MAX_TRACKS])


def decode_tracks(payload: bytes) -> list[Track]:
    """A describe's tracks, checked: bounded, known kinds, SSRCs and rids in range."""
    try:
        tracks = _decode(payload)
    except msgspec.DecodeError:
        raise Refused("describe") from None
    if len(tracks) > MAX_TRACKS:
        raise Refused("describe")
    for t in tracks:
        if (
            t.kind not in ("audio", "video")
            or not 0 < len(t.track_id) <= 32
            or not 0 < len(t.codec) <= 16
            or not 0 <= t.payload_type < 128
            or not 0 < t.clock_rate <= 200_000
            or not 0 <= t.audio_level_ext <= 14
            or not 0 < len(t.ssrcs) <= 3
            or not all(0 <= s < 2**32 for s in t.ssrcs)
            or (t.rids and len(t.rids) != len(t.ssrcs))
            or any(not 0 < len(r) <= 16 for r in t.rids)
        ):
            raise Refused("describe")
    return tracks
