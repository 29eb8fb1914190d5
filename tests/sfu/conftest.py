"""Fixtures of the SFU tests: this process's aiortc peers on loopback, WebSocket clients."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from parley.sfu.aiortc import host_addresses

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))
from server_harness import Clients  # noqa: E402


@pytest.fixture
def loopback_only() -> Iterator[None]:
    """ICE candidates of this process's aiortc peers on 127.0.0.1 only (aioice skips it)."""
    host_addresses.restrict_host_addresses(["127.0.0.1"])
    yield
    host_addresses.restrict_host_addresses(None)


@pytest.fixture
async def clients() -> AsyncIterator[Clients]:
    """WebSocket clients of the real server (``tests/server/server_harness.py``)."""
    async with aiohttp.ClientSession() as session:
        c = Clients(session)
        yield c
        for client in c.opened:
            await client.close()
