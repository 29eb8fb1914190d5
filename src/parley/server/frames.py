"""WebSocket frames (RFC 6455 §5), sans-I/O: built once per fan-out, parsed per client.

Server-to-client frames are never masked (§5.1), so one frame's bytes serve
every recipient: the fan-out writes the same ``bytes`` object to each
transport instead of re-framing per client.  Client-to-server frames are
always masked; :class:`FrameReader` unmasks them, reassembles fragmented
messages, and reports a violation as the close code it calls for.
"""

from __future__ import annotations

import struct
from typing import Final

_SHORT = struct.Struct("!BB")
_MEDIUM = struct.Struct("!BBH")
_LONG = struct.Struct("!BBQ")
_U16 = struct.Struct("!H")
_U64 = struct.Struct("!Q")
_FIN_TEXT = 0x81

CONTINUATION: Final = 0x0
TEXT: Final = 0x1
BINARY: Final = 0x2
CLOSE: Final = 0x8
PING: Final = 0x9
PONG: Final = 0xA
#: Not an opcode: the event :class:`FrameReader` reports for a protocol violation.
VIOLATION: Final = -1

#: A ping with no payload, and the pong that answers one with none.
PING_FRAME: Final = b"\x89\x00"

#: What a reader reports: ``(opcode, payload)`` where the payload is ``str`` for TEXT,
#: ``bytes`` for BINARY/PING/PONG, ``(code, reason)`` for CLOSE and VIOLATION.
Event = tuple[int, object]


def _frame(first: int, payload: bytes) -> bytes:
    n = len(payload)
    if n < 126:
        return _SHORT.pack(first, n) + payload
    if n < 65536:
        return _MEDIUM.pack(first, 126, n) + payload
    return _LONG.pack(first, 127, n) + payload


def text_frame(payload: bytes) -> bytes:
    """One unfragmented, unmasked text frame carrying ``payload`` (UTF-8 JSON)."""
    return _frame(_FIN_TEXT, payload)


def frame_payload(frame: bytes) -> bytes:
    """The payload of a frame built here (unmasked, unfragmented): its header skipped."""
    if len(frame) < 2:
        return b""
    n = frame[1] & 0x7F
    return frame[4:] if n == 126 else frame[10:] if n == 127 else frame[2:]


def close_frame(code: int, reason: str = "") -> bytes:
    """A close frame; the reason is cut to fit a control frame (125 bytes)."""
    data = reason.encode()[:123]
    while True:  # never cut a character in half
        try:
            data.decode()
            break
        except UnicodeDecodeError:
            data = data[:-1]
    return _frame(0x80 | CLOSE, _U16.pack(code) + data)


def pong_frame(payload: bytes) -> bytes:
    return _frame(0x80 | PONG, payload)


def unmask(mask: bytes, data: bytes) -> bytes:
    """XOR ``data`` with the 4-byte ``mask`` repeated (one big-integer XOR, in C)."""
    n = len(data)
    if n == 0:
        return data
    key = (mask * ((n >> 2) + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(key, "little")).to_bytes(n, "little")


class FrameReader:
    """Client frames from a byte stream: feed bytes, get complete messages.

    A message of more than ``max_size`` bytes (one frame or the sum of its
    fragments) is refused from its header, before its payload is buffered, so a
    connection never holds more than one frame of ``max_size`` plus a header.
    A message of more than ``max_fragments`` frames is refused (1008): empty
    fragments add no bytes, so only a count bounds them.  Work is linear in the
    bytes fed however they are cut: the message's length is kept as it grows and
    the unparsed tail is one ``bytearray`` appended to, never re-joined.
    After a CLOSE or a VIOLATION the reader ignores everything that follows.
    """

    __slots__ = ("max_size", "max_fragments", "_buffer", "_parts", "_size", "_opcode", "_done")

    def __init__(self, max_size: int, max_fragments: int = 128) -> None:
        self.max_size = max_size
        self.max_fragments = max_fragments
        self._buffer = bytearray()
        #: The fragments of a message in progress (None outside one), and their bytes.
        self._parts: list[bytes] | None = None
        self._size = 0
        self._opcode = 0
        self._done = False

    def at_rest(self) -> bool:
        """Nothing buffered and still reading: the next bytes start a frame."""
        return not self._buffer and not self._done

    def feed(self, chunk: bytes) -> list[Event]:
        if self._done:
            return []
        buffer = self._buffer
        data: bytes | bytearray = chunk
        if buffer:
            buffer += chunk
            data = buffer
        events: list[Event] = []
        pos, end = 0, len(data)
        while end - pos >= 2:
            b0, b1 = data[pos], data[pos + 1]
            opcode, length, head = b0 & 0x0F, b1 & 0x7F, pos + 2
            if b0 & 0x70:
                return self._violation(events, 1002, "reserved bits set")
            if not b1 & 0x80:
                return self._violation(events, 1002, "client frames must be masked")
            if length == 126:
                if end - pos < 4:
                    break
                length, head = _U16.unpack_from(data, head)[0], head + 2
            elif length == 127:
                if end - pos < 10:
                    break
                length, head = _U64.unpack_from(data, head)[0], head + 8
            if opcode >= CLOSE:
                if length > 125 or not b0 & 0x80:
                    return self._violation(events, 1002, "bad control frame")
            elif opcode > BINARY:
                return self._violation(events, 1002, f"unknown opcode {opcode}")
            elif self._size + length > self.max_size:
                return self._violation(events, 1009, f"message over {self.max_size} bytes")
            stop = head + 4 + length
            if stop > end:
                break
            payload = unmask(bytes(data[head : head + 4]), bytes(data[head + 4 : stop]))
            pos = stop
            if opcode >= CLOSE:
                if opcode == CLOSE:
                    return self._close(events, payload)
                events.append((opcode, payload))
                continue
            parts = self._parts
            if opcode == CONTINUATION:
                if parts is None:
                    return self._violation(events, 1002, "continuation outside a message")
                if len(parts) >= self.max_fragments:
                    return self._violation(
                        events, 1008, f"message in more than {self.max_fragments} fragments"
                    )
                parts.append(payload)
                self._size += length
                if not b0 & 0x80:
                    continue
                payload, opcode = b"".join(parts), self._opcode
                self._parts, self._size = None, 0
            elif parts is not None:
                return self._violation(events, 1002, "expected a continuation frame")
            elif not b0 & 0x80:
                self._parts, self._size, self._opcode = [payload], length, opcode
                continue
            if opcode == TEXT:
                try:
                    events.append((TEXT, payload.decode()))
                except UnicodeDecodeError:
                    return self._violation(events, 1007, "text frame is not UTF-8")
            else:
                events.append((BINARY, payload))
        if data is buffer:
            del buffer[:pos]  # what is left was fed since the last complete frame
        elif pos < end:
            buffer += data[pos:]
        return events

    def _close(self, events: list[Event], payload: bytes) -> list[Event]:
        self._done = True
        if len(payload) == 0:
            events.append((CLOSE, (1005, "")))
        elif len(payload) == 1:
            events.append((VIOLATION, (1002, "close frame of one byte")))
        else:
            try:
                reason = payload[2:].decode()
            except UnicodeDecodeError:
                events.append((VIOLATION, (1007, "close reason is not UTF-8")))
            else:
                events.append((CLOSE, (_U16.unpack_from(payload)[0], reason)))
        return events

    def _violation(self, events: list[Event], code: int, reason: str) -> list[Event]:
        self._done = True
        self._buffer = bytearray()
        self._parts = None
        events.append((VIOLATION, (code, reason)))
        return events
