"""``parley serve --workers 2``: two processes on one port, one meeting.

The parent starts two workers (nodes ``<id>-w0`` and ``<id>-w1``) on the same port with
SO_REUSEPORT and this module's redis-server as their broker; they share the default
SQLite store in the data dir.  The kernel spreads connections over the workers; every
WebSocket's ``101`` names the worker that took it (``X-Parley-Node``).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.cluster.harness import Cluster, unique_room
from tests.support.parley_process import ParleyProcess
from tests.support.processes import free_port

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def workers(cluster: Cluster, tmp_path: Path) -> Iterator[ParleyProcess]:
    """One ``parley serve --workers 2`` (two worker processes on one port), on the broker."""
    srv = ParleyProcess(
        port=free_port(),
        data_dir=tmp_path / "data",
        log_path=tmp_path / "workers.log",
        node_id="wk",
        args=("--broker", cluster.redis.url, "--workers", "2", "--media", "mesh"),
        stop_timeout=30,
    )
    try:
        yield srv.start()
    finally:
        srv.stop()


async def test_two_workers_share_one_port_and_one_meeting(workers: ParleyProcess) -> None:
    room = unique_room("workers")
    async with aiohttp.ClientSession() as session:
        # Open sockets until both workers have one (the kernel picks: by the client port).
        # A socket on a worker we already have is closed at once: keeping them open could
        # reach the per-address connection limit (50) on one worker when the other is still
        # starting or the kernel's hash sends a run of ports to the same one.
        by_node: dict[str, aiohttp.ClientWebSocketResponse] = {}
        for _ in range(200):
            ws = await session.ws_connect(f"{workers.url}/ws")
            node = ws._response.headers["X-Parley-Node"]  # noqa: SLF001
            if node in by_node:
                await ws.close()
                await asyncio.sleep(0.05)
                continue
            by_node[node] = ws
            if len(by_node) == 2:
                break
        assert sorted(by_node) == ["wk-w0", "wk-w1"], workers.log(3000)
        ada, bob = by_node["wk-w0"], by_node["wk-w1"]
        await ada.send_json({"type": "join", "room": room, "name": "Ada", "v": 1})
        assert (await ada.receive_json(timeout=15))["type"] == "welcome"
        await bob.send_json({"type": "join", "room": room, "name": "Bob", "v": 1})
        welcome = await bob.receive_json(timeout=15)
        assert welcome["type"] == "welcome"
        assert [p["name"] for p in welcome["participants"]] == ["Ada", "Bob"]
        await bob.send_json({"type": "chat", "text": "from worker 1"})

        async def next_chat(ws: aiohttp.ClientWebSocketResponse) -> str:
            while True:
                msg = await ws.receive_json(timeout=15)
                if msg["type"] == "chat":
                    return str(msg["message"]["text"])

        assert await next_chat(ada) == "from worker 1"  # crossed from w1 to w0 via Redis
        # Stopping the parent stops both workers, and every client hears why.
        workers.proc.send_signal(signal.SIGTERM)
        for ws in (ada, bob):
            while True:
                msg = await ws.receive(timeout=30)
                if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                    break
            assert ws.close_code == 1001
        assert await asyncio.to_thread(workers.proc.wait, 30) == 0


def test_workers_need_a_broker(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "parley", "serve", "--workers", "2", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")},
    )
    assert out.returncode != 0
    assert "--workers needs --broker" in out.stderr
