"""``/metrics`` behind ``--metrics-token`` on a real ``parley serve``: bad credentials are a 401.

The ``Authorization`` header is sent as raw bytes, so it can be what no client
library would send: not UTF-8.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.parley_process import ParleyProcess
from tests.support.processes import free_port

TOKEN = "a-long-random-metrics-token-0123456789"


@pytest.fixture
def node(tmp_path: Path) -> Iterator[ParleyProcess]:
    n = ParleyProcess(
        port=free_port(),
        data_dir=tmp_path / "data",
        log_path=tmp_path / "parley.log",
        args=("--metrics-token", TOKEN),
    ).start()
    yield n
    n.stop()


async def get_metrics(node: ParleyProcess, authorization: bytes | None) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", node.port)
    head = b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
    if authorization is not None:
        head += b"Authorization: " + authorization + b"\r\n"
    writer.write(head + b"\r\n")
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    return int(answer.split(b" ", 2)[1]), answer


@pytest.mark.parametrize(
    "authorization",
    [
        b"Bearer \xff\xfe\xfd",
        b"Bearer " + TOKEN.encode()[:-1] + b"\xe9",  # Latin-1 where the token's last byte is
        b"\xc3\x28",
    ],
)
async def test_non_utf8_authorization_is_refused_not_a_crash(
    node: ParleyProcess, authorization: bytes
) -> None:
    status, answer = await get_metrics(node, authorization)
    assert status == 401, answer[:300]
    assert b"Traceback" not in answer
    assert "Traceback" not in node.log()
    # The right token still scrapes.
    status, answer = await get_metrics(node, b"Bearer " + TOKEN.encode())
    assert status == 200 and b"parley_connections" in answer
