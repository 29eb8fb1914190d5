"""Integration test harness: the real ``parley serve`` as a subprocess, real WebSocket clients.

``parley_server(*flags)`` starts a server on a free port with its own data dir
(or ``data_dir=`` to reuse one) and waits for ``/healthz``; every server is
stopped by PID at teardown (SIGTERM, then SIGKILL).  ``connect(server)`` opens
an aiohttp WebSocket whose frames a background task collects, so clients
answer heartbeat pings even while a test is not reading.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
from processes import (  # noqa: E402
    LoopbackUrls,
    free_port,  # noqa: F401 - re-exported to tests
    healthz_ok,
    kill_process,
    launch_parley,
    log_tail,
    stop_process,
    wait_ready,
)
from ws_client import CLOSED, Client, assert_clean, fetch_json  # noqa: E402, F401 - re-exported

TIMEOUT = 10.0  # generous bound for any single expected event


@dataclass
class ServerProc(LoopbackUrls):
    port: int
    data_dir: Path
    args: tuple[str, ...]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    hung: bool = False
    stop_seconds: float = 0.0

    def start(self, timeout: float = 20.0) -> ServerProc:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.proc = launch_parley(self.port, self.data_dir, self.args, self.log_path)
        why = wait_ready(self.proc, lambda: healthz_ok(self.url), timeout)
        if why is not None:
            self.kill()
            pytest.fail(f"parley serve {why}:\n{self.log()}")
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int | None:
        """Signal the server by PID and wait; SIGKILL if it does not exit."""
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            t0 = time.monotonic()
            self.hung = stop_process(proc, sig, timeout) or self.hung
            self.stop_seconds = time.monotonic() - t0
        return proc.returncode

    def signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)

    def kill(self) -> None:
        kill_process(self.proc)

    def log(self) -> str:
        return log_tail(self.log_path, 6000)


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


async def get_json(server: ServerProc, path: str, bearer: str | None = None) -> tuple[int, Any]:
    """GET a JSON route; ``bearer``: a credential (a member's resume token, a join token)."""
    headers = {"Authorization": f"Bearer {bearer}"} if bearer is not None else {}
    return await fetch_json(server.url + path, headers=headers)
