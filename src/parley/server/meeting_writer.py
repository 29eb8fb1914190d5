"""Stores who is in each running meeting, batched like the chat's group commit.

A join, a leave or a role change marks its room; one writer task stores the
current state of every marked room, and the events logged with the changes, in
one transaction; everyone who marked a room in that batch is answered when it is
committed.  The state is read from
the core when written, so a burst of joins costs one write, not one per join.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from ..core.events import MeetingEvent
from ..store import MeetingState, Store

log = logging.getLogger(__name__)

#: Each write stores whole meetings (O(N) for a room of N), so once a write held more than
#: PAUSE_FROM people the writer pauses PAUSE_PER_MEMBER a person (at most PAUSE_MAX)
#: before the next: a room of 10,000 filling up is written about once a second (the joins
#: of a pause share the next write, and wait for it: up to a second more for a welcome
#: there), not once per join, which would make filling it cost O(N^2).  At 25 us a person
#: (four writes a second) the writes were 0.7 s of the CPU of 10,000 joins over 20 s.
PAUSE_FROM = 100
PAUSE_PER_MEMBER = 100e-6
PAUSE_MAX = 1.0


class MeetingWriter:
    def __init__(self, store: Store, snapshot: Callable[[str], MeetingState | None]) -> None:
        self._store = store
        self._snapshot = snapshot
        self._dirty: set[str] = set()
        self._events: list[MeetingEvent] = []
        #: Who waits for the next write: a future each (None: nobody marked a room), so
        #: that a cancelled join cancels its own future only.  (One shared future behind
        #: ``asyncio.shield`` made two more futures' worth of callbacks per join: 3 % of
        #: the CPU of 10,000 joins, which all wait here.)
        self._next: list[asyncio.Future[None]] | None = None
        self._task: asyncio.Task[None] | None = None

    async def save(self, room: str, logged: Sequence[MeetingEvent] = ()) -> None:
        """Return once ``room``'s current meeting state, and ``logged``, are stored
        (failures are logged: the meeting goes on; a restart would then restore from
        older state, and those events are not in the log)."""
        self._dirty.add(room)
        self._events.extend(logged)
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        if self._next is None:
            self._next = [done]
        else:
            self._next.append(done)
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._write())
        await done

    async def _write(self) -> None:
        while self._next is not None:
            done, rooms, logged = self._next, self._dirty, self._events
            self._next, self._dirty, self._events = None, set(), []
            meetings = {room: self._snapshot(room) for room in rooms}
            try:
                await self._store.save_meetings(meetings, logged)
            except Exception:
                log.exception("could not store the meeting state of %s", ", ".join(sorted(rooms)))
            for waiter in done:
                if not waiter.done():  # (cancelled: its join was)
                    waiter.set_result(None)
            stored = sum(len(m.members) for m in meetings.values() if m is not None)
            if stored > PAUSE_FROM:
                await asyncio.sleep(min(PAUSE_MAX, stored * PAUSE_PER_MEMBER))

    async def close(self) -> None:
        if self._task is not None:
            await self._task
