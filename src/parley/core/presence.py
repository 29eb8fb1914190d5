"""Presence in big rooms: joins, leaves and changes batched into one frame per window.

In a small room every join, leave and change goes to everyone at once
(``participant-joined`` / ``-left`` / ``-updated``).  In a room of N people that
costs N frames per event, so filling a room costs N² frames.  Once a room holds
more than ``threshold`` people (``--presence-threshold``, 100 by default), each
event is recorded in the room's pending batch instead, and one ``presence`` frame
per window carries them all: filling the room then costs N frames per window,
whatever the join rate.  The window grows with the room (``window_ms``: 0.5 s up to
2,500 people, then 0.2 ms a person, at most 2 s from 10,000 on), so that the frames
a second a room costs stay bounded however big it gets: a frame to everyone every
0.5 s in a room of 10,000 would be 20,000 socket writes a second for presence alone.
A batch holds at most ``MAX_BATCH`` entries; past that it keeps nothing but the fact
(``truncated``: the frame carries the count only, and clients page the roster again),
so a room's pending state stays bounded whatever happens in it.  A truncated window
(a flood: hundreds of joins a second) is stretched to ``FLOOD_WINDOW_MS``: its frame
says nothing but the count, and sending that to everyone every 0.5-2 s was most of
the cost of filling a room of 10,000 (docs/benchmarks.md, 13.2).

While a batch is pending every event of that room joins it, even if the room
shrank meanwhile, so that no immediate frame overtakes what is still pending.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from . import protocol as p
from .effects import Deliver, Effect, PresenceDue
from .state import Room

#: Milliseconds between a big room's first pending event and the frame that carries it
#: (the shortest window: any big room of up to 2,500 people).
WINDOW_MS = 500
#: The window of a bigger room: this many milliseconds per person in it...
WINDOW_MS_PER_PERSON = 0.2
#: ...up to this (a room of 10,000 or more: presence, hands and counts up to 2 s late).
MAX_WINDOW_MS = 2000
#: Entries (joined + left + updated) one presence frame carries; past it, the count only.
MAX_BATCH = 100
#: A truncated window (a flood of changes) lasts this long from its first event.
FLOOD_WINDOW_MS = 5000


@dataclass(slots=True)
class Batch:
    """A room's events since its last presence frame (each id in at most one list)."""

    joined: dict[str, p.Participant] = field(default_factory=dict)
    left: dict[str, str] = field(default_factory=dict)  # id -> reason
    updated: dict[str, p.Participant] = field(default_factory=dict)
    #: Joined in this window: a leave in the same window cancels the join outright.
    fresh: set[str] = field(default_factory=set)
    truncated: bool = False
    #: When its first event came (ms since the epoch).
    opened_ms: int = 0

    def size(self) -> int:
        return len(self.joined) + len(self.left) + len(self.updated)


def window_ms(size: int) -> int:
    """The presence window of a big room of ``size`` people (milliseconds)."""
    return min(MAX_WINDOW_MS, max(WINDOW_MS, round(size * WINDOW_MS_PER_PERSON)))


class Presence:
    """Pending presence batches by room; every method returns the effects to carry out."""

    def __init__(self, threshold: int, now_ms: Callable[[], int]) -> None:
        self.threshold = threshold
        self._now_ms = now_ms
        self._batches: dict[str, Batch] = {}

    def is_big(self, room: Room) -> bool:
        """More than ``threshold`` people: welcome carries a first page, not everyone."""
        return len(room.members) > self.threshold

    def _batch(self, room: Room, gone: int = 0) -> tuple[Batch | None, list[Effect]]:
        """The room's pending batch (opened, with its wake-up, if the room is big;
        ``gone``: people who just left it, counted as in it for that)."""
        batch = self._batches.get(room.name)
        if batch is not None:
            return batch, []
        size = len(room.members) + gone
        if size <= self.threshold:
            return None, []
        now = self._now_ms()
        batch = self._batches[room.name] = Batch(opened_ms=now)
        return batch, [PresenceDue(room.name, now + window_ms(size))]

    def _full(self, batch: Batch) -> bool:
        if batch.truncated:
            return True
        if batch.size() >= MAX_BATCH:
            batch.truncated = True
            batch.joined.clear()
            batch.left.clear()
            batch.updated.clear()
            batch.fresh.clear()
            return True
        return False

    def joined(self, room: Room, info: p.Participant) -> list[Effect]:
        """``info`` entered ``room`` (already a member)."""
        batch, effects = self._batch(room)
        if batch is None:
            return [Deliver(room.name, p.ParticipantJoined(participant=info), exclude=info.id)]
        pid = info.id
        if self._full(batch):
            return effects
        if batch.left.pop(pid, None) is None:
            batch.fresh.add(pid)  # (left and back in one window: not fresh, it was known)
        batch.updated.pop(pid, None)
        batch.joined[pid] = info  # the live object: the frame shows its state when sent
        return effects

    def left(self, room: Room, pid: str, reason: str, exclude: str | None = None) -> list[Effect]:
        """``pid`` is no longer in ``room``."""
        batch, effects = self._batch(room, gone=1)
        if batch is None:
            return [Deliver(room.name, p.ParticipantLeft(id=pid, reason=reason), exclude=exclude)]
        if self._full(batch):
            return effects
        batch.joined.pop(pid, None)
        batch.updated.pop(pid, None)
        if pid in batch.fresh:
            batch.fresh.discard(pid)  # came and went unseen
        else:
            batch.left[pid] = reason
        return effects

    def updated(self, room: Room, info: p.Participant) -> list[Effect]:
        """``info`` changed (name, role, devices, hand)."""
        batch, effects = self._batch(room)
        if batch is None:
            return [Deliver(room.name, p.ParticipantUpdated(participant=info))]
        if self._full(batch) or info.id in batch.joined:
            return effects  # a pending join sends the state of the moment anyway
        batch.updated[info.id] = info
        return effects

    def flush(self, room: Room | None, room_name: str) -> list[Effect]:
        """The window of ``room_name`` ended: its one presence frame (or, for a flood,
        the wake-up at the end of its stretched window)."""
        batch = self._batches.get(room_name)
        if batch is None or room is None:
            self._batches.pop(room_name, None)
            return []
        if batch.truncated:
            due = batch.opened_ms + FLOOD_WINDOW_MS
            if self._now_ms() < due:
                return [PresenceDue(room_name, due)]
        del self._batches[room_name]
        out = p.PresenceOut(
            joined=list(batch.joined.values()),
            left=[p.Departure(id=pid, reason=reason) for pid, reason in batch.left.items()],
            updated=list(batch.updated.values()),
            count=len(room.members),
            truncated=batch.truncated,
        )
        return [Deliver(room_name, out)]

    def forget(self, room_name: str) -> None:
        """The meeting ended: what was pending goes with it (a new one starts afresh)."""
        self._batches.pop(room_name, None)

    def pending(self, room_name: str) -> bool:
        return room_name in self._batches


def as_events(
    out: p.PresenceOut,
) -> list[p.ParticipantLeft | p.ParticipantJoined | p.ParticipantUpdated]:
    """A presence frame as the single events it stands for, in the order to apply them."""
    events: list[p.ParticipantLeft | p.ParticipantJoined | p.ParticipantUpdated] = [
        p.ParticipantLeft(id=d.id, reason=d.reason) for d in out.left
    ]
    events += [p.ParticipantJoined(participant=i) for i in out.joined]
    events += [p.ParticipantUpdated(participant=i) for i in out.updated]
    return events
