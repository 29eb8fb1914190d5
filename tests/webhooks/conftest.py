"""Fixtures of the webhook suite: a real ``parley serve`` posting to a real receiver."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from tests.support.parley_process import ParleyProcess
from tests.support.processes import free_port
from tests.support.webhook_receiver import Receiver

SECRET = "a-webhook-secret-for-tests"
ADMIN = "an-admin-token-for-the-tests"


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rx = await Receiver(SECRET).start()
    yield rx
    await rx.close()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., ParleyProcess]]:
    """``serve(url, *args)``: ``parley serve`` with webhooks to ``url`` (stopped at teardown)."""
    started: list[ParleyProcess] = []

    def start(
        *urls: str, args: tuple[str, ...] = (), data_dir: Path | None = None
    ) -> ParleyProcess:
        hooks = [a for url in urls for a in ("--webhook-url", url)]
        srv = ParleyProcess(
            port=free_port(),
            data_dir=data_dir or tmp_path / "data",
            log_path=tmp_path / f"server{len(started)}.log",
            args=(*hooks, "--webhook-secret", SECRET, "--admin-token", ADMIN, *args),
            ready_timeout=30,
        )
        started.append(srv)
        return srv.start()

    yield start
    for srv in started:
        srv.stop()
