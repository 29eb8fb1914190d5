"""One hostile connection against a real ``parley serve``: it is closed, the others go on.

Each attack of issue 11 over a raw socket: empty continuation frames, a ping
flood (control frames, and pongs nobody reads), protocol pings nobody reads,
header lines trickled on a kept-alive HTTP connection, and more connections
from one address than ``--max-connections-per-address``.  What is asserted is
what people notice: the attacker's connection ends (with the close code the
docs name), and another participant's chat or ``/healthz`` is still answered.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from parley.server import frames
from tests.server.harness import TIMEOUT
from tests.server.test_frames import masked
from tests.server.test_websocket_wire import Raw, join
from tests.support.parley_process import ParleyProcess
from tests.support.ws_client import Clients

#: The default --max-fragments.
MAX_FRAGMENTS = 128
#: The default control-frame allowance (pings and pongs per 10 s).
CONTROL_BURST = 30


async def still_served(bob: Any) -> None:
    """Bob's chat goes through: the server was not frozen, nor is the room."""
    ack = await bob.chat("still here")
    assert (await bob.expect("chat"))["message"]["id"] == ack["id"]


async def raw_from(server: ParleyProcess, source: str = "127.0.0.1", rcvbuf: int = 0) -> Raw:
    """A raw connection from ``source`` (another loopback address is another client);
    ``rcvbuf`` shrinks its receive buffer, so a peer that does not read stops absorbing."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.bind((source, 0))
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", server.port))
    reader, writer = await asyncio.open_connection(sock=sock)
    return Raw(reader, writer)


async def count_until_closed(ws: Raw, opcode: int) -> tuple[int, int | None]:
    """Read everything: frames of ``opcode`` seen, then the close code (None: no close
    frame before the connection ended, e.g. aborted after an overflow)."""
    seen = 0
    try:
        while True:
            op, payload = await ws.frame(within=TIMEOUT)
            if op == opcode:
                seen += 1
            elif op == frames.CLOSE:
                return seen, struct.unpack("!H", payload[:2])[0]
    except (asyncio.IncompleteReadError, ConnectionResetError):
        return seen, None


@pytest.fixture
async def raw() -> AsyncIterator[Callable[[ParleyProcess], Awaitable[Raw]]]:
    opened: list[Raw] = []

    async def open_(server: ParleyProcess) -> Raw:
        conn = await raw_from(server)
        opened.append(conn)
        return conn

    yield open_
    for conn in opened:
        conn.close()


# -- item 4: fragments ------------------------------------------------------------------


async def test_empty_continuation_frames_close_the_socket(
    server: ParleyProcess, clients: Clients, raw: Callable[[ParleyProcess], Any], room: str
) -> None:
    """An unfinished text frame and 50,000 empty continuations (300 KB), not joined: the
    socket is closed at the fragment limit and nobody else notices."""
    bob = await clients.join(server, room, "Bob")
    ws = await raw(server)
    assert await ws.upgrade(server) == 101
    empty = masked(frames.CONTINUATION, b"", fin=False)
    ws.send(masked(frames.TEXT, b"{", fin=False) + empty * 50_000)
    code, reason = await ws.closed_with()
    assert code == 1008 and f"more than {MAX_FRAGMENTS} fragments" in reason
    await still_served(bob)


@pytest.mark.parametrize(
    ("fragments", "accepted"), [(MAX_FRAGMENTS, True), (MAX_FRAGMENTS + 1, False)]
)
async def test_fragment_limit_is_exact(
    server: ParleyProcess,
    raw: Callable[[ParleyProcess], Any],
    room: str,
    fragments: int,
    accepted: bool,
) -> None:
    """A join in exactly --max-fragments frames is a join; one frame more closes (1008)."""
    ws = await raw(server)
    assert await ws.upgrade(server) == 101
    body = json.dumps(join(room, "Ada")).encode()
    empty = masked(frames.CONTINUATION, b"", fin=False)
    ws.send(
        masked(frames.TEXT, body, fin=False)
        + empty * (fragments - 2)
        + masked(frames.CONTINUATION, b"")
    )
    if accepted:
        assert (await ws.message("welcome"))["participants"][0]["name"] == "Ada"
    else:
        assert (await ws.closed_with())[0] == 1008


# -- item 5: ping flood -----------------------------------------------------------------


@pytest.mark.parametrize("kept_alive", [False, True], ids=["parley-endpoint", "aiohttp-endpoint"])
async def test_ping_flood_is_closed(
    server: ParleyProcess, clients: Clients, raw: Callable[[ParleyProcess], Any], room: str,
    kept_alive: bool,
) -> None:  # fmt: skip
    """1,000 pings, not joined, nothing read: answered up to the control-frame allowance,
    then closed with 1008; on both WebSocket endpoints (the aiohttp one serves upgrades
    sent after a request on a kept-alive connection)."""
    bob = await clients.join(server, room, "Bob")
    ws = await raw(server)
    if kept_alive:
        status, _, _ = await ws.request(
            f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n\r\n"
        )
        assert status == 200
    assert await ws.upgrade(server) == 101
    ws.send(masked(frames.PING, b"p" * 125) * 1000)
    pongs, code = await count_until_closed(ws, frames.PONG)
    assert code == 1008
    assert pongs <= CONTROL_BURST + 1  # (a token may come back while the burst is read)
    await still_served(bob)


async def test_lone_empty_pongs_count_against_the_control_allowance(
    server: ParleyProcess, clients: Clients, raw: Callable[[ParleyProcess], Any], room: str
) -> None:
    """Unsolicited empty pongs, one per write (how an idle client answers the heartbeat's
    ping, which the server reads on a fast path): past the allowance, closed with 1008."""
    bob = await clients.join(server, room, "Bob")
    ws = await raw(server)
    assert await ws.upgrade(server) == 101
    ws.send_json(join(room, "Ada"))
    await ws.message("welcome")
    try:
        for _ in range(CONTROL_BURST + 20):
            ws.send(masked(frames.PONG, b""))
            await ws.writer.drain()
    except ConnectionError:
        pass  # closed before the last ones went out
    _, code = await count_until_closed(ws, frames.PONG)
    assert code == 1008
    await still_served(bob)


async def flood(ws: Raw, frame: bytes, count: int) -> None:
    """Send ``frame`` ``count`` times, reading nothing (until the server drops us)."""
    try:
        for _ in range(count // 1000):
            ws.send(frame * 1000)
            await ws.writer.drain()
    except ConnectionError:
        pass  # dropped while we were still sending: what the test is looking for


async def test_pongs_nobody_reads_count_against_the_outgoing_buffer(
    parley_server: Callable[..., ParleyProcess], clients: Clients, room: str
) -> None:
    """No rate limits, a 64 KiB outgoing buffer: a client pinging 100,000 times (12 MB of
    pongs) without reading is dropped as too slow instead of queueing them all."""
    srv = parley_server("--no-rate-limits", "--max-outgoing-buffer", "65536")
    bob = await clients.join(srv, room, "Bob")
    ws = await raw_from(srv, rcvbuf=16 * 1024)
    try:
        assert await ws.upgrade(srv) == 101
        sent = 100_000
        await flood(ws, masked(frames.PING, b"p" * 125), sent)
        await still_served(bob)  # all pings have been read by now
        pongs, _ = await count_until_closed(ws, frames.PONG)
        assert pongs < sent
        assert "over 65536 bytes queued" in srv.log()
    finally:
        ws.close()


async def test_protocol_pongs_nobody_reads_count_against_the_outgoing_buffer(
    parley_server: Callable[..., ParleyProcess], clients: Clients, room: str
) -> None:
    """The same with ``{"type":"ping"}`` messages before joining (answered at once, not
    through the room's outbox): the client is dropped, not given 10 MB of pongs."""
    srv = parley_server("--no-rate-limits", "--max-outgoing-buffer", "65536")
    bob = await clients.join(srv, room, "Bob")
    ws = await raw_from(srv, rcvbuf=16 * 1024)
    try:
        assert await ws.upgrade(srv) == 101
        sent = 100_000
        ping = masked(frames.TEXT, json.dumps({"type": "ping", "ref": "r" * 64}).encode())
        await flood(ws, ping, sent)
        await still_served(bob)
        pongs, _ = await count_until_closed(ws, frames.TEXT)
        assert pongs < sent
        assert "over 65536 bytes queued" in srv.log()
    finally:
        ws.close()


# -- item 6: HTTP connections -----------------------------------------------------------


async def healthz(server: ParleyProcess, source: str = "127.0.0.1") -> Raw:
    """A kept-alive connection that has had one complete request answered."""
    conn = await raw_from(server, source)
    status, _, body = await conn.request(
        f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n\r\n"
    )
    assert status == 200 and json.loads(body)["status"] == "ok"
    return conn


async def test_header_lines_trickled_after_a_request_are_cut_off(
    parley_server: Callable[..., ParleyProcess],
) -> None:
    """Slowloris on a kept-alive connection: one request, then a header line now and
    then, never the blank line.  --http-timeout 1: the server closes it."""
    srv = parley_server("--http-timeout", "1")
    conn = await healthz(srv)

    async def trickle() -> None:
        conn.send(b"GET /healthz HTTP/1.1\r\n")
        for i in range(100):
            await asyncio.sleep(0.2)
            conn.send(f"X-Slow-{i}: x\r\n".encode())

    task = asyncio.create_task(trickle())
    try:
        assert await asyncio.wait_for(conn.reader.read(), TIMEOUT) == b""
    finally:
        task.cancel()
        conn.close()
    # An idle kept-alive connection is closed the same way, and the server is fine.
    idle = await healthz(srv)
    assert await asyncio.wait_for(idle.reader.read(), TIMEOUT) == b""
    idle.close()
    (await healthz(srv)).close()


async def test_connections_over_the_per_address_cap_are_refused(
    parley_server: Callable[..., ParleyProcess], clients: Clients, room: str
) -> None:
    """--max-connections-per-address 4 counts HTTP connections too: with four kept-alive
    connections open, a fifth from that address (HTTP or WebSocket) is refused with 429,
    while another address gets /healthz and a meeting; closing one frees a place."""
    srv = parley_server("--max-connections-per-address", "4")
    held = [await healthz(srv) for _ in range(4)]
    try:
        for attempt in ("GET /healthz", "GET /ws"):
            fifth = await raw_from(srv)
            try:
                fifth.send(f"{attempt} HTTP/1.1\r\nHost: 127.0.0.1:{srv.port}\r\n\r\n".encode())
                answer = await asyncio.wait_for(fifth.reader.read(), TIMEOUT)
            except ConnectionResetError:
                answer = b""  # closed before our request arrived: refused all the same
            finally:
                fifth.close()
            assert answer == b"" or answer.startswith(b"HTTP/1.1 429 "), answer[:200]
        assert "over --max-connections-per-address 4" in srv.log()  # the operator is told
        # Another address is another client: its page loads and its meeting works.
        other = await healthz(srv, "127.0.0.2")
        other.close()
        ws = await raw_from(srv, "127.0.0.2")
        assert await ws.upgrade(srv) == 101
        ws.send_json(join(room, "Ada"))
        await ws.message("welcome")
        ws.send_json({"type": "chat", "text": "hello"})
        assert (await ws.message("chat"))["message"]["text"] == "hello"
        ws.close()
        # One of the four goes: the address may connect again.
        held.pop().close()
        for _ in range(50):
            try:
                held.append(await healthz(srv))
                break
            except (AssertionError, ConnectionError, asyncio.IncompleteReadError):
                await asyncio.sleep(0.1)  # the server has not seen the close yet
        assert len(held) == 4
    finally:
        for conn in held:
            conn.close()
