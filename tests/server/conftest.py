"""Integration fixtures: the real ``parley serve`` as a subprocess, real WebSocket clients.

See ``server_harness.py`` for the server process and client helpers.
"""

from __future__ import annotations

import signal
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import aiohttp
import pytest
from server_harness import Clients, ServerProc, assert_clean, free_port


@pytest.fixture(scope="session")
def parley_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., ServerProc]]:
    """Factory: ``parley_server("--heartbeat", "1")`` starts a fresh server.

    ``data_dir=`` / ``port=`` reuse an earlier server's.  Every server started here
    is stopped by PID at session teardown (SIGTERM, then SIGKILL after 15 s).
    """
    started: list[ServerProc] = []

    def start(*args: str, data_dir: Path | None = None, port: int | None = None) -> ServerProc:
        base = tmp_path_factory.mktemp("parley")
        srv = ServerProc(
            port=port or free_port(),
            data_dir=data_dir or base / "data",
            args=tuple(args),
            log_path=base / "server.log",
        )
        started.append(srv)
        return srv.start()

    yield start
    for srv in started:  # signal them all first: they shut down in parallel
        srv.signal(signal.SIGTERM)
    for srv in started:
        srv.stop()


@pytest.fixture(scope="session")
def server(parley_server: Callable[..., ServerProc]) -> ServerProc:
    """A shared default server (plain ``parley serve``: SFU media) for tests that need no
    special flags."""
    return parley_server()


@pytest.fixture(scope="session")
def mesh_server(parley_server: Callable[..., ServerProc]) -> ServerProc:
    """``--media mesh``: browser-to-browser media, the server only relays signalling."""
    return parley_server("--media", "mesh")


@pytest.fixture(scope="session")
def fast_server(parley_server: Callable[..., ServerProc]) -> ServerProc:
    """A shared server with ``--no-rate-limits`` (for tests that send a lot)."""
    return parley_server("--no-rate-limits")


@pytest.fixture(scope="session")
def quick_server(parley_server: Callable[..., ServerProc]) -> ServerProc:
    """A fast heartbeat (1 s) and a short resume grace (2 s)."""
    return parley_server("--heartbeat", "1", "--resume-grace", "2")


@pytest.fixture(scope="session")
def small_server(parley_server: Callable[..., ServerProc]) -> ServerProc:
    """Small configured limits: 2 participants a room, 10-character chat, 1 s to join."""
    return parley_server("--max-participants", "2", "--chat-max-chars", "10", "--join-timeout", "1")


@pytest.fixture
def room(request: pytest.FixtureRequest) -> str:
    """A room name unique to this test."""
    base = "".join(c if c.isalnum() else "-" for c in request.node.name)[:40].strip("-")
    return f"{base}-{uuid.uuid4().hex[:6]}"


@pytest.fixture
async def clients() -> AsyncIterator[Clients]:
    async with aiohttp.ClientSession() as session:
        c = Clients(session)
        yield c
        for client in c.opened:
            await client.close()
    # whatever happened in the test, no client was ever sent internal details
    for client in c.opened:
        for msg in client.received:
            if msg["type"] == "error":
                assert_clean(msg)
