"""The WebSocket endpoint on aiohttp, for upgrades Parley's own endpoint does not see.

:mod:`parley.server.websocket` serves a WebSocket whose upgrade is the first
request on its connection, which is how browsers open them.  A proxy that keeps
upstream connections alive (nginx with ``keepalive``) may send the upgrade
after other requests on the same connection; aiohttp owns that connection by
then, so aiohttp's ``WebSocketResponse`` serves it, with its own heartbeat.
Both drive the same :class:`~parley.server.session.Session`, under the same
limits: aiohttp's reader refuses a message over ``max_frame_bytes`` (1009) and
reassembles fragments in linear time; pings are answered here rather than by
aiohttp (the response is made with ``autoping=False``), so that pings and pongs
count against ``control_rate`` as on Parley's endpoint.  A pong waits for the
transport to drain (aiohttp's writer), so a pinger that never reads stops
being read instead of filling memory.
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiohttp import WSMsgType, web

from ..core.protocol import CloseCode
from ..core.ratelimit import TokenBucket
from .session import Session

log = logging.getLogger(__name__)


class AiohttpSocket:
    """aiohttp's WebSocket as a session's :class:`~parley.server.session.Socket`."""

    __slots__ = ("ws",)

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws

    @property
    def timed_out(self) -> bool:
        return isinstance(self.ws.exception(), asyncio.TimeoutError)

    async def close(self, code: int, reason: str) -> None:
        await self.ws.close(code=code, message=reason.encode())

    def pause_reading(self) -> None:  # the loop below reads one message at a time
        pass

    def resume_reading(self) -> None:
        pass


async def serve(session: Session, ws: web.WebSocketResponse, join_timeout: float) -> None:
    """Read and handle messages in order until the socket closes."""
    join_by = time.monotonic() + join_timeout
    limits = session.server.settings.limits
    control_rate = limits.control_rate if limits.rate_limits else None
    control: TokenBucket | None = None
    while True:
        if session.pid is None:
            # Until a join succeeds, every wait counts against the join timeout.
            try:
                msg = await ws.receive(timeout=max(0.001, join_by - time.monotonic()))
            except TimeoutError:
                await session.close(CloseCode.POLICY, "join timeout")
                return
        else:
            msg = await ws.receive()
        if msg.type == WSMsgType.TEXT:
            await session.on_message(msg.data)
            if session.conn.closed:
                break
        elif msg.type in (WSMsgType.PING, WSMsgType.PONG):
            if control_rate is not None:
                now = time.monotonic()
                if control is None:
                    control = TokenBucket(control_rate, now)
                if not control.allow(now):
                    log.info("closing %s: too many control frames", session.address)
                    await session.close(CloseCode.POLICY, "too many control frames")
                    break
            if msg.type == WSMsgType.PING:
                try:
                    await ws.pong(msg.data)
                except ConnectionError:  # gone while its pong waited to drain
                    break
        elif msg.type == WSMsgType.BINARY:
            await session.close(CloseCode.UNSUPPORTED_DATA, "binary frames are not supported")
            break
        elif msg.type == WSMsgType.ERROR:
            # aiohttp has already closed the socket (1009 for a frame over the limit).
            log.info("connection %s error: %s", session.address, ws.exception())
            break
        else:  # CLOSE, CLOSING, CLOSED
            break
