"""Parley's own WebSocket endpoint: handshake, frames and heartbeat on a bare transport.

Every connection to the listening port starts here.  If its first request is
a WebSocket upgrade to ``/ws`` that passes the server's checks, this module
answers ``101`` and serves the socket itself: an idle meeting participant then
costs one small protocol object, a frame reader and the session, instead of
aiohttp's request, response, reader, writer, task and two timers.  Anything
else (pages, the API, a refused or odd handshake) is handed, bytes and all, to
aiohttp's request handler, which serves it as usual; so does a WebSocket
upgrade sent later on a kept-alive HTTP connection (``app.py`` keeps an aiohttp
endpoint for those).

Liveness is one sweep for all sockets rather than timers per socket: a socket
silent for ``heartbeat`` seconds is pinged, and dropped when it stays silent
for ``heartbeat / 2`` more.  The sweep runs every ``heartbeat / 4`` seconds, so
a dead peer is found within ``1.75 × heartbeat`` (14 s at the default 8).  The
same sweep closes sockets that have not joined within ``join_timeout``, and
connections whose first request head has not arrived within ``http_timeout``
(later requests on a connection aiohttp serves are timed by aiohttp's
keep-alive timeout, which ``parley serve`` sets to the same ``http_timeout``).

Every connection, HTTP or WebSocket, counts against
``max_connections_per_address`` from the moment it is accepted: one over it is
answered ``429`` and closed at once, so one address cannot hold the process's
file descriptors.  Connections from ``--trusted-proxies`` are not counted here
(they carry many clients; the WebSocket handshake counts those by
``X-Forwarded-For``).
"""

from __future__ import annotations

import asyncio
import binascii
import hashlib
import logging
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from ..auth import throttle_key
from ..core.protocol import CloseCode
from ..core.ratelimit import TokenBucket
from . import frames
from .frames import FrameReader, close_frame, pong_frame

if TYPE_CHECKING:
    from .app import Server
    from .session import Session

log = logging.getLogger(__name__)

#: RFC 6455 §1.3: the suffix hashed with the client's key into Sec-WebSocket-Accept.
ACCEPT_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#: A request head longer than this is aiohttp's to refuse.
MAX_HEAD = 16 * 1024
#: How long a closing socket waits for the peer's close frame before dropping it.
CLOSE_TIMEOUT = 2.0

_NO_STATUS = 1005
#: The head of a masked pong with no payload (FIN + PONG, MASK + length 0), then its mask.
EMPTY_PONG = b"\x8a\x80"

_TOO_MANY = b"too many connections from your address\n"
#: At most one warning about refused connections per this many seconds.
REFUSED_LOG_EVERY = 10.0
#: Seconds a refused connection is kept (reading and dropping) for its peer to read the 429.
REFUSED_LINGER = 1.0
#: The answer to a connection over the per-address cap, written as soon as it is accepted.
REFUSED = (
    b"HTTP/1.1 429 Too Many Requests\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"X-Content-Type-Options: nosniff\r\nConnection: close\r\n"
    b"Content-Length: " + str(len(_TOO_MANY)).encode() + b"\r\n\r\n" + _TOO_MANY
)


#: SHA-1 set up once: a copy per handshake skips OpenSSL's look-up of the algorithm
#: that every ``hashlib.sha1()`` makes (OpenSSL 3).
_SHA1 = hashlib.sha1()


def accept_key(key: str) -> bytes:
    """The ``Sec-WebSocket-Accept`` value for a client's ``Sec-WebSocket-Key``."""
    digest = _SHA1.copy()
    digest.update(key.encode() + ACCEPT_GUID)
    return binascii.b2a_base64(digest.digest(), newline=False)


class Request:
    """The parts of an HTTP request head the WebSocket handshake looks at."""

    __slots__ = ("method", "target", "headers")

    def __init__(self, method: str, target: str, headers: dict[str, str]) -> None:
        self.method = method
        self.target = target
        #: Lower-case names; repeated headers joined with ", ".
        self.headers = headers

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]


