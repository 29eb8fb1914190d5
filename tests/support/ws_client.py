"""The WebSocket test client every suite that talks to a server shares (and
:func:`fetch_json`, their REST GET).

A background task collects every text frame as JSON, so a client answers heartbeat
pings even while a test is not reading.  ``expect`` takes the first pending message
that matches and leaves the others pending, so waiting for one message never loses
another; ``received`` keeps everything (parsed), ``raw`` the frames as text.
:class:`Clients` opens them (one per test, closed at teardown by the suites' ``clients``
fixtures); the moderation suite's ``Net`` opens them from chosen source addresses.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

#: The pseudo-message queued when the socket closes (``take(..., CLOSED, ...)`` waits for it).
CLOSED = "__closed__"


def assert_clean(msg: dict[str, Any]) -> None:
    """No traceback or internal detail in what the server tells a client."""
    text = json.dumps(msg)
    for needle in ("Traceback", 'File \\"', "Exception", "sqlalchemy", "aiohttp", "/src/parley"):
        assert needle not in text, f"internal detail {needle!r} leaked to a client: {msg}"


async def fetch_json(url: str, **kwargs: Any) -> tuple[int, Any]:
    """GET ``url`` (``kwargs`` go to ``session.get``): the status and the body as JSON,
    or as text when it is not JSON."""
    async with aiohttp.ClientSession() as s:
        async with s.get(url, **kwargs) as r:
            body = await r.read()
            try:
                return r.status, json.loads(body)
            except ValueError:
                return r.status, body.decode(errors="replace")


@dataclass
class Client:
    """One WebSocket client (see the module docstring)."""

    ws: aiohttp.ClientWebSocketResponse
    #: Bound for any one expected event, when a call does not give one.
    timeout: float = 10.0
    label: str = ""
    #: The node nginx sent it to (``X-Parley-Upstream``), for the cluster tests.
    upstream: str | None = None
    pending: list[dict[str, Any]] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)
    raw: list[str] = field(default_factory=list)
    close_code: int | None = None
    close_reason: str | None = None
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    welcome: dict[str, Any] | None = None
    joined_name: str = ""

    def start(self) -> Client:
        self.task = asyncio.get_running_loop().create_task(self._read())
        return self

    def _push(self, data: dict[str, Any]) -> None:
        self.pending.append(data)
        self.arrived.set()

    async def _read(self) -> None:
        try:
            while True:
                msg = await self.ws.receive()
                if msg.type == aiohttp.WSMsgType.TEXT:
                    self.raw.append(msg.data)
                    data = json.loads(msg.data)
                    self.received.append(data)
                    self._push(data)
                elif msg.type == aiohttp.WSMsgType.CLOSE:
                    self.close_code = msg.data
                    self.close_reason = msg.extra
                    # autoclose answers the close frame; keep draining until CLOSED.
                elif msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                    break
                else:  # a binary frame from the server: record it, it should not happen
                    self.received.append({"type": "__binary__", "data": repr(msg.data)[:200]})
        except Exception:  # noqa: BLE001 - the socket died; record it as closed
            pass
        finally:
            if self.close_code is None:
                self.close_code = self.ws.close_code
            self.closed.set()
            self._push({"type": CLOSED})

    @property
    def id(self) -> str:
        assert self.welcome is not None
        return str(self.welcome["id"])

    @property
    def resume_token(self) -> str:
        assert self.welcome is not None
        return str(self.welcome["resume"])

    async def send(self, obj: Any) -> None:
        await self.ws.send_str(json.dumps(obj))

    async def send_raw(self, text: str) -> None:
        await self.ws.send_str(text)

    async def take(
        self, pred: Callable[[dict[str, Any]], bool], what: str, within: float | None = None
    ) -> dict[str, Any]:
        within = self.timeout if within is None else within
        who = f"{self.label}: " if self.label else ""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            for i, msg in enumerate(self.pending):
                if pred(msg):
                    return self.pending.pop(i)
            if self.closed.is_set() and what != CLOSED:
                raise AssertionError(
                    f"{who}socket closed ({self.close_code} {self.close_reason!r}) while "
                    f"waiting for {what}; pending {[m['type'] for m in self.pending]}"
                )
            left = deadline - loop.time()
            if left <= 0:
                raise AssertionError(
                    f"{who}no {what} within {within}s; pending {json.dumps(self.pending)[:600]}"
                )
            self.arrived.clear()
            try:
                await asyncio.wait_for(self.arrived.wait(), left)
            except TimeoutError:
                pass

    async def recv(self, within: float | None = None) -> dict[str, Any]:
        """The next message, in order."""
        return await self.take(lambda m: True, "message", within)

    async def expect(
        self,
        type_: str,
        pred: Callable[[dict[str, Any]], bool] | None = None,
        within: float | None = None,
    ) -> dict[str, Any]:
        """The first pending message of ``type_`` (matching ``pred``); others stay pending."""
        return await self.take(
            lambda m: m["type"] == type_ and (pred is None or pred(m)), repr(type_), within
        )

    async def error(self, code: str, within: float | None = None) -> dict[str, Any]:
        msg = await self.expect("error", within=within)
        assert msg["code"] == code, f"{self.label}: expected error {code}, got {msg}"
        assert_clean(msg)
        return msg

    async def wait_closed(self, within: float | None = None) -> int | None:
        await asyncio.wait_for(self.closed.wait(), self.timeout if within is None else within)
        return self.close_code

    async def roundtrip(self, ref: str | None = None) -> None:
        """Prove the connection still works: a ping gets its pong."""
        ref = ref or uuid.uuid4().hex[:8]
        await self.send({"type": "ping", "ref": ref})
        pong = await self.expect("pong", lambda m: m.get("ref") == ref)
        assert pong == {"type": "pong", "ref": ref}

    async def chat(self, text: str, ref: str | None = None, **extra: Any) -> dict[str, Any]:
        """Send a chat and return its ``chat-ack``."""
        ref = ref or uuid.uuid4().hex[:8]
        await self.send({"type": "chat", "text": text, "ref": ref, **extra})
        return await self.expect("chat-ack", lambda m: m.get("ref") == ref)

    def of_type(self, type_: str) -> list[dict[str, Any]]:
        """Every message of ``type_`` received so far (pending or not)."""
        return [m for m in self.received if m["type"] == type_]

    def saw_chat(self, text: str) -> bool:
        return any(m["message"]["text"] == text for m in self.of_type("chat"))

    def left_ids(self) -> list[str]:
        return [m["id"] for m in self.of_type("participant-left")]

    def joined_ids(self) -> list[str]:
        return [m["participant"]["id"] for m in self.of_type("participant-joined")]

    def drop(self) -> None:
        """Kill the TCP connection without a close frame (a network drop)."""
        conn = self.ws._conn  # noqa: SLF001 - no public handle on the transport
        if conn is not None and conn.transport is not None:
            conn.transport.abort()

    async def close(self) -> None:
        if not self.ws.closed:
            try:
                await asyncio.wait_for(self.ws.close(), 5)
            except Exception:  # noqa: BLE001
                pass
        if self.task is not None:
            self.task.cancel()
            try:
                await self.task
            except BaseException:  # noqa: BLE001
                pass


@dataclass
class Clients:
    """WebSocket clients of one test; :meth:`close_all` at teardown."""

    session: aiohttp.ClientSession
    #: Bound for any one expected event (the cluster suite's machines are busier).
    timeout: float = 10.0
    opened: list[Client] = field(default_factory=list)

    async def connect(self, target: Any, label: str = "", **kwargs: Any) -> Client:
        """Open a WebSocket to ``target`` (anything with ``ws_url``); ``kwargs`` go to
        ``ws_connect``."""
        kwargs.setdefault("max_msg_size", 0)
        ws = await self.session.ws_connect(target.ws_url, **kwargs)
        # Which node nginx sent it to (the cluster suite's nginx adds this header).
        upstream = ws._response.headers.get("X-Parley-Upstream")  # noqa: SLF001
        client = Client(ws, timeout=self.timeout, label=label, upstream=upstream).start()
        self.opened.append(client)
        return client

    async def join(
        self, target: Any, room: str, name: str = "Ada", *, expect: str = "welcome", **extra: Any
    ) -> Client:
        """Connect and join; return the client with its ``welcome`` read (unless ``expect``
        says otherwise: the caller reads the answer)."""
        client = await self.connect(target, label=name)
        client.joined_name = name
        await client.send({"type": "join", "room": room, "name": name, "v": 1, **extra})
        if expect == "welcome":
            client.welcome = await client.expect("welcome")
        return client

    async def join_all(self, room: str, *seats: tuple[Any, str]) -> list[Client]:
        """:meth:`join` ``room`` once per (target, name), one after the other."""
        return [await self.join(target, room, name) for target, name in seats]

    async def resume(self, target: Any, old: Client, room: str, *, retries: float = 10.0) -> Client:
        """Reconnect ``old``'s identity to ``target`` with its resume token."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + retries
        while True:
            try:
                client = await self.connect(target, label=old.label + "'")
                break
            except (aiohttp.ClientError, OSError):
                if loop.time() > deadline:
                    raise
                await asyncio.sleep(0.2)
        await client.send(
            {"type": "join", "room": room, "name": old.joined_name or old.label, "v": 1,
             "resume": old.resume_token}
        )  # fmt: skip
        client.joined_name = old.joined_name
        client.welcome = await client.expect("welcome")
        return client

    async def close_all(self) -> None:
        await asyncio.gather(*(c.close() for c in self.opened), return_exceptions=True)
