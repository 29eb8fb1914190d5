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
with a bad magic, length or tag raises :class:`Refused`, as does one of another version
("version", with the node it claims: a cluster upgraded part way); so does a replay
(:class:`ReplayWindow`: per sending node, the newest epoch and a 64-datagram window
behind the highest counter, as in SRTP).

The tag is computed by :class:`Key`: HMAC-SHA256 from two SHA-256 states keyed once
(RFC 2104's inner and outer pads), copied per datagram.  The same tag as
``hmac.digest``, at a fraction of its cost per call: with OpenSSL 3 each one-shot HMAC
looks its algorithm up again, which costs more than hashing a 1,100-byte packet.
A receiving node opens datagrams with an :class:`Opener` (the same checks, one call, a
plain tuple, each stream's node/room/participant fields decoded once).
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from typing import NamedTuple

import msgspec

__all__ = [
    "DESCRIBE",
    "FEEDBACK",
    "MAX_DATAGRAM",
    "MAX_PAYLOAD",
    "RTCP",
    "RTP",
    "Datagram",
    "Key",
    "Opened",
    "Opener",
    "Refused",
    "ReplayWindow",
    "Track",
    "decode_tracks",
    "encode_tracks",
    "fields",
    "open_datagram",
    "relay_key",
    "seal",
    "seal_fields",
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


class Datagram(NamedTuple):
    kind: int
    epoch: int
    counter: int
    node: str
    room: str
    pid: str
    payload: bytes


_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))


class Key:
    """The tag key, ready to use: HMAC-SHA256's inner and outer hash states after the
    padded key (RFC 2104), so a tag costs two state copies and the hashing itself."""

    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes) -> None:
        if len(key) > 64:
            key = hashlib.sha256(key).digest()
        padded = key.ljust(64, b"\0")
        self._inner = hashlib.sha256(padded.translate(_IPAD))
        self._outer = hashlib.sha256(padded.translate(_OPAD))

    def tag(self, *parts: bytes | bytearray | memoryview) -> bytes:
        """The first ``TAG`` bytes of HMAC-SHA256(key, the parts one after the other)."""
        inner = self._inner.copy()
        for part in parts:
            inner.update(part)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()[:TAG]

    def tag2(self, head: bytes, payload: bytes | bytearray) -> bytes:
        """:meth:`tag` of two parts (the sealing hot path: no argument tuple, no loop)."""
        inner = self._inner.copy()
        inner.update(head)
        inner.update(payload)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()[:TAG]


def relay_key(secret: str) -> bytes:
    """The tag key: the secret itself is never used directly (another purpose may share it)."""
    return hmac.digest(secret.encode(), b"parley media relay v1", "sha256")


def _field(value: str, limit: int, what: str, *, empty: bool = False) -> bytes:
    raw = value.encode()
    if len(raw) > limit or (not raw and not empty):
        raise ValueError(f"relay {what} must be 1..{limit} bytes")
    return bytes((len(raw),)) + raw


def fields(node: str, room: str, pid: str) -> bytes:
    """The node, room and participant fields, encoded (a sender keeps them per stream)."""
    return b"".join(
        (
            _field(node, MAX_NODE, "node id"),
            _field(room, MAX_ROOM, "room"),
            _field(pid, MAX_PID, "participant id", empty=True),
        )
    )


def seal_fields(
    key: Key, kind: int, epoch: int, counter: int, encoded: bytes, payload: bytes | bytearray
) -> bytes:
    """One datagram, tagged, with ``encoded`` from :func:`fields` (the hot path)."""
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"relay payload over {MAX_PAYLOAD} bytes")
    head = _HEAD.pack(MAGIC, VERSION, kind, epoch, counter) + encoded
    return b"".join((head, payload, key.tag2(head, payload)))


def _key(key: bytes | Key) -> Key:
    return key if isinstance(key, Key) else Key(key)


def seal(
    key: bytes | Key,
    kind: int,
    epoch: int,
    counter: int,
    node: str,
    room: str,
    pid: str,
    payload: bytes | bytearray,
) -> bytes:
    """One datagram, tagged."""
    return seal_fields(_key(key), kind, epoch, counter, fields(node, room, pid), payload)


def _node_of(data: bytes) -> str:
    """The node a datagram claims to come from (for the log), or ""."""
    if len(data) <= _HEAD.size:
        return ""
    n = data[_HEAD.size]
    return data[_HEAD.size + 1 : _HEAD.size + 1 + min(n, MAX_NODE)].decode("utf-8", "replace")


_MIN = _HEAD.size + 3 + TAG
#: Distinct (node, room, participant) fields an :class:`Opener` keeps decoded.
MAX_ROUTES = 4096

#: What :meth:`Opener.open` returns: kind, epoch, counter, (node, room, pid), payload.
Opened = tuple[int, int, int, tuple[str, str, str], bytes]


class Opener:
    """Checks and splits datagrams for a receiving node (:func:`open_datagram`'s checks).

    The node, room and participant fields of a stream are the same bytes in each of its
    datagrams: they are decoded and checked once and kept by those bytes (only for
    datagrams whose tag verified, so only holders of the key add any; at most
    ``MAX_ROUTES``, forgotten all at once beyond).  The result is a plain tuple."""

    __slots__ = ("_inner", "_outer", "_routes")

    def __init__(self, key: bytes | Key) -> None:
        k = _key(key)
        self._inner, self._outer = k._inner, k._outer
        self._routes: dict[bytes, tuple[str, str, str]] = {}

    def open(self, data: bytes) -> Opened:
        size = len(data)
        if size < _MIN or size > MAX_DATAGRAM:
            raise Refused("length")
        magic, version, kind, epoch, counter = _HEAD.unpack_from(data)
        if magic != MAGIC:
            raise Refused("magic")
        if version != VERSION:  # a node of another relay version: named in the log
            raise Refused("version", _node_of(data))
        end = size - TAG
        inner = self._inner.copy()
        inner.update(data[:end])
        outer = self._outer.copy()
        outer.update(inner.digest())
        if not hmac.compare_digest(outer.digest()[:TAG], data[end:]):
            raise Refused("tag", _node_of(data))
        if kind not in KINDS:
            raise Refused("kind", _node_of(data))
        # three length-prefixed fields, each within the body (unrolled: the hot path)
        o1 = _HEAD.size
        o2 = o1 + 1 + data[o1]
        if data[o1] > MAX_NODE or o2 >= end:
            raise Refused("length")
        o3 = o2 + 1 + data[o2]
        if data[o2] > MAX_ROOM or o3 >= end:
            raise Refused("length")
        off = o3 + 1 + data[o3]
        if data[o3] > MAX_PID or off > end:
            raise Refused("length")
        raw = data[o1:off]
        route = self._routes.get(raw)
        if route is None:
            try:
                route = (data[o1 + 1 : o2].decode(), data[o2 + 1 : o3].decode(),
                         data[o3 + 1 : off].decode())  # fmt: skip
            except UnicodeDecodeError:
                raise Refused("encoding") from None
            if not route[0] or not route[1]:
                raise Refused("length")
            if len(self._routes) >= MAX_ROUTES:
                self._routes.clear()
            self._routes[raw] = route
        return kind, epoch, counter, route, data[off:end]


def open_datagram(key: bytes | Key, data: bytes) -> Datagram:
    """Check and split a datagram (its tag first, then its fields)."""
    kind, epoch, counter, (node, room, pid), payload = Opener(key).open(data)
    return Datagram(kind, epoch, counter, node, room, pid, payload)


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