def parse_head(head: bytes) -> Request | None:
    """An HTTP/1.1 request head (without the blank line), or None if it is not one."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or parts[2] != "HTTP/1.1":
        return None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            return None
        key = name.lower()
        value = value.strip()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return Request(parts[0], parts[1], headers)


def upgrade_key(request: Request) -> str | None:
    """The client's key if ``request`` is a well-formed WebSocket upgrade to ``/ws``."""
    h = request.headers
    if request.method != "GET" or request.path != "/ws":
        return None
    if h.get("upgrade", "").lower() != "websocket" or h.get("sec-websocket-version") != "13":
        return None
    connection = h.get("connection", "").lower()
    if connection != "upgrade" and "upgrade" not in [t.strip() for t in connection.split(",")]:
        return None
    key = h.get("sec-websocket-key", "")
    try:
        if len(binascii.a2b_base64(key, strict_mode=True)) != 16:
            return None
    except (binascii.Error, ValueError):
        return None
    return key


class FrontDoor:
    """The listening socket's protocol factory: Parley's WebSockets, else aiohttp."""

    def __init__(self, server: Server, http: Callable[[], asyncio.Protocol]) -> None:
        self.server = server
        self.http = http
        limits = server.settings.limits
        self.heartbeat = limits.heartbeat
        self.join_timeout = limits.join_timeout
        #: A socket must finish its handshake head within this (and in time to join).
        self.head_timeout = min(limits.http_timeout, limits.join_timeout)
        self.max_frame = limits.max_frame_bytes
        self.max_fragments = limits.max_fragments
        self.control_rate = limits.control_rate if limits.rate_limits else None
        self.max_connections = limits.max_connections_per_address
        #: Open connections (HTTP or WebSocket) by throttle key; trusted proxies uncounted.
        self.per_address: dict[str, int] = {}
        #: Connections refused over the cap since the last warning, and when that was.
        self.refused = 0
        self._refused_logged = 0.0
        # The 101 answer's fixed part; it names the node (which worker or cluster node
        # took the socket: for operators, and for tests of --workers).
        node = server.node if re.fullmatch(r"[A-Za-z0-9._-]{1,64}", server.node) else "-"
        self.switching = (
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"X-Parley-Node: " + node.encode() + b"\r\nSec-WebSocket-Accept: "
        )
        #: Sockets the sweep watches: in their handshake, open, or closing.
        self.sockets: set[WebSocket] = set()
        self._sweep: asyncio.TimerHandle | None = None

    def __call__(self) -> WebSocket:
        if self._sweep is None:
            self._schedule()
        return WebSocket(self)

    def close(self) -> None:
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None

    def admit(self, transport: asyncio.BaseTransport) -> tuple[bool, str | None]:
        """Count a new connection: (allowed, the key it is counted under, if any)."""
        peer = transport.get_extra_info("peername")
        ip = peer[0] if isinstance(peer, tuple) and peer else None
        if not isinstance(ip, str) or self.server.proxies.trusts(ip):
            return True, None
        key = throttle_key(ip)
        count = self.per_address.get(key, 0)
        if count >= self.max_connections:
            self.refused += 1
            now = time.monotonic()
            if now - self._refused_logged >= REFUSED_LOG_EVERY:  # a flood, not a line each
                log.warning(
                    "refused %d connection(s) over --max-connections-per-address %d"
                    " (latest from %s)",
                    self.refused,
                    self.max_connections,
                    key,
                )
                self.refused, self._refused_logged = 0, now
            return False, None
        self.per_address[key] = count + 1
        return True, key

    def release(self, key: str | None) -> None:
        """A connection counted under ``key`` is gone."""
        if key is None:
            return
        count = self.per_address.pop(key, 0) - 1
        if count > 0:
            self.per_address[key] = count

    def _schedule(self) -> None:
        interval = max(0.05, min(self.heartbeat, self.join_timeout, self.head_timeout) / 4)
        self._sweep = asyncio.get_running_loop().call_later(interval, self.sweep)

    def sweep(self) -> None:
        """Ping the silent, drop the dead, close the slow to join."""
        now = time.monotonic()
        ping_after, dead_after = self.heartbeat, self.heartbeat / 2
        for ws in list(self.sockets):
            if ws.state == OPEN:
                if ws.ping_at is not None:
                    if now - ws.ping_at >= dead_after:
                        ws.timed_out = True
                        ws.abort()
                        continue
                elif now - ws.last_in >= ping_after:
                    ws.ping_at = now
                    ws.transport_write(frames.PING_FRAME)
                session = ws.session
                if (
                    session is not None
                    and session.pid is None
                    and not session.busy
                    and now - ws.opened >= self.join_timeout
                ):
                    ws.state = CLOSING  # once: the close below takes it from here
                    self.server.spawn(session.close(CloseCode.POLICY, "join timeout"))
            elif ws.state == HANDSHAKE and now - ws.opened >= self.head_timeout:
                ws.abort()
        self._schedule()


