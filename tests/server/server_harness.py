"""Integration test harness: the real ``parley serve`` as a subprocess, real WebSocket clients.

``parley_server(*flags)`` starts a server on a free port with its own data dir
(or ``data_dir=`` to reuse one) and waits for ``/healthz``; every server is
stopped by PID at teardown (SIGTERM, then SIGKILL).  ``connect(server)`` opens
an aiohttp WebSocket whose frames a background task collects, so clients
answer heartbeat pings even while a test is not reading.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

TIMEOUT = 10.0  # generous bound for any single expected event


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ServerProc:
    port: int
    data_dir: Path
    args: tuple[str, ...]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    hung: bool = False
    stop_seconds: float = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"{self.url}/ws"

    def start(self, timeout: float = 20.0) -> ServerProc:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        argv = [
            sys.executable, "-m", "parley", "serve",
            "--host", "127.0.0.1", "--port", str(self.port),
            "--data-dir", str(self.data_dir), *self.args,
        ]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
        env["PYTHONUNBUFFERED"] = "1"
        with self.log_path.open("ab") as log:
            log.write(f"\n===== {' '.join(argv)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir.parent,
                env=env,
            )
        deadline = time.monotonic() + timeout
        import urllib.request

        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"parley serve exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=1) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.kill()
                pytest.fail(f"parley serve not healthy after {timeout}s:\n{self.log()}")
            time.sleep(0.05)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int | None:
        """Signal the server by PID and wait; SIGKILL if it does not exit."""
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            t0 = time.monotonic()
            proc.send_signal(sig)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
                self.hung = True
            self.stop_seconds = time.monotonic() - t0
        return proc.returncode

    def signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-6000:]
        except OSError:
            return "(no log)"


CLOSED = "__closed__"


@dataclass
class Client:
    """One WebSocket client; a background task collects every text frame as JSON.

    ``expect`` takes the first pending message that matches and leaves the others
    pending, so waiting for one message never loses another.
    """

    ws: aiohttp.ClientWebSocketResponse
    pending: list[dict[str, Any]] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)
    raw: list[str] = field(default_factory=list)
    close_code: int | None = None
    close_reason: str | None = None
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    welcome: dict[str, Any] | None = None

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

    async def send(self, obj: Any) -> None:
        await self.ws.send_str(json.dumps(obj))

    async def send_raw(self, text: str) -> None:
        await self.ws.send_str(text)

    async def take(
        self, pred: Callable[[dict[str, Any]], bool], what: str, within: float
    ) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            for i, msg in enumerate(self.pending):
                if pred(msg):
                    return self.pending.pop(i)
            if self.closed.is_set() and what != CLOSED:
                raise AssertionError(
                    f"socket closed ({self.close_code} {self.close_reason!r}) while waiting "
                    f"for {what}; pending {[m['type'] for m in self.pending]}"
                )
            left = deadline - loop.time()
            if left <= 0:
                raise AssertionError(
                    f"no {what} within {within}s; pending {[m['type'] for m in self.pending]}"
                )
            self.arrived.clear()
            try:
                await asyncio.wait_for(self.arrived.wait(), left)
            except TimeoutError:
                pass

    async def recv(self, within: float = TIMEOUT) -> dict[str, Any]:
        """The next message, in order."""
        return await self.take(lambda m: True, "message", within)

    async def expect(
        self,
        type_: str,
        pred: Callable[[dict[str, Any]], bool] | None = None,
        within: float = TIMEOUT,
    ) -> dict[str, Any]:
        """The first pending message of ``type_`` (matching ``pred``); others stay pending."""
        return await self.take(
            lambda m: m["type"] == type_ and (pred is None or pred(m)), repr(type_), within
        )

    async def error(self, code: str, within: float = TIMEOUT) -> dict[str, Any]:
        msg = await self.expect("error", within=within)
        assert msg["code"] == code, msg
        assert_clean(msg)
        return msg

    async def wait_closed(self, within: float = TIMEOUT) -> int | None:
        await asyncio.wait_for(self.closed.wait(), within)
        return self.close_code

    async def roundtrip(self, ref: str = "rt") -> None:
        """Prove the connection still works: a ping gets its pong."""
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


def assert_clean(msg: dict[str, Any]) -> None:
    """No traceback or internal detail in what the server tells a client."""
    text = json.dumps(msg)
    for needle in ("Traceback", 'File \\"', "Exception", "sqlalchemy", "aiohttp", "/src/parley"):
        assert needle not in text, f"internal detail {needle!r} leaked to a client: {msg}"


@dataclass
class Clients:
    session: aiohttp.ClientSession
    opened: list[Client] = field(default_factory=list)

    async def connect(self, server: ServerProc, **kwargs: Any) -> Client:
        kwargs.setdefault("max_msg_size", 0)
        ws = await self.session.ws_connect(server.ws_url, **kwargs)
        client = Client(ws).start()
        self.opened.append(client)
        return client

    async def join(
        self,
        server: ServerProc,
        room: str,
        name: str = "Ada",
        **extra: Any,
    ) -> Client:
        """Connect, join and return the client with its ``welcome`` read."""
        client = await self.connect(server)
        await client.send({"type": "join", "room": room, "name": name, "v": 1, **extra})
        client.welcome = await client.expect("welcome")
        return client


async def get_json(server: ServerProc, path: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as s:
        async with s.get(server.url + path) as r:
            body = await r.read()
            try:
                return r.status, json.loads(body)
            except ValueError:
                return r.status, body.decode(errors="replace")
