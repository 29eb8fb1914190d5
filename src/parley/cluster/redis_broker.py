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
from collections.abc import Callable, Coroutine
from typing import Any

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ..core.breakouts import main_of
from ..core.broker import DeliverFn

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


def base_room(room: str) -> str:
    """The room of a fan-out address (a room's lobby shares its channel)."""
    return room.partition("#")[0]


def channel(room: str) -> str:
    """A meeting's one channel: its lobby's and its breakout rooms' too, so that every
    node of the meeting sees a move (left here, joined there) in one ordered stream."""
    return CHANNEL_PREFIX + main_of(base_room(room))


class RedisBroker:
    """:class:`parley.core.broker.Broker` across nodes, plus the replication channel."""

    def __init__(self, url: str, node: str, *, max_queue: int = 100_000) -> None:
        self.url = url
        self.node = node
        self.redis: aioredis.Redis = aioredis.Redis.from_url(url)
        self.max_queue = max_queue
        self._deliver: DeliverFn | None = None
        self.on_op: OpHandler | None = None
        self.on_reconnect: Callable[[], Coroutine[Any, Any, None]] | None = None
        self.on_lag: Callable[[float], None] | None = None
        #: Another node's frame (room, frame, addressees): a recording here notes it.
        self.on_remote_frame: Callable[[str, bytes, tuple[str, ...] | None], None] | None = None
        #: Counters for /metrics: envelopes published, and received from other nodes.
        self.published = 0
        self.received = 0
        #: Rooms that need publishing to Redis (another node serves someone there).
        self.remote_rooms: Callable[[str], bool] = lambda room: True
        #: Whether a participant's socket is on this node.
        self.is_local: Callable[[str], bool] = lambda pid: False
        self.watched: set[str] = set()
        self._queue: list[tuple[str, bytes] | tuple[str, Any]] = []
        self._wakeup = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._pubsub: Any = None
        #: Commands queued so far, and of those, how many were sent (or given up):
        #: :meth:`drain` waits for a mark, not for an empty queue, which a busy node
        #: may never have.
        self._queued = 0
        self._done = 0
        self._progress = asyncio.Event()
        #: Whether the subscription reader is up (only the reader changes it).
        self.connected = False
        #: A write failed: state must be rewritten once Redis answers again.
        self._needs_resync = False
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
        self._progress.set()
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
        if to is not None:
            # Addressed: go through Redis unless every addressee is served here.
            if not all(map(self.is_local, to)):
                self.send(FRAME, room, frame, to, exclude)
        elif self.remote_rooms(base_room(room)):
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
        self.published += 1
        self.command("publish", channel(room), _encode(env))

    def command(self, name: str, *args: Any) -> None:
        """Queue a Redis command to run in order with the publishes (fire and forget)."""
        if len(self._queue) >= self.max_queue:
            self.dropped += 1
            return
        self._queue.append((name, args))
        self._queued += 1
        self._wakeup.set()

    async def drain(self) -> None:
        """Wait until everything queued so far has been sent to Redis (or dropped)."""
        mark = self._queued
        while self._done < mark and not self._closing:
            self._progress.clear()
            await self._progress.wait()

    async def _execute(self, batch: list[Any]) -> None:
        pipe = self.redis.pipeline(transaction=False)
        for name, args in batch:
            getattr(pipe, name)(*args)
        await pipe.execute()

    async def _writer(self) -> None:
        while not self._closing:
            if not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            batch, self._queue = self._queue, []
            try:
                try:
                    await self._execute(batch)
                except (RedisError, OSError):
                    # After a Redis restart the pool's first connection is stale: one
                    # retry goes out on a fresh connection.
                    await self._execute(batch)
                if self._needs_resync:
                    self._needs_resync = False
                    log.warning("redis writes work again; resynchronising")
                    if self.on_reconnect is not None:
                        asyncio.get_running_loop().create_task(self.on_reconnect())
            except (RedisError, OSError) as exc:
                self.dropped += len(batch)
                if not self._needs_resync:
                    log.error("redis unavailable: %s; cross-node delivery paused", exc)
                self._needs_resync = True
                await asyncio.sleep(0.5)
            finally:
                self._done += len(batch)
                self._progress.set()
        self._progress.set()

    # -- subscriptions --------------------------------------------------------------------

    async def watch(self, room: str) -> None:
        if room in self.watched:
            return
        self.watched.add(room)
        if self._pubsub is not None:
            # If this fails, the reader subscribes to every watched room when it reconnects.
            try:
                await self._pubsub.subscribe(channel(room))
            except (RedisError, OSError) as exc:
                log.warning("subscribe %s failed: %s", room, exc)

    async def unwatch(self, room: str) -> None:
        await self.unwatch_many([room])

    async def unwatch_many(self, rooms: list[str]) -> None:
        """Stop watching ``rooms`` now; unsubscribe the channels no watched room needs.

        The rooms leave ``watched`` before the first await, so a ``watch`` of one of
        them meanwhile subscribes again, and its channel is then kept.
        """
        gone = {channel(room) for room in rooms if room in self.watched}
        self.watched.difference_update(rooms)
        for name in sorted(gone):
            if any(channel(other) == name for other in self.watched):
                continue  # another room of the meeting (or a new watch) needs the channel
            if self._pubsub is not None:
                try:
                    await self._pubsub.unsubscribe(name)
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
        self.received += 1
        if self.on_lag is not None:
            self.on_lag(max(0.0, time.time() - env.sent))
        if env.kind == FRAME:
            if self._deliver is not None:
                self._deliver(env.room, env.body, env.to, env.exclude)
            if self.on_remote_frame is not None:
                self.on_remote_frame(env.room, env.body, env.to)
        elif self.on_op is not None:
            self.on_op(env)
