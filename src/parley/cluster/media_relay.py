"""Which nodes relay which room's media, and where: the relay's directory in Redis.

Each node with a media relay (``--relay-port``) keeps, every ``EVERY`` seconds:

* ``parley:relay:addr:<node>`` = ``host:port`` of its relay socket (expires after
  ``ADDRESS_TTL`` s: a stopped node's address goes, and with it its part in every room);
* its id in the hash ``parley:relay:room:<room>`` of every room whose media it serves
  (an SFU room with participants here), removed when the room closes here;
* its id in the set ``parley:relay:nodes``;

and reads back every node of that set with a live address (:meth:`RelayPort.set_peers`:
only those nodes may send to this one) and, for its rooms, the other nodes listed with
a live address: the room's relay *targets* (:meth:`RelayPort.set_targets`).  A node that
joins a room is relayed to within about two periods; one that stops is dropped when
its address expires, and a restarted one registers again with its first media
participant.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection, Iterable
from typing import Any, Protocol

from redis.exceptions import RedisError

__all__ = ["RelayDirectory", "RelayPort"]

log = logging.getLogger(__name__)

#: Seconds between two refreshes.
EVERY = 1.0
#: Seconds a relay address lives without a refresh.
ADDRESS_TTL = 10
#: Seconds a room's hash lives without any node refreshing it.
ROOM_TTL = 60


#: The set of nodes with a relay (each adds itself; one whose address expired is removed).
NODES = "parley:relay:nodes"


def address_key(node: str) -> str:
    return "parley:relay:addr:" + node


def room_key(room: str) -> str:
    return "parley:relay:room:" + room


class RelayPort(Protocol):
    """What the directory drives (``parley.sfu.relay.node.MediaRelay``)."""

    node: str

    @property
    def address(self) -> str: ...

    def rooms_served(self) -> Collection[str]: ...

    def set_peers(self, peers: dict[str, tuple[str, int]]) -> None: ...

    def set_targets(self, room: str, nodes: Iterable[str]) -> None: ...

    def tick(self) -> None: ...


def _text(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def parse_address(raw: str) -> tuple[str, int] | None:
    host, sep, port = raw.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        return None
    return host.strip("[]"), int(port)


class RelayDirectory:
    """Keeps this node's relay registered and its rooms' targets current."""

    def __init__(self, redis: Any, relay: RelayPort) -> None:
        self.redis = redis
        self.relay = relay
        self._registered: set[str] = set()
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Refresh now (a room opened here), not at the next period."""
        self._wake.set()

    async def run(self) -> None:
        while True:
            try:
                await self.refresh()
            except (RedisError, OSError) as exc:
                log.warning("relay directory not refreshed: %s", exc)
            except Exception:
                log.exception("relay directory failed")
            self.relay.tick()
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), EVERY)
            except TimeoutError:
                pass

    async def refresh(self) -> None:
        relay, node = self.relay, self.relay.node
        rooms = sorted(relay.rooms_served())
        pipe = self.redis.pipeline(transaction=False)
        pipe.set(address_key(node), relay.address, ex=ADDRESS_TTL)
        pipe.sadd(NODES, node)
        for room in rooms:
            pipe.hset(room_key(room), node, "1")
            pipe.expire(room_key(room), ROOM_TTL)
        for room in self._registered - set(rooms):
            pipe.hdel(room_key(room), node)
        pipe.smembers(NODES)
        for room in rooms:
            pipe.hkeys(room_key(room))
        results = await pipe.execute()
        self._registered = set(rooms)
        members = [[_text(n) for n in keys] for keys in results[len(results) - len(rooms) :]]
        nodes = sorted({_text(n) for n in results[len(results) - len(rooms) - 1]} - {node})
        peers: dict[str, tuple[str, int]] = {}
        if nodes:
            raw = await self.redis.mget([address_key(n) for n in nodes])
            gone = []
            for n, value in zip(nodes, raw, strict=True):
                address = parse_address(_text(value)) if value is not None else None
                if address is not None:
                    peers[n] = address
                else:
                    gone.append(n)
            if gone:  # stopped: it adds itself again when it comes back
                await self.redis.srem(NODES, *gone)
        relay.set_peers(peers)
        for room, keys in zip(rooms, members, strict=True):
            relay.set_targets(room, [n for n in keys if n in peers])
