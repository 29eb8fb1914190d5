"""Local connections and the fast path that writes frames to them.

Writes are coalesced: a frame for a connection is appended to its outbox,
and all outboxes are flushed once per event-loop turn, each with a single
``transport.write``, so a burst of N messages to a client costs one system
call and the fan-out loop itself never awaits.  Under load the flush also
waits a little for more frames: the wait grows with the rate of queued
frames (see ``gather_delay``), so up to 100,000 frames a second nothing
waits, and near saturation a write carries dozens of frames, not a few.
And a flush waits one loop turn (no timer) when a client's message was read
after it was scheduled: that message is handled in the next turn, and its
frames then go out in the same writes (see ``note_read``).

A client whose kernel buffer stays full accumulates bytes in the transport;
past the configured limit it is dropped, so one slow reader never stalls
the room.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger(__name__)

#: Below this many frames queued per second (100 msgs/s in a room of 1,000, or 1,000
#: msgs/s in a room of 100), a flush runs in the same loop turn.
GATHER_FROM_RATE = 100_000.0
#: Above it, a flush waits this many seconds per (frame/s): 1 ms at 200,000 frames/s...
GATHER_PER_RATE = 5e-9
#: ...up to this wait (reached at 1,000,000 frames/s).
GATHER_MAX = 0.005
#: The frame rate is re-estimated over windows of this many seconds.
RATE_WINDOW = 0.05


def gather_delay(rate: float) -> float:
    """How long a flush waits for more frames when ``rate`` frames/s are queued.

    A loopback ``write()`` costs microseconds whatever it carries, so a
    saturated server spends most of its time in writes unless each carries
    many frames.  The wait is proportional to the rate: the latency it adds
    stays a small share of what queueing would cost at that load, and the
    frames per write (per-client rate x wait) grow with the square of the rate.
    """
    if rate < GATHER_FROM_RATE:
        return 0.0
    return min(GATHER_MAX, rate * GATHER_PER_RATE)


class Owner(Protocol):
    def too_slow(self, conn: Connection) -> None:
        """The hub dropped ``conn``: it did not read what it was sent."""


class Connection:
    """One WebSocket client as the fan-out sees it."""

    __slots__ = (
        "transport",
        "pid",
        "room",
        "outbox",
        "ready",
        "closed",
        "on_overflow",
        "owner",
        "peer",
    )

    def __init__(self, transport: asyncio.Transport, peer: str) -> None:
        self.transport = transport
        self.peer = peer
        self.pid: str | None = None
        self.room: str | None = None
        self.outbox: list[bytes] = []
        #: False until ``welcome`` is queued: frames wait in the outbox meanwhile.
        self.ready = False
        self.closed = False
        self.on_overflow: Callable[[Connection], None] | None = None
        #: Told (``too_slow``) when no ``on_overflow`` is set: the session itself, which
        #: costs nothing per socket, where a bound method is one more object for the
        #: garbage collector to scan (10,000 of them in a room of 10,000).
        self.owner: Owner | None = None


class Hub:
    """The connections of this process, by room and by participant id."""

    def __init__(self, max_outgoing_buffer: int) -> None:
        self.max_outgoing_buffer = max_outgoing_buffer
        self.rooms: dict[str, dict[str, Connection]] = {}
        self.by_pid: dict[str, Connection] = {}
        self.connections: set[Connection] = set()
        self._dirty: list[Connection] = []
        self._flush_scheduled = False
        self._loop: asyncio.AbstractEventLoop | None = None
        #: Frames written to clients (a delivery = one frame to one client), and the
        #: ``write()`` calls of the flushes that carried them.
        self.frames_out = 0
        self.writes = 0
        #: A client's message was read after the pending flush was scheduled, and the
        #: flush has already waited its one turn for such frames.
        self._read_since = False
        self._waited = False
        #: Client messages read so far (``note_read``): the store's commit of a loop
        #: turn waits for one read meanwhile the same way (store/sql.py).
        self.reads = 0
        #: Frames queued since ``_window_start`` (counted per message: as many as it
        #: has recipients), and the rate measured over the last full window (frames/s).
        self._queued = 0
        self._window_start = 0.0
        self.rate = 0.0

    # -- membership ------------------------------------------------------------

    def attach(self, conn: Connection, room: str, pid: str) -> None:
        conn.room, conn.pid = room, pid
        self.rooms.setdefault(room, {})[pid] = conn
        self.by_pid[pid] = conn

    def detach(self, conn: Connection) -> None:
        """Forget ``conn`` (idempotent); a newer connection of the same id is kept."""
        self.connections.discard(conn)
        pid, room = conn.pid, conn.room
        if pid is None or room is None:
            return
        if self.by_pid.get(pid) is conn:
            del self.by_pid[pid]
        members = self.rooms.get(room)
        if members is not None and members.get(pid) is conn:
            del members[pid]
            if not members:
                del self.rooms[room]

    # -- sending ---------------------------------------------------------------

    def send(self, conn: Connection, frame: bytes) -> None:
        """Queue ``frame`` for ``conn``; it is written at the next flush."""
        if conn.closed:
            return
        self._queued += 1
        if not conn.outbox and conn.ready:
            self._dirty.append(conn)
            self._schedule()
        conn.outbox.append(frame)

    def deliver(
        self, room: str, frame: bytes, to: tuple[str, ...] | None, exclude: str | None
    ) -> None:
        """The broker's callback: queue ``frame`` for the room's local connections."""
        if to is not None:
            for pid in to:  # send() counts each queued frame
                conn = self.by_pid.get(pid)
                if conn is not None and conn.room == room:
                    self.send(conn, frame)
            return
        members = self.rooms.get(room)
        if not members:
            return
        self._queued += len(members)
        dirty = self._dirty
        for pid, conn in members.items():
            if pid == exclude or conn.closed:
                continue
            outbox = conn.outbox
            if not outbox and conn.ready:
                dirty.append(conn)
            outbox.append(frame)
        self._schedule()

    def release(self, conn: Connection, first: bytes) -> None:
        """Mark ``conn`` ready with ``first`` (its welcome) ahead of anything queued."""
        conn.outbox.insert(0, first)
        conn.ready = True
        self._dirty.append(conn)
        self._schedule()

    def note_read(self) -> None:
        """A client's message was read and will be handled in the next loop turn.

        If a flush is pending, it waits one turn (once) so that the frames this
        message queues go out in the same writes: each ``write()`` to a loopback or
        LAN socket costs about 10 us of kernel time whatever it carries, and a chat
        message to 100 people is 100 of them.  Without a timer, so the wait is only
        as long as the handling of what was already read.
        """
        self.reads += 1
        if self._flush_scheduled:
            self._read_since = True

    def _schedule(self) -> None:
        if not self._flush_scheduled and self._dirty:
            self._flush_scheduled = True
            loop = self._loop
            if loop is None:
                loop = self._loop = asyncio.get_running_loop()
            now = loop.time()
            elapsed = now - self._window_start
            if elapsed >= RATE_WINDOW:
                # After a quiet spell the window is long and the rate low: no stale wait.
                self.rate = self._queued / elapsed
                self._queued = 0
                self._window_start = now
            delay = gather_delay(self.rate)
            if delay:
                loop.call_later(delay, self.flush)
            else:
                loop.call_soon(self.flush)

    def flush(self) -> None:
        """Write every pending outbox with one ``transport.write`` each."""
        if self._read_since and not self._waited:
            self._waited = True  # once: under a steady stream of reads it must not starve
            self._read_since = False
            loop = self._loop
            assert loop is not None  # set by _schedule
            loop.call_soon(self.flush)
            return
        self._read_since = self._waited = False
        self._flush_scheduled = False
        dirty, self._dirty = self._dirty, []
        limit = self.max_outgoing_buffer
        frames = writes = 0
        for conn in dirty:
            outbox = conn.outbox
            if not outbox or conn.closed:
                outbox.clear()
                continue
            frames += len(outbox)
            data = outbox[0] if len(outbox) == 1 else b"".join(outbox)
            outbox.clear()
            transport = conn.transport
            if transport.is_closing():
                continue
            transport.write(data)
            writes += 1
            if transport.get_write_buffer_size() > limit:
                self._overflow(conn)
        self.frames_out += frames
        self.writes += writes

    def flush_one(self, conn: Connection) -> None:
        """Write ``conn``'s outbox now (before closing it, or before it has joined)."""
        outbox = conn.outbox
        if outbox and not conn.closed:
            self.frames_out += len(outbox)
            self.write(conn, b"".join(outbox))
        outbox.clear()

    def write(self, conn: Connection, data: bytes) -> None:
        """Write ``data`` to ``conn`` now, under the same buffer limit as the fan-out.

        For what bypasses the outbox (pongs, answers before a join): a client that
        asks for them and never reads is dropped like any slow reader.
        """
        transport = conn.transport
        if conn.closed or transport.is_closing():
            return
        transport.write(data)
        if transport.get_write_buffer_size() > self.max_outgoing_buffer:
            self._overflow(conn)

    def _overflow(self, conn: Connection) -> None:
        log.warning(
            "dropping %s (%s): over %d bytes queued", conn.pid, conn.peer, self.max_outgoing_buffer
        )
        conn.closed = True
        if conn.on_overflow is not None:
            conn.on_overflow(conn)
        elif conn.owner is not None:
            conn.owner.too_slow(conn)
