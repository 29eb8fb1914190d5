"""The Redis broker's ordered write queue, against a real redis-server."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from parley.cluster.redis_broker import RedisBroker
from tests.support.processes import free_port
from tests.support.redis_server import RedisServer


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    base: Path = tmp_path_factory.mktemp("broker")
    server = RedisServer(port=free_port(), log_path=base / "redis.log").start()
    try:
        yield server
    finally:
        server.stop()


async def test_drain_returns_once_what_was_queued_is_in_redis_while_others_keep_writing(
    redis_server: RedisServer,
) -> None:
    """A host's settings change waits for its record to reach Redis (drain); a node busy
    with other rooms' chat never has an empty queue, and must not hold the host up."""
    broker = RedisBroker(redis_server.url, "N1")
    await broker.start(lambda room, frame, to, exclude: None)
    reader = aioredis.Redis.from_url(redis_server.url)
    busy = True

    async def other_rooms() -> None:
        while busy:
            broker.command("incr", "test:chatter")
            await asyncio.sleep(0)

    chatter = asyncio.create_task(other_rooms())
    try:
        await asyncio.sleep(0.05)
        broker.command("set", "test:record", b"lobby on")
        await asyncio.wait_for(broker.drain(), 10)
        assert await reader.get("test:record") == b"lobby on"
        assert int(await reader.get("test:chatter") or 0) > 0
    finally:
        busy = False
        await chatter
        await broker.close()
        await reader.aclose()
