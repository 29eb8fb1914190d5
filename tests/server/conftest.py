"""Fixtures of the server suite: the real ``parley serve`` as a subprocess, real WebSocket
clients (``clients`` and ``room`` come from tests/conftest.py)."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.parley_process import ParleyProcess
from tests.support.processes import free_port


@pytest.fixture(scope="session")
def parley_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., ParleyProcess]]:
    """Factory: ``parley_server("--heartbeat", "1")`` starts a fresh server.

    ``data_dir=`` / ``port=`` reuse an earlier server's.  Every server started here
    is stopped by PID at session teardown (SIGTERM, then SIGKILL after 15 s).
    """
    started: list[ParleyProcess] = []

    def start(*args: str, data_dir: Path | None = None, port: int | None = None) -> ParleyProcess:
        base = tmp_path_factory.mktemp("parley")
        srv = ParleyProcess(
            port=port or free_port(),
            data_dir=data_dir or base / "data",
            args=tuple(args),
            log_path=base / "server.log",
            ready_timeout=60,  # a busy machine (two test workers) starts servers slowly
        )
        started.append(srv)
        return srv.start()

    yield start
    for srv in started:  # signal them all first: they shut down in parallel
        srv.send_signal(signal.SIGTERM)
    for srv in started:
        srv.stop()


@pytest.fixture(scope="session")
def server(parley_server: Callable[..., ParleyProcess]) -> ParleyProcess:
    """A shared default server (plain ``parley serve``: SFU media) for tests that need no
    special flags."""
    return parley_server()


@pytest.fixture(scope="session")
def mesh_server(parley_server: Callable[..., ParleyProcess]) -> ParleyProcess:
    """``--media mesh``: browser-to-browser media, the server only relays signalling."""
    return parley_server("--media", "mesh")


@pytest.fixture(scope="session")
def fast_server(parley_server: Callable[..., ParleyProcess]) -> ParleyProcess:
    """A shared server with ``--no-rate-limits`` (for tests that send a lot)."""
    return parley_server("--no-rate-limits")


@pytest.fixture(scope="session")
def quick_server(parley_server: Callable[..., ParleyProcess]) -> ParleyProcess:
    """A fast heartbeat (1 s) and a short resume grace (2 s)."""
    return parley_server("--heartbeat", "1", "--resume-grace", "2")


@pytest.fixture(scope="session")
def small_server(parley_server: Callable[..., ParleyProcess]) -> ParleyProcess:
    """Small configured limits: 2 participants a room, 10-character chat, 1 s to join."""
    return parley_server("--max-participants", "2", "--chat-max-chars", "10", "--join-timeout", "1")
