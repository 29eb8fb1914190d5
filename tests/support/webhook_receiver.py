"""A real HTTP webhook receiver for the tests: an aiohttp server on 127.0.0.1.

It keeps every request (raw body and headers), checks each signature like a receiver
should, and can be told to fail: answer an error status, or not answer at all for a
while (a hanging receiver).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from parley.webhooks import verify
from tests.support.processes import free_port


@dataclass
class Received:
    body: bytes
    headers: dict[str, str]
    status: int  # what the receiver answered (0: it hung up without answering)

    @property
    def event(self) -> dict[str, Any]:
        return json.loads(self.body)


@dataclass
class Receiver:
    secret: str
    port: int = field(default_factory=free_port)
    #: Answers to give, in order, before answering 200 ("hang": never answer).
    script: list[int | str] = field(default_factory=list)
    requests: list[Received] = field(default_factory=list)
    _runner: web.AppRunner | None = None
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook?token=in-the-query"

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        answer = self.script.pop(0) if self.script else 200
        seen = Received(body, dict(request.headers), 0 if answer == "hang" else int(answer))
        self.requests.append(seen)
        self._changed.set()
        if answer == "hang":
            await asyncio.sleep(3600)  # cancelled when the client gives up
        return web.Response(status=int(answer), text="ok" if answer == 200 else "no")

    async def start(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def accepted(self) -> list[dict[str, Any]]:
        """Events answered 2xx, in arrival order."""
        return [r.event for r in self.requests if 200 <= r.status < 300]

    def signed(self, r: Received) -> bool:
        return verify(self.secret, r.body, r.headers.get("X-Parley-Signature"))

    async def wait_for(self, pred: Any, what: str, within: float = 30) -> list[dict[str, Any]]:
        """Wait until ``pred(accepted)`` holds; the accepted events."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while not pred(self.accepted):
            self._changed.clear()
            left = deadline - loop.time()
            if left <= 0:
                got = [(e["id"], e["type"]) for e in self.accepted]
                raise AssertionError(f"webhook receiver: never got {what}; got {got}")
            try:
                await asyncio.wait_for(self._changed.wait(), left)
            except TimeoutError:
                pass
        return self.accepted

    async def wait_types(self, *types: str, within: float = 30) -> list[dict[str, Any]]:
        """Wait until the accepted events' types include ``types`` in that order."""

        def has(events: list[dict[str, Any]]) -> bool:
            seen = iter(e["type"] for e in events)
            return all(t in seen for t in types)

        return await self.wait_for(has, " then ".join(types), within)
