"""Fixtures of the SFU tests: this process's aiortc peers on loopback, WebSocket clients."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest

from parley.sfu.aiortc import host_addresses
from tests.support.ws_client import Clients


@pytest.fixture
def loopback_only() -> Iterator[None]:
    """ICE candidates of this process's aiortc peers on 127.0.0.1 only (aioice skips it)."""
    host_addresses.restrict_host_addresses(["127.0.0.1"])
    yield
    host_addresses.restrict_host_addresses(None)


@pytest.fixture
async def clients() -> AsyncIterator[Clients]:
    """WebSocket clients of the real server (``tests/support/ws_client.py``)."""
    async with aiohttp.ClientSession() as session:
        c = Clients(session)
        yield c
        for client in c.opened:
            await client.close()
