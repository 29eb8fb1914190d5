"""Breakout rooms: a meeting splits into child rooms and comes back, on the same sockets.

A breakout is an ordinary room named ``<main>~<n>`` (``~`` never appears in a room name
a person can type, so nobody joins one by its address): it has its own members, media
and chat history (stored under that name, which links it to the main meeting).  A
participant moves between the main room and its breakouts without leaving the meeting:
:meth:`Membership.move` takes it out of one room and puts it into the other, and the
``Moved`` effect re-homes its socket and welcomes it into the new room.

The rules here decide who moves where and when; the timers (a duration that ends, the
30-second warning before a close) are ``Wake`` effects that call :meth:`Breakouts.due`.
Plain objects, no I/O.

In a cluster the open breakouts are journalled (kind "breakouts") and mirrored on every
node of the meeting (:meth:`Breakouts.put_remote`); any node may move anyone (a socket
on another node follows through its node).  Every node arms the timers, but only the
node that acts for the meeting (:meth:`Breakouts.acts_for`) brings people back: the
others look again later, so the next node takes over when that one stops.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol

from . import protocol as p
from .effects import Deliver, Effect, Note, RoomEmptied, SaveMeeting, Wake
from .events import MeetingEvent
from .protocol import ErrorCode, ProtocolError
from .state import Member, Room

SEPARATOR: Final = "~"
#: Breakout rooms one meeting may open at once.
MAX_BREAKOUTS: Final = 20
#: Characters of a breakout's name.
MAX_TITLE_CHARS: Final = 40
#: A duration, in seconds: at least this (so that a mistake is not an instant return) ...
MIN_DURATION: Final = 10
#: ... and at most a day.
MAX_DURATION: Final = 24 * 3600
#: Warning before a host's close brings everyone back (ms), unless the server sets
#: another (``Limits.breakout_close_warning``).
CLOSE_WARNING_MS: Final = 30_000
#: A node that does not act for a meeting looks again this much later (ms), to take
#: over if the node that acts has stopped (its people are reaped meanwhile).
TAKEOVER_MS: Final = 2_000


_RANDOM: Final = random.SystemRandom()


def main_of(room: str) -> str:
    """The main room of ``room`` (itself, unless it is a breakout)."""
    return room.split(SEPARATOR, 1)[0]


def breakout_name(main: str, index: int) -> str:
    return f"{main}{SEPARATOR}{index + 1}"


def is_breakout(room: str) -> bool:
    return SEPARATOR in room


def _stores_last(effects: list[Effect]) -> list[Effect]:
    """Many moves at once: every socket moves first, then the store writes (each awaited
    in turn by the executor), each room's meeting saved once."""
    moves = [e for e in effects if not isinstance(e, SaveMeeting | RoomEmptied | Note)]
    logged: dict[str, list[MeetingEvent]] = {}
    for e in effects:
        if isinstance(e, SaveMeeting):
            logged.setdefault(e.room, []).extend(e.events)  # every event, in order
    saves: list[Effect] = [SaveMeeting(room, tuple(events)) for room, events in logged.items()]
    rest = [e for e in effects if isinstance(e, RoomEmptied | Note)]
    return moves + saves + rest


class Membership(Protocol):
    """What the breakout rules need of :class:`parley.core.rooms.Rooms`."""

    def member(self, pid: str, ref: str | None = None) -> Member: ...

    def require_host(self, pid: str, ref: str | None = None) -> Member: ...

    def room(self, room_name: str) -> Room | None: ...

    def rooms_free(self) -> int:
        """How many more rooms may open on this server."""

    def move(self, pid: str, room: str) -> list[Effect]: ...

    def now_ms(self) -> int: ...

    @property
    def node(self) -> str:
        """This server node's id (the timers act on one node of a cluster)."""


@dataclass(slots=True)
class BreakoutSet:
    """The open breakouts of one meeting."""

    main: str
    titles: list[str]
    opened_by: str
    ends_at: int | None = None
    closing_at: int | None = None
    rooms: list[str] = field(default_factory=list)

    def deadline(self) -> int | None:
        times = [t for t in (self.ends_at, self.closing_at) if t is not None]
        return min(times) if times else None


