"""The listening socket: Parley's own WebSocket endpoint and aiohttp on one port."""

from __future__ import annotations

import asyncio
import ssl

from aiohttp import web

from .app import SERVER_KEY
from .websocket import FrontDoor


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
        if self._server.sockets:
            self._bound_port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        await super().stop()
        if self._door is not None:
            self._door.close()
