"""Reordering one RTP stream by sequence number, with a bounded wait for late packets.

Packets reach the SFU out of order (network reordering, and NACKed packets that arrive
again 50-300 ms later).  A recording needs them in order, and needs to know where one
is missing for good: :class:`ReorderBuffer` releases packets in sequence, and when a
hole stays open longer than ``max_wait`` seconds, or ``capacity`` packets wait behind
it, it gives the hole up and releases a ``None`` (a gap) in its place.  Memory is
bounded by ``capacity`` packets per stream.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Generic, TypeVar

__all__ = ["Packet", "ReorderBuffer"]

T = TypeVar("T")
#: What the recording queues: (the forwarder's Source, the RTP packet, arrival time)
Packet = tuple[Any, bytes, float]


class ReorderBuffer(Generic[T]):
    """One stream's packets back in order; ``None`` in the output marks lost packets."""

    __slots__ = ("capacity", "max_wait", "_next", "_waiting", "_hole_since", "late", "lost")

    def __init__(self, capacity: int = 256, max_wait: float = 0.3) -> None:
        self.capacity = capacity
        self.max_wait = max_wait
        self._next = -1  # extended sequence number expected next (-1: none yet)
        self._waiting: dict[int, T] = {}
        self._hole_since = 0.0
        self.late = 0  # packets that came after their place was given up (or duplicates)
        self.lost = 0  # packets given up

    def __len__(self) -> int:
        return len(self._waiting)

    def take(self, seq: int) -> bool:
        """True when packet ``seq`` is the one expected next and nothing waits: it is
        released as it is (the caller uses it at once; the common case, with no list
        to build).  False: :meth:`push` it."""
        nxt = self._next
        if nxt >= 0 and seq == nxt & 0xFFFF and not self._waiting:
            self._next = nxt + 1
            return True
        return False

    def push_packets(
        self: ReorderBuffer[Packet], items: Sequence[Packet]
    ) -> Sequence[Packet | None]:
        """:meth:`push` each of ``items`` (the sequence number read from the RTP
        header, the time from the item), in one loop: what can be released, in order.
        The common case (in order, nothing waiting) is a comparison a packet, and a run
        all in order is returned as it is (no list built)."""
        waiting = self._waiting
        nxt = self._next
        done = 0
        if nxt >= 0 and not waiting:
            for item in items:
                data = item[1]
                if (data[2] << 8) | data[3] != nxt & 0xFFFF:
                    break
                nxt += 1
                done += 1
            self._next = nxt
            if done == len(items):
                return items
        out: list[Packet | None] = list(items[:done])
        for item in items[done:]:
            data = item[1]
            seq = (data[2] << 8) | data[3]
            nxt = self._next
            if nxt >= 0 and seq == nxt & 0xFFFF and not waiting:
                self._next = nxt + 1
                out.append(item)
            else:
                out.extend(self.push(seq, item, item[2]))
        return out

    def push(self, seq: int, item: T, now: float) -> list[T | None]:
        """Add packet ``seq`` (16-bit) arriving at ``now``; returns what can be released."""
        if self._next < 0:
            self._next = seq
        nxt = self._next
        d = (seq - nxt) & 0xFFFF
        ext = nxt + d if d < 0x8000 else nxt + d - 0x10000
        if ext < nxt or ext in self._waiting:
            self.late += 1
            return []
        out: list[T | None] = []
        if ext - nxt >= self.capacity:
            # a jump far ahead (a restart, or a long outage): what waits goes, then a gap
            out.extend(self.flush())
            if out or ext != self._next:
                out.append(None)
            self._next = ext
        if ext == self._next and not self._waiting:
            self._next = ext + 1
            out.append(item)
            return out
        if not self._waiting:
            self._hole_since = now
        self._waiting[ext] = item
        self._release(now, out)
        return out

    def expire(self, now: float) -> list[T | None]:
        """Give up holes that have waited too long (call when no packet arrives)."""
        out: list[T | None] = []
        if self._waiting:
            self._release(now, out)
        return out

    def flush(self) -> list[T | None]:
        """Everything still waiting, in order, with ``None`` for each run of holes."""
        out: list[T | None] = []
        waiting = self._waiting
        for ext in sorted(waiting):
            if ext != self._next:
                self.lost += ext - self._next
                out.append(None)
            out.append(waiting[ext])
            self._next = ext + 1
        waiting.clear()
        return out

    def _release(self, now: float, out: list[T | None]) -> None:
        waiting = self._waiting
        while waiting:
            item = waiting.pop(self._next, None)
            if item is not None:
                out.append(item)
                self._next += 1
                continue
            if len(waiting) < self.capacity and now - self._hole_since < self.max_wait:
                return  # keep waiting for the missing one
            first = min(waiting)
            self.lost += first - self._next
            out.append(None)
            self._next = first
            self._hole_since = now
