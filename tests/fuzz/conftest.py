"""Fixtures for the protocol fuzz tests: a live ``parley serve`` per module.

Reuses the subprocess harness of ``tests/moderation/mod_harness.py`` (which builds
on ``tests/server/server_harness.py``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "moderation"))

from mod_harness import ModServer, free_port  # noqa: E402


@pytest.fixture(scope="module")
def fuzz_server_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., ModServer]]:
    started: list[ModServer] = []

    def start(*args: str) -> ModServer:
        base = tmp_path_factory.mktemp("fuzzsrv")
        srv = ModServer(
            port=free_port(), data_dir=base / "data", args=tuple(args), log_path=base / "server.log"
        )
        started.append(srv)
        return srv.start()

    yield start
    for srv in started:
        srv.stop()
