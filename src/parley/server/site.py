"""The listening socket: Parley's own WebSocket endpoint and aiohttp on one port."""

from __future__ import annotations

import asyncio
import socket
import ssl
from typing import Protocol

from aiohttp import web

from .app import SERVER_KEY
from .websocket import FrontDoor

#: Seconds the kernel holds a new connection that has sent nothing yet before handing it
#: over anyway (then the head timeout runs): see :func:`defer_accept`.
DEFER_ACCEPT_S = 1


class _Listening(Protocol):
    """A listening socket as the event loop lends it (``socket.socket``, asyncio's
    ``TransportSocket``, uvloop's ``PseudoSocket``)."""

    @property
    def family(self) -> int: ...

    def setsockopt(self, level: int, option: int, value: int, /) -> None: ...


def defer_accept(sock: _Listening) -> bool:
    """Have the kernel hand a connection to ``accept`` only once its first bytes are in
    (Linux ``TCP_DEFER_ACCEPT``, nginx's ``listen ... deferred``).

    Every client of this port speaks first (an HTTP request, a TLS hello), so the
    connection and its request then arrive in one wake-up of the event loop instead of
    two: about 0.8 fewer context switches a join while a big room fills
    (docs/benchmarks.md 13.5).  A connection that never speaks waits in the kernel, not
    in the server, for ``DEFER_ACCEPT_S``.  False where the option does not exist.
    """
    option = getattr(socket, "TCP_DEFER_ACCEPT", None)
    if option is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return False
    sock.setsockopt(socket.IPPROTO_TCP, option, DEFER_ACCEPT_S)
    return True


class ParleySite(web.TCPSite):
    """``web.TCPSite`` whose connections meet :class:`FrontDoor` first.

    The door keeps the WebSocket upgrades it can serve and hands every other
    connection to the runner's aiohttp request handler.
    """

    def __init__(
        self,
        runner: web.AppRunner,
        host: str,
        port: int,
        *,
        ssl_context: ssl.SSLContext | None = None,
        reuse_address: bool | None = None,
        reuse_port: bool | None = None,
    ) -> None:
        super().__init__(
            runner,
            host,
            port,
            ssl_context=ssl_context,
            reuse_address=reuse_address,
            reuse_port=reuse_port,
        )
        self._door: FrontDoor | None = None

    async def start(self) -> None:
        await web.BaseSite.start(self)
        runner = self._runner
        assert isinstance(runner, web.AppRunner) and runner.server is not None
        self._door = FrontDoor(runner.app[SERVER_KEY], runner.server)
        self._server = await asyncio.get_running_loop().create_server(
            self._door,
            self._host,
            self._port,
            ssl=self._ssl_context,
            backlog=self._backlog,
            reuse_address=self._reuse_address,
            reuse_port=self._reuse_port,
        )
        for sock in self._server.sockets:
            defer_accept(sock)
        if self._server.sockets:
            self._bound_port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        await super().stop()
        if self._door is not None:
            self._door.close()