class Breakouts:
    def __init__(
        self,
        rooms: Membership,
        *,
        max_text: int,
        close_warning_ms: int = CLOSE_WARNING_MS,
        shuffle: Callable[[list[str]], None] = _RANDOM.shuffle,
        journal: Callable[[tuple[str, str, str | None]], None] = lambda entry: None,
    ) -> None:
        self.rooms = rooms
        #: Appends to the owning ``Rooms``' journal: ("breakouts", main, None) when a
        #: meeting's breakouts opened, changed deadline or closed.
        self.journal = journal
        self.max_text = max_text
        self.close_warning_ms = close_warning_ms
        self.shuffle = shuffle
        self.sets: dict[str, BreakoutSet] = {}

    # -- queries ---------------------------------------------------------------------------

    def is_open(self, main: str) -> bool:
        return main in self.sets

    def here(self, room: str) -> p.BreakoutHere | None:
        """For a welcome into ``room``: its breakout details (None: not a breakout)."""
        bset = self.sets.get(main_of(room))
        if bset is None or room not in bset.rooms:
            return None
        index = bset.rooms.index(room)
        return p.BreakoutHere(
            main=bset.main,
            index=index,
            title=bset.titles[index],
            ends_at=bset.ends_at,
            closing_at=bset.closing_at,
        )

    def state(self, main: str) -> p.BreakoutsState:
        bset = self.sets.get(main)
        if bset is None:
            return p.BreakoutsState(main=main, open=False)
        out = []
        for index, (name, title) in enumerate(zip(bset.rooms, bset.titles, strict=True)):
            room = self.rooms.room(name)
            people = list(room.members.values()) if room is not None else []
            out.append(
                p.BreakoutRoom(
                    index=index,
                    title=title,
                    room=name,
                    members=[m.info.id for m in people],
                    names=[m.info.name for m in people],
                )
            )
        return p.BreakoutsState(
            main=main, open=True, rooms=out, ends_at=bset.ends_at, closing_at=bset.closing_at
        )

    def state_for(self, room: str, pid: str) -> list[Effect]:
        """What someone who just entered a room of a meeting with open breakouts needs."""
        main = main_of(room)
        if main not in self.sets:
            return []
        return [Deliver(room, p.BreakoutsOut(state=self.state(main)), to=(pid,))]

    def _family(self, main: str) -> list[str]:
        bset = self.sets.get(main)
        return [main, *(bset.rooms if bset is not None else [])]

    def _announce(self, main: str) -> list[Effect]:
        """The breakouts' state to every room of the meeting."""
        out = p.BreakoutsOut(state=self.state(main))
        return [Deliver(room, out) for room in self._family(main)]

    def _set(self, member: Member, ref: str | None) -> BreakoutSet:
        bset = self.sets.get(main_of(member.room))
        if bset is None:
            raise ProtocolError(ErrorCode.NO_BREAKOUTS, "no breakout rooms are open", ref)
        return bset

    def _target(self, bset: BreakoutSet, index: int | None, ref: str | None) -> str:
        if index is None:
            return bset.main
        if not 0 <= index < len(bset.rooms):
            raise ProtocolError(
                ErrorCode.NO_SUCH_BREAKOUT,
                f"breakout rooms are numbered 0-{len(bset.rooms) - 1}",
                ref,
            )
        return bset.rooms[index]

    # -- requests --------------------------------------------------------------------------

    def handle(self, pid: str, msg: p.ClientMessage) -> list[Effect]:
        match msg:
            case p.BreakoutsOpen():
                return self.open(self.rooms.require_host(pid, msg.ref), msg)
            case p.BreakoutAssign():
                return self.assign(self.rooms.require_host(pid, msg.ref), msg)
            case p.BreakoutVisit():
                return self.visit(self.rooms.require_host(pid, msg.ref), msg)
            case p.BreakoutsClose():
                return self.close(self.rooms.require_host(pid, msg.ref), msg)
            case p.BreakoutHelp():
                return self.help(self.rooms.member(pid, msg.ref), msg)
            case p.BreakoutBroadcast():
                return self.broadcast(self.rooms.require_host(pid, msg.ref), msg)
        raise ProtocolError(ErrorCode.BAD_MESSAGE, "not a breakout request", msg.ref)

    def open(self, host: Member, msg: p.BreakoutsOpen) -> list[Effect]:
        ref = msg.ref
        main = main_of(host.room)
        if main in self.sets:
            raise ProtocolError(ErrorCode.BREAKOUTS_OPEN, "breakout rooms are already open", ref)
        if host.room != main:
            raise ProtocolError(ErrorCode.FORBIDDEN, "open breakouts from the main room", ref)
        if not 1 <= len(msg.names) <= MAX_BREAKOUTS:
            raise ProtocolError(
                ErrorCode.BAD_MESSAGE, f"open 1 to {MAX_BREAKOUTS} breakout rooms", ref
            )
        titles = [n.strip() or f"Room {i + 1}" for i, n in enumerate(msg.names)]
        if any(len(t) > MAX_TITLE_CHARS for t in titles):
            raise ProtocolError(
                ErrorCode.TOO_LONG,
                f"a breakout's name is at most {MAX_TITLE_CHARS} characters",
                ref,
            )
        if msg.duration is not None and not MIN_DURATION <= msg.duration <= MAX_DURATION:
            raise ProtocolError(
                ErrorCode.BAD_MESSAGE,
                f"a duration is {MIN_DURATION}-{MAX_DURATION} seconds",
                ref,
            )
        room = self.rooms.room(main)
        assert room is not None  # the host is in it
        for pid, index in msg.assign.items():
            if pid not in room.members:
                raise ProtocolError(
                    ErrorCode.NO_SUCH_PARTICIPANT, f"no participant {pid!r} in this room", ref
                )
            if not 0 <= index < len(titles):
                raise ProtocolError(
                    ErrorCode.NO_SUCH_BREAKOUT,
                    f"breakout rooms are numbered 0-{len(titles) - 1}",
                    ref,
                )
        if self.rooms.rooms_free() < len(titles):
            raise ProtocolError(
                ErrorCode.TOO_MANY, "this server cannot open that many rooms now", ref
            )
        plan = dict(msg.assign)
        if msg.auto:
            plan.update(self._spread(room, plan, len(titles)))
        now = self.rooms.now_ms()
        bset = BreakoutSet(
            main=main,
            titles=titles,
            opened_by=host.info.id,
            ends_at=now + msg.duration * 1000 if msg.duration is not None else None,
            rooms=[breakout_name(main, i) for i in range(len(titles))],
        )
        self.sets[main] = bset
        self.journal(("breakouts", main, None))  # shared before anyone moves into them
        effects: list[Effect] = []
        for pid, index in plan.items():
            effects += self.rooms.move(pid, bset.rooms[index])
        effects += self._announce(main)
        effects.append(Note(main, f"{host.info.name} opened {len(titles)} breakout rooms"))
        effects = _stores_last(effects)
        if bset.ends_at is not None:
            effects.append(Wake(main, bset.ends_at))
        return effects

    def _spread(self, room: Room, fixed: dict[str, int], count: int) -> dict[str, int]:
        """Everyone not placed by hand, at random, to the emptiest room: not hosts (they
        visit), nor bots (a recorder or a helper serves the main room)."""
        sizes = [0] * count
        for index in fixed.values():
            sizes[index] += 1
        free = [
            pid
            for pid, m in room.members.items()
            if pid not in fixed and m.info.role not in ("host", "bot")
        ]
        self.shuffle(free)
        plan = {}
        for pid in free:
            index = min(range(count), key=lambda i: (sizes[i], i))
            sizes[index] += 1
            plan[pid] = index
        return plan

    def assign(self, host: Member, msg: p.BreakoutAssign) -> list[Effect]:
        bset = self._set(host, msg.ref)
        target = self._target(bset, msg.room, msg.ref)
        member = self._in_meeting(bset, msg.to, msg.ref)
        if member.room == target:
            return []
        return self.rooms.move(msg.to, target) + self._announce(bset.main)

    def visit(self, host: Member, msg: p.BreakoutVisit) -> list[Effect]:
        bset = self._set(host, msg.ref)
        target = self._target(bset, msg.room, msg.ref)
        if host.room == target:
            return []
        return self.rooms.move(host.info.id, target) + self._announce(bset.main)

    def _in_meeting(self, bset: BreakoutSet, pid: str, ref: str | None) -> Member:
        for name in self._family(bset.main):
            room = self.rooms.room(name)
            if room is not None and pid in room.members:
                return room.members[pid]
        raise ProtocolError(
            ErrorCode.NO_SUCH_PARTICIPANT, f"no participant {pid!r} in this meeting", ref
        )

    def close(self, host: Member, msg: p.BreakoutsClose) -> list[Effect]:
        bset = self._set(host, msg.ref)
        if bset.closing_at is not None:
            return []
        bset.closing_at = self.rooms.now_ms() + self.close_warning_ms
        self.journal(("breakouts", bset.main, None))
        notes = [
            Note(room, f"{host.info.name} closed the breakout rooms: back in 30 seconds")
            for room in bset.rooms
        ]
        return [*self._announce(bset.main), *notes, Wake(bset.main, bset.closing_at)]

    def help(self, member: Member, msg: p.BreakoutHelp) -> list[Effect]:
        bset = self._set(member, msg.ref)
        if member.room not in bset.rooms:
            raise ProtocolError(ErrorCode.NO_BREAKOUTS, "you are not in a breakout room", msg.ref)
        index = bset.rooms.index(member.room)
        out = p.BreakoutHelpOut(
            sender=member.info.id, name=member.info.name, index=index, title=bset.titles[index]
        )
        effects: list[Effect] = []
        for name in self._family(bset.main):
            room = self.rooms.room(name)
            hosts = room.hosts() if room is not None else ()
            if hosts:
                effects.append(Deliver(name, out, to=hosts))
        return effects

    def broadcast(self, host: Member, msg: p.BreakoutBroadcast) -> list[Effect]:
        bset = self._set(host, msg.ref)
        text = msg.text.strip()
        if not text:
            raise ProtocolError(ErrorCode.EMPTY, "the message is empty", msg.ref)
        if len(text) > self.max_text:
            raise ProtocolError(
                ErrorCode.TOO_LONG, f"a message is at most {self.max_text} characters", msg.ref
            )
        out = p.BreakoutMessage(sender=host.info.id, name=host.info.name, text=text)
        effects: list[Effect] = []
        for name in self._family(bset.main):
            effects.append(Deliver(name, out))
            effects.append(Note(name, f"{host.info.name} to all rooms: {text}"))
        return effects

    # -- time ------------------------------------------------------------------------------

    def due(self, main: str) -> list[Effect]:
        """A ``Wake``: bring everyone back if the duration or the warning ran out."""
        bset = self.sets.get(main)
        deadline = bset.deadline() if bset is not None else None
        if bset is None or deadline is None:
            return []
        now = self.rooms.now_ms()
        if now < deadline:
            return [Wake(main, deadline)]  # woken early (or an old wake): sleep again
        if not self.acts_for(main):
            return [Wake(main, now + TAKEOVER_MS)]  # another node brings them back
        return self.return_all(main)

    def acts_for(self, main: str) -> bool:
        """Whether this node carries out the meeting's timers: the lowest node id among
        the nodes of its participants (the same answer on every node, from the mirrored
        state; when that node stops and its people are reaped, the next one acts)."""
        nodes = {m.node for name in self._family(main) for m in self._members(name)}
        return not nodes or min(nodes) == self.rooms.node

    def _members(self, name: str) -> Iterable[Member]:
        room = self.rooms.room(name)
        return room.members.values() if room is not None else ()

    def return_all(self, main: str) -> list[Effect]:
        bset = self.sets.get(main)
        if bset is None:
            return []
        effects: list[Effect] = []
        for name in bset.rooms:
            room = self.rooms.room(name)
            for pid in list(room.members) if room is not None else []:
                effects += self.rooms.move(pid, main)
        del self.sets[main]
        self.journal(("breakouts", main, None))
        effects += self._announce(main)
        effects.append(Note(main, "The breakout rooms closed: everyone is back"))
        return _stores_last(effects)

    def forget(self, main: str) -> Sequence[str]:
        """The meeting ended: its breakouts go (returns their room names, to end them too)."""
        bset = self.sets.pop(main, None)
        return bset.rooms if bset is not None else ()

    # -- replication: breakouts another node opened, changed or closed --------------------

    def put_remote(self, bset: BreakoutSet) -> list[Effect]:
        """Mirror another node's open breakouts (no journal); a new deadline arms a timer
        here too (see :meth:`acts_for`)."""
        old = self.sets.get(bset.main)
        self.sets[bset.main] = bset
        deadline = bset.deadline()
        if deadline is None or (old is not None and old.deadline() == deadline):
            return []
        return [Wake(bset.main, deadline)]

    def drop_remote(self, main: str) -> None:
        """Another node closed the meeting's breakouts (or this node stops following it)."""
        self.sets.pop(main, None)
