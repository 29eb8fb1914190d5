"""The WebSocket frame reader (sans-I/O): what a client's bytes turn into."""

from __future__ import annotations

import hashlib
import struct

import pytest

from parley.server import frames
from parley.server.frames import FrameReader, close_frame, text_frame, unmask


def masked(opcode: int, payload: bytes, *, fin: bool = True, mask: bytes | None = None) -> bytes:
    """A client frame, masked as RFC 6455 requires.  The default mask is derived from the
    frame (not random): parametrized test ids hold frames, and the two pytest-xdist
    workers must collect the same ids."""
    if mask is None:
        mask = hashlib.blake2s(bytes([opcode, fin]) + payload, digest_size=4).digest()
    n = len(payload)
    first = (0x80 if fin else 0) | opcode
    if n < 126:
        head = struct.pack("!BB", first, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", first, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", first, 0x80 | 127, n)
    return head + mask + unmask(mask, payload)


def test_text_frames_of_every_length_form() -> None:
    reader = FrameReader(100_000)
    for size in (0, 1, 125, 126, 65535, 65536, 70_000):
        text = "é" * (size // 2) + "x" * (size % 2)
        assert reader.feed(masked(frames.TEXT, text.encode())) == [(frames.TEXT, text)]


def test_bytes_split_anywhere_give_the_same_messages() -> None:
    stream = b"".join(masked(frames.TEXT, f"message {i}".encode() * 20) for i in range(5))
    for step in (1, 2, 3, 7, 64, 1000):
        reader = FrameReader(10_000)
        got = []
        for i in range(0, len(stream), step):
            got += reader.feed(stream[i : i + step])
        assert [p for _, p in got] == [f"message {i}" * 20 for i in range(5)], step


def test_fragmented_message_with_a_ping_in_between() -> None:
    reader = FrameReader(1000)
    data = (
        masked(frames.TEXT, b'{"type":', fin=False)
        + masked(frames.PING, b"hi")
        + masked(frames.CONTINUATION, b'"ping"', fin=False)
        + masked(frames.CONTINUATION, b"}")
    )
    assert reader.feed(data) == [(frames.PING, b"hi"), (frames.TEXT, '{"type":"ping"}')]


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (text_frame(b"unmasked"), 1002),
        (bytes([0xC1, 0x81]) + b"abcd" + b"x", 1002),  # RSV1 set
        (masked(0x3, b"x"), 1002),  # reserved opcode
        (masked(frames.PING, b"x" * 126), 1002),  # control frame too long
        (masked(frames.PING, b"x", fin=False), 1002),  # fragmented control frame
        (masked(frames.CONTINUATION, b"x"), 1002),  # nothing to continue
        (masked(frames.TEXT, b"a", fin=False) + masked(frames.TEXT, b"b"), 1002),
        (masked(frames.TEXT, b"\xff\xfe"), 1007),  # not UTF-8
        (masked(frames.CLOSE, b"\x03"), 1002),  # close payload of one byte
    ],
)
def test_violations_name_their_close_code(data: bytes, code: int) -> None:
    events = FrameReader(1000).feed(data)
    assert events[-1][0] == frames.VIOLATION
    assert events[-1][1][0] == code  # type: ignore[index]


def test_too_big_is_refused_from_the_header_before_the_payload_arrives() -> None:
    reader = FrameReader(1000)
    frame = masked(frames.TEXT, b"x" * 1001)
    # Only the header and mask: the reader already knows.
    events = reader.feed(frame[:8])
    assert events == [(frames.VIOLATION, (1009, "message over 1000 bytes"))]
    assert reader.feed(frame[8:]) == []  # and ignores the rest


def test_the_limit_counts_the_whole_fragmented_message() -> None:
    reader = FrameReader(10)
    assert reader.feed(masked(frames.TEXT, b"x" * 10)) == [(frames.TEXT, "x" * 10)]
    data = masked(frames.TEXT, b"x" * 6, fin=False) + masked(frames.CONTINUATION, b"x" * 5)
    assert reader.feed(data)[-1][1] == (1009, "message over 10 bytes")


def test_messages_before_a_violation_are_kept() -> None:
    reader = FrameReader(100)
    events = reader.feed(masked(frames.TEXT, b"first") + text_frame(b"bad"))
    assert events[0] == (frames.TEXT, "first")
    assert events[1][0] == frames.VIOLATION


def test_close_frames() -> None:
    assert FrameReader(10).feed(masked(frames.CLOSE, b"")) == [(frames.CLOSE, (1005, ""))]
    payload = struct.pack("!H", 1000) + b"bye"
    reader = FrameReader(10)
    assert reader.feed(masked(frames.CLOSE, payload) + masked(frames.TEXT, b"late")) == [
        (frames.CLOSE, (1000, "bye"))
    ]
    assert reader.feed(masked(frames.TEXT, b"later")) == []


def test_close_frame_reason_is_cut_whole_characters() -> None:
    frame = close_frame(1008, "é" * 100)
    assert len(frame) <= 127  # a control frame's payload is at most 125 bytes
    assert frame[4:].decode() == "é" * 61
