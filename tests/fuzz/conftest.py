"""Fixtures for the protocol fuzz tests: a live ``parley serve`` per module
(:class:`~tests.support.parley_process.ParleyProcess`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.support.parley_process import ParleyProcess
from tests.support.processes import free_port


@pytest.fixture(scope="module")
def fuzz_server_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., ParleyProcess]]:
    started: list[ParleyProcess] = []

    def start(*args: str) -> ParleyProcess:
        base = tmp_path_factory.mktemp("fuzzsrv")
        srv = ParleyProcess(
            port=free_port(),
            data_dir=base / "data",
            args=tuple(args),
            log_path=base / "server.log",
            ready_timeout=180,
            stop_timeout=30,
        )
        started.append(srv)
        return srv.start()

    yield start
    for srv in started:
        srv.stop()
