"""Fixtures of the client SDK suite: real ``parley serve`` processes (tests/support's
:class:`ParleyProcess`), joined with :func:`parley.client.connect` over real WebSockets;
media over real UDP on 127.0.0.1 through the server's SFU (aiortc on both sides)."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from parley.auth.join_tokens import mint_token
from parley.client import Meeting, connect
from tests.support.parley_process import ParleyProcess, clean_env
from tests.support.processes import free_port

#: The servers' HS256 secret (tokens are accepted; ``--require-token`` only where asked).
SECRET = "client-suite-secret-0123456789-abcdefghij"
REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"


@pytest.fixture(scope="session")
def parley_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., ParleyProcess]]:
    """Factory: ``parley_server("--require-token")`` starts a fresh server (with the
    suite's JWT secret); ``data_dir=`` / ``port=`` reuse an earlier one's.  All are stopped
    by PID at session teardown."""
    started: list[ParleyProcess] = []

    def start(*args: str, data_dir: Path | None = None, port: int | None = None) -> ParleyProcess:
        base = tmp_path_factory.mktemp("parley")
        srv = ParleyProcess(
            port=port or free_port(),
            data_dir=data_dir or base / "data",
            args=tuple(args),
            log_path=base / "server.log",
            env=clean_env(PARLEY_JWT_SECRET=SECRET),
            ready_timeout=30,
        )
        started.append(srv)
        return srv.start()

    yield start
    for srv in started:
        srv.send_signal(signal.SIGTERM)
    for srv in started:
        srv.stop()


@pytest.fixture(scope="session")
def server(parley_server: Callable[..., ParleyProcess]) -> ParleyProcess:
    """A shared server: SFU media (the default), join tokens accepted, no rate limits
    (every test joins from 127.0.0.1)."""
    return parley_server("--no-rate-limits")


def token(room: str, name: str | None = None, role: str = "participant") -> str:
    """A join token of the suite's secret."""
    return mint_token(SECRET, room, name, role, 3600)


class Meetings:
    """SDK meetings a test opens; every one still open is left at teardown."""

    def __init__(self) -> None:
        self.opened: list[Meeting] = []

    async def join(self, srv: ParleyProcess, room: str, name: str, **kwargs: object) -> Meeting:
        meeting = await connect(srv.url, room, name, **kwargs)  # type: ignore[arg-type]
        self.opened.append(meeting)
        return meeting

    async def close_all(self) -> None:
        for meeting in self.opened:
            await meeting.leave()


@pytest.fixture
async def meetings() -> AsyncIterator[Meetings]:
    m = Meetings()
    yield m
    await m.close_all()


class Example:
    """An example script run as its own process (``python examples/NAME.py ARGS``)."""

    def __init__(
        self, script: str, *args: str, log: Path, env: dict[str, str] | None = None
    ) -> None:
        self.log = log
        self.out = log.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, str(EXAMPLES / script), *args],
            stdout=self.out,
            stderr=subprocess.STDOUT,
            env=clean_env(**(env or {})),
            cwd=REPO,
        )

    def output(self) -> str:
        self.out.flush()
        return self.log.read_text(errors="replace")[-4000:]

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.out.close()
        return self.proc.returncode


@pytest.fixture
def example(tmp_path: Path) -> Iterator[Callable[..., Example]]:
    """Factory: ``example("echo_bot.py", url, room)`` starts it; stopped (by PID) at
    teardown."""
    running: list[Example] = []

    def start(script: str, *args: str, env: dict[str, str] | None = None) -> Example:
        ex = Example(script, *args, log=tmp_path / f"{script}.{len(running)}.log", env=env)
        running.append(ex)
        return ex

    yield start
    for ex in running:
        ex.stop()