HANDSHAKE, OPEN, CLOSING, CLOSED = 0, 1, 2, 3


class WebSocket(asyncio.Protocol):
    """One connection: its handshake, then its frames, for one :class:`Session`."""

    __slots__ = (
        "door",
        "transport",
        "reader",
        "session",
        "state",
        "buffer",
        "opened",
        "last_in",
        "ping_at",
        "timed_out",
        "close_sent",
        "address",
        "control",
        "_closed",
    )

    def __init__(self, door: FrontDoor) -> None:
        self.door = door
        self.transport: asyncio.Transport | None = None
        self.reader: FrameReader | None = None
        self.session: Session | None = None
        self.state = HANDSHAKE
        self.buffer = b""
        self.opened = self.last_in = time.monotonic()
        #: When the unanswered ping went out (None: none outstanding).
        self.ping_at: float | None = None
        #: Dropped by the heartbeat (the session announces a timeout, not a disconnect).
        self.timed_out = False
        #: Our close frame is out (nothing may follow it; after a violation, not even
        #: the transport's writes: it is half-closed).
        self.close_sent = False
        #: The key this connection is counted under in ``door.per_address`` (None: not).
        self.address: str | None = None
        #: Pings and pongs allowed from the peer (made on the first one).
        self.control: TokenBucket | None = None
        self._closed: asyncio.Future[None] | None = None

    # -- asyncio.Protocol ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        allowed, self.address = self.door.admit(transport)
        if not allowed:
            self.state = CLOSED  # what the peer sends is read and dropped
            transport = cast(asyncio.Transport, transport)
            transport.write(REFUSED)
            if transport.can_write_eof():
                # Half-close, not close: a close with the peer's request unread would
                # answer it with a reset, which may reach the peer before our 429 does.
                transport.write_eof()
                asyncio.get_running_loop().call_later(REFUSED_LINGER, transport.abort)
            else:  # TLS
                transport.close()
            return
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.door.sockets.add(self)

    def data_received(self, data: bytes) -> None:
        if self.state == HANDSHAKE:
            self._handshake(data)
            return
        self.last_in = time.monotonic()
        self.ping_at = None
        reader, session = self.reader, self.session
        if reader is None or session is None or self.state == CLOSED:
            return
        if len(data) == 6 and data.startswith(EMPTY_PONG) and reader.at_rest():
            # A lone empty pong, as every idle client answers the sweep's ping: nothing
            # to parse or unmask (thousands a second in a big room).
            if not self._control_allowed():
                self._too_many_controls(session)
            return
        for opcode, payload in reader.feed(data):
            if opcode == frames.TEXT:
                if self.state == OPEN:  # after our close frame, data is ignored
                    session.received(cast(str, payload))
            elif opcode == frames.PING or opcode == frames.PONG:
                if not self._control_allowed():
                    self._too_many_controls(session)
                    return
                if opcode == frames.PING and not self.close_sent:
                    # Through the hub's buffer limit: a pinger that never reads is dropped.
                    self.door.server.hub.write(session.conn, pong_frame(cast(bytes, payload)))
            elif opcode == frames.BINARY:
                self._fail(CloseCode.UNSUPPORTED_DATA, "binary frames are not supported")
            elif opcode == frames.CLOSE:
                code = cast(tuple[int, str], payload)[0]
                self._send_close(1000 if code == _NO_STATUS else code)  # answer in kind
                self.state = CLOSING
                self.transport.close()  # type: ignore[union-attr]
            else:  # frames.VIOLATION
                code, reason = cast(tuple[int, str], payload)
                log.info("closing %s: %s", session.address, reason)
                self._fail(code, reason)

    def connection_lost(self, exc: Exception | None) -> None:
        self.door.sockets.discard(self)
        self.door.release(self.address)
        self.address = None
        opened = self.session is not None
        self.state = CLOSED
        if self._closed is not None and not self._closed.done():
            self._closed.set_result(None)
        if opened:
            assert self.session is not None
            self.door.server.end_session(self.session)
        self.session = None  # the session points here; break the cycle now
        self.reader = None

    def pause_writing(self) -> None:  # the hub watches the buffer size itself
        pass

    def resume_writing(self) -> None:
        pass

    # -- the handshake ---------------------------------------------------------------

    def _handshake(self, data: bytes) -> None:
        data = self.buffer + data if self.buffer else data
        end = data.find(b"\r\n\r\n")
        if end < 0:
            if len(data) > MAX_HEAD:
                self._to_http(data)
            else:
                self.buffer = data
            return
        self.buffer = b""
        request = parse_head(data[:end])
        key = upgrade_key(request) if request is not None else None
        transport = self.transport
        assert transport is not None
        if request is None or key is None:
            self._to_http(data)
            return
        server = self.door.server
        peer = transport.get_extra_info("peername")
        verdict = server.check_socket(
            request.headers,
            scheme="https" if transport.get_extra_info("sslcontext") else "http",
            host=request.headers.get("host", ""),
            peer=peer[0] if isinstance(peer, tuple) else None,
        )
        if not isinstance(verdict, str):  # refused: aiohttp's endpoint says why
            self._to_http(data)
            return
        transport.write(self.door.switching + accept_key(key) + b"\r\n\r\n")
        self.state = OPEN
        self.last_in = time.monotonic()
        self.reader = FrameReader(self.door.max_frame, self.door.max_fragments)
        self.session = server.open_session(self, transport, verdict)
        if end + 4 < len(data):
            self.data_received(data[end + 4 :])

    def _to_http(self, data: bytes) -> None:
        """Not ours: aiohttp serves this connection from its first byte on."""
        self.door.sockets.discard(self)
        transport = self.transport
        assert transport is not None
        self.transport = None
        handler = self.door.http()
        # The connection stays counted for its address until it closes.
        transport.set_protocol(HttpConnection(self.door, handler, self.address))
        self.address = None
        handler.connection_made(transport)
        handler.data_received(data)

    def _too_many_controls(self, session: Session) -> None:
        log.info("closing %s: too many control frames", session.address)
        self._fail(CloseCode.POLICY, "too many control frames")
        self.reader = None  # what follows is not read, as after a violation

    def _control_allowed(self) -> bool:
        limit = self.door.control_rate
        if limit is None:
            return True
        now = time.monotonic()
        bucket = self.control
        if bucket is None:
            bucket = self.control = TokenBucket(limit, now)
        return bucket.allow(now)

    # -- what the session uses -----------------------------------------------------------

    def transport_write(self, data: bytes) -> None:
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.write(data)

    def pause_reading(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    async def close(self, code: int, reason: str) -> None:
        """Send a close frame, wait (a little) for the peer's, then drop the connection."""
        if self.state == CLOSED:
            return
        self._send_close(code, reason)
        if self._closed is None:  # the first close: later calls wait for the same end
            loop = asyncio.get_running_loop()
            self._closed = loop.create_future()
            loop.call_later(CLOSE_TIMEOUT, self.abort)
        await self._closed

    def _send_close(self, code: int, reason: str = "") -> None:
        """Our close frame, once (whoever closes first, and however)."""
        if not self.close_sent:
            self.close_sent = True
            self.state = CLOSING
            self.transport_write(close_frame(code, reason))

    def _fail(self, code: int, reason: str) -> None:
        """A protocol violation: a close frame, then our end of the connection.

        The reader ignores whatever follows, so the peer's close frame would go
        unseen: half-close (FIN after the close frame) and let the peer finish,
        rather than close outright and answer its last bytes with a reset.
        """
        if self.session is not None:
            self.session.conn.closed = True
        transport = self.transport
        if self.close_sent or transport is None or transport.is_closing():
            return
        self._send_close(code, reason)
        if transport.can_write_eof():
            transport.write_eof()
            asyncio.get_running_loop().call_later(CLOSE_TIMEOUT, self.abort)
        else:  # TLS: no half-close
            transport.close()

    def eof_received(self) -> bool:
        return False  # the peer is done: close our side too


class HttpConnection(asyncio.Protocol):
    """aiohttp's protocol for a connection, wrapped to uncount it when it closes."""

    __slots__ = ("door", "handler", "address")

    def __init__(self, door: FrontDoor, handler: asyncio.Protocol, address: str | None) -> None:
        self.door = door
        self.handler = handler
        self.address = address

    def data_received(self, data: bytes) -> None:
        self.handler.data_received(data)

    def eof_received(self) -> bool | None:
        return self.handler.eof_received()

    def pause_writing(self) -> None:
        self.handler.pause_writing()

    def resume_writing(self) -> None:
        self.handler.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self.door.release(self.address)
        self.address = None
        self.handler.connection_lost(exc)
