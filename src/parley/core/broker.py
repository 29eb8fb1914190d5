"""The broker: every fan-out goes through it.

The in-process broker hands a frame straight to the local hub.  A networked
broker (Redis) publishes it so that every node's hub delivers it to the
connections that node holds; the session code does not change.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

#: Deliver one frame to local connections: (room, frame, only these ids, all but this id).
DeliverFn = Callable[[str, bytes, "tuple[str, ...] | None", "str | None"], None]


class Broker(Protocol):
    async def start(self, deliver: DeliverFn) -> None: ...

    async def close(self) -> None: ...

    def publish(
        self, room: str, frame: bytes, to: tuple[str, ...] | None, exclude: str | None
    ) -> None:
        """Deliver ``frame`` to the room (everyone, only ``to``, or all but ``exclude``)."""


class InProcessBroker:
    """Single-process fan-out: a direct call, no copy, no await."""

    def __init__(self) -> None:
        self._deliver: DeliverFn | None = None

    async def start(self, deliver: DeliverFn) -> None:
        self._deliver = deliver

    async def close(self) -> None:
        self._deliver = None

    def publish(
        self, room: str, frame: bytes, to: tuple[str, ...] | None, exclude: str | None
    ) -> None:
        if self._deliver is not None:
            self._deliver(room, frame, to, exclude)
