"""The server object and the aiohttp application around it."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from aiohttp import web

from .. import __version__
from .. import protocol as p
from ..broker import Broker, InProcessBroker
from ..config import Settings
from ..protocol import CloseCode
from ..rooms import Deliver, Rooms
from ..store import Store, open_store
from ..tokens import ResumeTokens, load_secret
from . import api, pages
from .frames import text_frame
from .hub import Connection, Hub
from .session import Session

log = logging.getLogger(__name__)

SERVER_KEY: web.AppKey[Server] = web.AppKey("server")


class Server:
    """Everything one Parley process runs: core, hub, broker and store."""

    def __init__(
        self, settings: Settings, *, store: Store | None = None, broker: Broker | None = None
    ) -> None:
        self.settings = settings
        self.rooms = Rooms(settings.limits)
        self.hub = Hub(settings.limits.max_outgoing_buffer)
        self.broker: Broker = broker or InProcessBroker()
        self.store: Store = store or open_store(settings.effective_database_url)
        self.tokens = ResumeTokens(load_secret(settings.data_dir))
        self.sessions: dict[Connection, Session] = {}
        self.stopping = False
        self.started = time.monotonic()
        self.messages_stored = 0
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- lifecycle ----------------------------------------------------------------

    async def start(self) -> None:
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        await self.store.start()
        await self.broker.start(self.hub.deliver)

    async def shutdown(self) -> None:
        """Tell every client the server is going away, with pending writes flushed."""
        self.stopping = True
        closing = [
            s.close(CloseCode.GOING_AWAY, "server shutting down")
            for s in list(self.sessions.values())
        ]
        if closing:
            await asyncio.wait_for(asyncio.gather(*closing, return_exceptions=True), timeout=5)

    async def stop(self) -> None:
        await self.broker.close()
        await self.store.close()

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- fan-out --------------------------------------------------------------------

    @staticmethod
    def frame(payload: bytes) -> bytes:
        return text_frame(payload)

    def publish(self, deliveries: list[Deliver]) -> None:
        """Serialise each message once and hand the frame to the broker."""
        for d in deliveries:
            self.broker.publish(d.room, text_frame(p.encode(d.message)), d.to, d.exclude)

    # -- participants whose socket changed --------------------------------------------

    def replace(self, pid: str) -> None:
        """A resume took over ``pid``: retire its old socket without announcing a leave."""
        old = self.hub.by_pid.get(pid)
        if old is None:
            return
        session = self.sessions.get(old)
        self.hub.detach(old)
        if session is not None:
            session.replaced = True
            self.spawn(session.close(CloseCode.POLICY, "replaced by a newer connection"))

    def forget(self, conn: Connection) -> None:
        self.hub.detach(conn)

    def expire(self, pid: str) -> None:
        self.publish(self.rooms.expire(pid))

    # -- the WebSocket endpoint ---------------------------------------------------------

    async def websocket(self, request: web.Request) -> web.StreamResponse:
        limits = self.settings.limits
        if self.stopping:
            raise web.HTTPServiceUnavailable(text="server shutting down")
        ws = web.WebSocketResponse(
            heartbeat=limits.heartbeat,
            max_msg_size=limits.max_frame_bytes,
            compress=False,
        )
        await ws.prepare(request)
        transport = request.transport
        assert transport is not None
        conn = Connection(ws, transport, request.remote or "?")
        session = Session(self, ws, conn)
        conn.on_overflow = lambda c: self.spawn(session.close(CloseCode.POLICY, "too slow"))
        self.sessions[conn] = session
        self.hub.connections.add(conn)
        try:
            await session.run()
        finally:
            del self.sessions[conn]
            session.on_close()
        return ws

    def health(self) -> dict[str, Any]:
        return {
            "status": "ok" if not self.stopping else "stopping",
            "version": __version__,
            "uptime": round(time.monotonic() - self.started, 3),
        }


def make_app(server: Server) -> web.Application:
    app = web.Application(middlewares=[pages.security_headers])
    app[SERVER_KEY] = server
    app.router.add_get("/ws", server.websocket)
    api.add_routes(app, server)
    pages.add_routes(app, Path(__file__).parent.parent / "web")

    async def on_startup(_app: web.Application) -> None:
        await server.start()

    async def on_shutdown(_app: web.Application) -> None:
        await server.shutdown()

    async def on_cleanup(_app: web.Application) -> None:
        await server.stop()

    app.on_startup.append(on_startup)
    app.on_shutdown.append(on_shutdown)
    app.on_cleanup.append(on_cleanup)
    return app
