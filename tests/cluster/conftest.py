"""Fixtures for the multi-node tests: each module gets its own redis-server.

Nodes share one PostgreSQL database, fresh for this run (the ``postgres_database``
fixture, on the server PARLEY_TEST_POSTGRES_URL names: skipped locally when unset, a
failure when CI is set); every test uses rooms with unique names, so tests sharing
that database do not meet.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest

from tests.cluster.harness import TIMEOUT, Cluster
from tests.support.processes import free_port
from tests.support.redis_server import RedisServer
from tests.support.ws_client import Clients


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, postgres_database: str) -> Iterator[Cluster]:
    """This module's Redis (started, on a free port) and a node launcher around it."""
    url = postgres_database
    base = tmp_path_factory.mktemp("cluster")
    redis = RedisServer(port=free_port(), log_path=base / "redis.log").start()
    c = Cluster(base=base, redis=redis, database_url=url)
    try:
        yield c
    finally:
        c.stop_all()
        redis.stop()


@pytest.fixture
async def clients() -> AsyncIterator[Clients]:
    """WebSocket clients with the cluster suite's longer ``TIMEOUT`` (busy CI machines)."""
    async with aiohttp.ClientSession() as session:
        c = Clients(session, timeout=TIMEOUT)
        try:
            yield c
        finally:
            await c.close_all()
