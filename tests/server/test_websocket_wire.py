"""Parley's WebSocket endpoint byte by byte: handshake, frames, pings, and the aiohttp fallback.

A raw TCP client speaks RFC 6455 by hand, so these tests see exactly what a
browser would: the 101 answer, the close codes, the pings.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import struct
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from parley.server import frames
from tests.server.harness import get_json
from tests.server.test_frames import masked
from tests.support.parley_process import ParleyProcess
from tests.support.ws_client import Clients

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class Raw:
    """One TCP connection speaking WebSocket frames by hand."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, server: ParleyProcess) -> Raw:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        return cls(reader, writer)

    async def request(self, head: str) -> tuple[int, dict[str, str], bytes]:
        """Send an HTTP request head; read the response head (and a short body)."""
        self.writer.write(head.encode())
        raw = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), 10)
        lines = raw.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        body = b""
        if "content-length" in headers:
            body = await self.reader.readexactly(int(headers["content-length"]))
        return int(lines[0].split()[1]), headers, body

    async def upgrade(self, server: ParleyProcess, key: str | None = None, **extra: str) -> int:
        key = key or base64.b64encode(os.urandom(16)).decode()
        fields = {
            "Host": f"127.0.0.1:{server.port}",
            "Upgrade": "websocket",
            "Connection": "Upgrade",
            "Sec-WebSocket-Key": key,
            "Sec-WebSocket-Version": "13",
            **extra,
        }
        head = "GET /ws HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields.items())
        status, headers, _ = await self.request(head + "\r\n")
        if status == 101:
            want = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()
            assert headers["sec-websocket-accept"] == want
        return status

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    def send_json(self, obj: Any) -> None:
        self.send(masked(frames.TEXT, json.dumps(obj).encode()))

    async def frame(self, within: float = 10) -> tuple[int, bytes]:
        """The next server frame (servers never mask)."""
        head = await asyncio.wait_for(self.reader.readexactly(2), within)
        assert head[1] & 0x80 == 0, "server frames are unmasked"
        n = head[1] & 0x7F
        if n == 126:
            n = struct.unpack("!H", await self.reader.readexactly(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", await self.reader.readexactly(8))[0]
        return head[0] & 0x0F, await self.reader.readexactly(n)

    async def message(self, type_: str, within: float = 10) -> dict[str, Any]:
        while True:
            opcode, payload = await self.frame(within)
            assert opcode != frames.CLOSE, payload
            if opcode == frames.TEXT:
                msg: dict[str, Any] = json.loads(payload)
                if msg["type"] == type_:
                    return msg

    async def closed_with(self, within: float = 10) -> tuple[int, str]:
        """Skip to the server's close frame; then the server ends the connection."""
        while True:
            opcode, payload = await self.frame(within)
            if opcode == frames.CLOSE:
                code = struct.unpack("!H", payload[:2])[0]
                self.send(masked(frames.CLOSE, payload[:2]))
                assert await asyncio.wait_for(self.reader.read(), within) == b""
                return code, payload[2:].decode()

    def close(self) -> None:
        self.writer.close()


@pytest.fixture
async def raw() -> AsyncIterator[Callable[[ParleyProcess], Any]]:
    opened: list[Raw] = []

    async def open_(server: ParleyProcess) -> Raw:
        r = await Raw.open(server)
        opened.append(r)
        return r

    yield open_
    for r in opened:
        r.close()


def join(room: str, name: str) -> dict[str, Any]:
    return {"type": "join", "room": room, "name": name, "v": 1}


async def test_handshake_fragments_ping_and_close(
    server: ParleyProcess, raw: Any, room: str
) -> None:
    ws = await raw(server)
    assert await ws.upgrade(server) == 101
    # A join sent in three fragments, a ping in between: both are understood.
    body = json.dumps(join(room, "Ada")).encode()
    ws.send(masked(frames.TEXT, body[:5], fin=False))
    ws.send(masked(frames.PING, b"are you there"))
    ws.send(masked(frames.CONTINUATION, body[5:12], fin=False))
    ws.send(masked(frames.CONTINUATION, body[12:]))
    assert await ws.frame() == (frames.PONG, b"are you there")
    welcome = await ws.message("welcome")
    assert welcome["participants"][0]["name"] == "Ada"
    ws.send_json({"type": "chat", "text": "über 😀"})
    assert (await ws.message("chat"))["message"]["text"] == "über 😀"
    # The client closes: the server answers with the same code and ends the connection.
    ws.send(masked(frames.CLOSE, struct.pack("!H", 1000) + b"bye"))
    opcode, payload = await ws.frame()
    assert (opcode, payload[:2]) == (frames.CLOSE, struct.pack("!H", 1000))
    assert await asyncio.wait_for(ws.reader.read(), 10) == b""


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (bytes([0x81, 0x02]) + b"{}", 1002),  # unmasked
        (masked(frames.BINARY, b"\x00\x01"), 1003),
        (masked(frames.TEXT, b'{"type":"\xff"}'), 1007),
        (masked(frames.TEXT, b"x" * (64 * 1024 + 1)), 1009),  # the default 64 KiB limit
        (masked(0x5, b""), 1002),  # reserved opcode
    ],
)
async def test_bad_frames_close_only_that_socket(
    server: ParleyProcess, clients: Clients, raw: Any, room: str, frame: bytes, code: int
) -> None:
    bob = await clients.join(server, room, "Bob")
    ws = await raw(server)
    assert await ws.upgrade(server) == 101
    ws.send_json(join(room, "Mallory"))
    await ws.message("welcome")
    ws.send(frame)
    assert (await ws.closed_with())[0] == code
    # Bob's meeting goes on: his chat still reaches him (and Mallory's socket is gone).
    ack = await bob.chat("still here")
    assert (await bob.expect("chat"))["message"]["id"] == ack["id"]


