"""Cross-node fan-out over Redis pub/sub.

Each room has one channel, ``parley:room:<room>``.  A node subscribes to the
rooms it has participants in.  Everything a node publishes for a room goes
out in order through one writer task (a pipeline per batch), as msgpack
envelopes: frames for clients, and replication or control operations for the
other nodes.  Local clients are served directly, without a round trip.

When Redis is unreachable the node keeps serving its own clients; what it
publishes meanwhile is dropped (counted and logged), and on reconnection it
resubscribes and calls ``on_reconnect`` so the state can be resynchronised.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ..broker import DeliverFn

log = logging.getLogger(__name__)

CHANNEL_PREFIX = "parley:room:"

#: Envelope kinds.
FRAME = 0  # a WebSocket frame for clients: (to, exclude, frame)
STATE = 1  # replication: a participant or room changed
CONTROL = 2  # an instruction for the node serving a participant


class Envelope(msgspec.Struct, array_like=True):
    kind: int
    node: str
    sent: float  # wall-clock seconds, for the broker-lag metric
    room: str
    to: tuple[str, ...] | None
    exclude: str | None
    body: bytes


_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(Envelope).decode

OpHandler = Callable[[Envelope], None]


def channel(room: str) -> str:
    return CHANNEL_PREFIX + room


class RedisBroker:
    """:class:`parley.broker.Broker` across nodes, plus the replication channel."""

    def __init__(self, url: str, node: str, *, max_queue: int = 100_000) -> None:
        self.url = url
        self.node = node
        self.redis: aioredis.Redis = aioredis.Redis.from_url(url)
        self.max_queue = max_queue
        self._deliver: DeliverFn | None = None
        self.on_op: OpHandler | None = None
        self.on_reconnect: Callable[[], Awaitable[None]] | None = None
        self.on_lag: Callable[[float], None] | None = None
        #: Rooms that need publishing to Redis (another node serves someone there).
        self.remote_rooms: Callable[[str], bool] = lambda room: True
        self.watched: set[str] = set()
        self._queue: list[tuple[str, bytes] | tuple[str, Any]] = []
        self._wakeup = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._pubsub: Any = None
        self._sub_changed = asyncio.Event()
        self.connected = False
        self.dropped = 0
        self._closing = False

    # -- lifecycle ------------------------------------------------------------------

    async def start(self, deliver: DeliverFn) -> None:
        self._deliver = deliver
        try:
            await self.redis.ping()
            self.connected = True
        except (RedisError, OSError) as exc:
            log.error(
                "redis %s unreachable at start (%s); retrying in the background", self.url, exc
            )
        self._tasks = [
            asyncio.create_task(self._writer(), name="parley-redis-writer"),
            asyncio.create_task(self._reader(), name="parley-redis-reader"),
        ]

    async def close(self) -> None:
        self._closing = True
        self._wakeup.set()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._pubsub is not None:
            try:
                await self._pubsub.aclose()
            except (RedisError, OSError):
                pass
        await self.redis.aclose()

    # -- publishing -------------------------------------------------------------------

    def publish(
        self, room: str, frame: bytes, to: tuple[str, ...] | None, exclude: str | None
    ) -> None:
        if self._deliver is not None:
            self._deliver(room, frame, to, exclude)
        if self.remote_rooms(room):
            self.send(FRAME, room, frame, to, exclude)

    def send(
        self,
        kind: int,
        room: str,
        body: bytes,
        to: tuple[str, ...] | None = None,
        exclude: str | None = None,
    ) -> None:
        """Queue an envelope for the room's channel (in order with everything else)."""
        env = Envelope(kind, self.node, time.time(), room, to, exclude, body)
        self.command("publish", channel(room), _encode(env))

    def command(self, name: str, *args: Any) -> None:
        """Queue a Redis command to run in order with the publishes (fire and forget)."""
        if len(self._queue) >= self.max_queue:
            self.dropped += 1
            return
        self._queue.append((name, args))
        self._wakeup.set()

    async def _writer(self) -> None:
        while not self._closing:
            if not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            batch, self._queue = self._queue, []
            try:
                pipe = self.redis.pipeline(transaction=False)
                for name, args in batch:
                    getattr(pipe, name)(*args)
                await pipe.execute()
            except (RedisError, OSError) as exc:
                self.dropped += len(batch)
                if self.connected:
                    log.error("redis unavailable: %s; cross-node delivery paused", exc)
                self.connected = False
                await asyncio.sleep(0.5)

    # -- subscriptions --------------------------------------------------------------------

    async def watch(self, room: str) -> None:
        if room in self.watched:
            return
        self.watched.add(room)
        if self._pubsub is not None and self.connected:
            try:
                await self._pubsub.subscribe(channel(room))
            except (RedisError, OSError) as exc:
                log.warning("subscribe %s failed: %s", room, exc)
        self._sub_changed.set()

    async def unwatch(self, room: str) -> None:
        if room not in self.watched:
            return
        self.watched.discard(room)
        if self._pubsub is not None and self.connected:
            try:
                await self._pubsub.unsubscribe(channel(room))
            except (RedisError, OSError):
                pass

    async def _reader(self) -> None:
        backoff = 0.2
        while not self._closing:
            try:
                self._pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
                # A placeholder channel keeps the connection subscribed even with no room.
                await self._pubsub.subscribe(
                    f"parley:node:{self.node}", *map(channel, self.watched)
                )
                was_down = not self.connected
                self.connected = True
                backoff = 0.2
                if was_down:
                    log.warning("redis reachable again; resynchronising")
                    if self.on_reconnect is not None:
                        await self.on_reconnect()
                while not self._closing:
                    msg = await self._pubsub.get_message(timeout=1.0)
                    if msg is None or msg.get("type") != "message":
                        continue
                    self._received(msg["data"])
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                if self.connected:
                    log.error("redis unavailable: %s; local rooms keep working", exc)
                self.connected = False
                try:
                    await self._pubsub.aclose()
                except (RedisError, OSError):
                    pass
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
            except Exception:
                log.exception("redis reader failed; restarting it")
                await asyncio.sleep(1.0)

    def _received(self, data: bytes) -> None:
        try:
            env = _decode(data)
        except msgspec.DecodeError:
            log.warning("undecodable envelope on the cluster channel")
            return
        if env.node == self.node:
            return
        if self.on_lag is not None:
            self.on_lag(max(0.0, time.time() - env.sent))
        if env.kind == FRAME:
            if self._deliver is not None:
                self._deliver(env.room, env.body, env.to, env.exclude)
        elif self.on_op is not None:
            self.on_op(env)
