"""A real ``parley serve --policy FILE`` per test (the policy written by the test)."""

from __future__ import annotations

import signal
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.parley_process import ParleyProcess
from tests.support.processes import free_port

#: A JWT secret for the tests that give joiners claims.
SECRET = "policy-tests-secret-0123456789-abcdefghij"


@pytest.fixture
def policy_server(tmp_path: Path) -> Iterator[Callable[..., ParleyProcess]]:
    """``policy_server(source, *flags)``: the policy file (dedented) and a server using it."""
    started: list[ParleyProcess] = []

    def start(source: str, *args: str) -> ParleyProcess:
        path = tmp_path / f"policy{len(started)}.py"
        path.write_text(textwrap.dedent(source))
        srv = ParleyProcess(
            port=free_port(),
            data_dir=tmp_path / f"data{len(started)}",
            log_path=tmp_path / f"server{len(started)}.log",
            args=("--policy", str(path), "--media", "mesh", f"--jwt-secret={SECRET}", *args),
            ready_timeout=30,
        )
        started.append(srv)
        return srv.start()

    yield start
    for srv in started:
        srv.send_signal(signal.SIGTERM)
    for srv in started:
        srv.stop()