async def test_upgrade_on_a_kept_alive_connection(
    server: ParleyProcess, raw: Any, room: str
) -> None:
    """A proxy may reuse an upstream connection for an upgrade: aiohttp serves it then."""
    ws = await raw(server)
    status, _, body = await ws.request(
        f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n\r\n"
    )
    assert status == 200 and json.loads(body)["status"] == "ok"
    assert await ws.upgrade(server) == 101
    ws.send_json(join(room, "Ada"))
    assert (await ws.message("welcome"))["participants"][0]["name"] == "Ada"
    ws.send_json({"type": "chat", "text": "via keep-alive"})
    assert (await ws.message("chat"))["message"]["text"] == "via keep-alive"


@pytest.mark.parametrize(
    "extra",
    [
        {"Sec-WebSocket-Version": "99"},
        {"Sec-WebSocket-Key": "too-short"},
        {"Upgrade": "h2c"},
    ],
)
async def test_malformed_handshakes_get_an_http_error(
    server: ParleyProcess, raw: Any, extra: dict[str, str]
) -> None:
    ws = await raw(server)
    key = extra.pop("Sec-WebSocket-Key", None)
    status = await ws.upgrade(server, key=key, **extra)
    assert 400 <= status < 500


async def test_silent_socket_is_pinged_and_kept_while_it_answers(
    quick_server: ParleyProcess, clients: Clients, raw: Any, room: str
) -> None:
    """--heartbeat 1: pings after 1 s of silence; answered, the socket lives on."""
    bob = await clients.join(quick_server, room, "Bob")
    ws = await raw(quick_server)
    assert await ws.upgrade(quick_server) == 101
    ws.send_json(join(room, "Ada"))
    await ws.message("welcome")
    for _ in range(3):  # three pings in a row, each answered
        while True:
            opcode, payload = await ws.frame(within=5)
            if opcode == frames.PING:
                ws.send(masked(frames.PONG, payload))
                break
    await bob.roundtrip()
    assert not [m for m in bob.of_type("participant-left")]
    # Now it stops answering: the others hear it timed out.
    left = await bob.expect("participant-left", within=10)
    assert left["reason"] == "timeout"


async def test_unfinished_handshake_is_dropped(
    parley_server: Callable[..., ParleyProcess], raw: Any
) -> None:
    srv = parley_server("--join-timeout", "1")
    ws = await raw(srv)
    ws.send(b"GET /ws HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
    assert await asyncio.wait_for(ws.reader.read(), 10) == b""


async def test_a_socket_gone_during_its_join_leaves_no_ghost(
    quick_server: ParleyProcess, clients: Clients, raw: Any, room: str
) -> None:
    """The join is still checking the password when the socket drops: once it has been
    admitted, the participant is held for a resume and then announced as gone (grace 2 s)."""
    host = await clients.join(quick_server, room, "Host")
    await host.send({"type": "room-settings", "password": "swordfish"})
    await host.expect("room-updated")
    ws = await raw(quick_server)
    assert await ws.upgrade(quick_server) == 101
    ws.send_json({**join(room, "Ghost"), "password": "swordfish"})
    await ws.writer.drain()
    ws.writer.transport.abort()  # gone while the server checks the password (Argon2)
    # The join goes through (the password was right), then the socket's end catches up.
    joined = await host.expect("participant-joined")
    left = await host.expect("participant-left", within=10)
    assert left == {"type": "participant-left", "id": joined["participant"]["id"],
                    "reason": "disconnected"}  # fmt: skip
    assert host.welcome is not None  # a protected room: its names are for members only
    _, info = await get_json(quick_server, f"/api/v1/rooms/{room}", host.welcome["resume"])
    assert [x["name"] for x in info["participants"]] == ["Host"]


async def test_leave_and_a_bad_frame_in_one_packet(
    server: ParleyProcess, clients: Clients, raw: Any, room: str
) -> None:
    """The leave is still being handled when the bad frame closes the socket: the close
    the leave asks for must not write to the half-closed connection (fuzz found this)."""
    bob = await clients.join(server, room, "Bob")
    ws = await raw(server)
    assert await ws.upgrade(server) == 101
    ws.send_json(join(room, "Mallory"))
    await ws.message("welcome")
    ws.send(masked(frames.TEXT, b'{"type":"leave"}') + bytes([0x81, 0x02]) + b"{}")
    assert (await ws.closed_with())[0] == 1002
    left = await bob.expect("participant-left")
    assert left["reason"] == "left"
    await bob.roundtrip()
    assert "Traceback" not in server.log()
