"""Polls: a host asks, participants vote, the host closes and everyone sees the results.

Plain rules without I/O, like :mod:`parley.core.rooms` (which owns a :class:`Polls`
and routes ``poll-*`` requests here).  A poll lives in memory while it is open; when
it closes its results go to everyone and into the room's chat history as a system
line (a :class:`Note`), so the meeting record keeps them, and the poll is forgotten.

Who sees what: while a poll is open, hosts get the live counts (and, for a named
poll, who chose what) after every vote; participants see only the question and their
own choices.  Closing sends the results to everyone.  An anonymous poll never sends
who voted for what to anyone; the server keeps the voter ids only so that a vote can
be changed and counted once.

Replication (a cluster): changes are journalled on the owning ``Rooms`` as
``("poll", room, poll_id)`` (the poll's definition or its end) and ``("vote", room,
"<poll_id> <pid>")`` (one voter's choices); the replicator shares them and applies
the others' with :meth:`Polls.put_remote_poll` and :meth:`Polls.put_remote_vote`.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from . import protocol as p
from .effects import Deliver, Effect, Note
from .protocol import ErrorCode, ProtocolError
from .state import Member

#: Options of a poll.
MIN_OPTIONS: Final = 2
MAX_OPTIONS: Final = 10
#: Characters of a question and of one option.
MAX_QUESTION_CHARS: Final = 300
MAX_OPTION_CHARS: Final = 100
#: Polls open at the same time in one room.
MAX_OPEN_POLLS: Final = 3
#: Polls one meeting may start (each closed one writes a line into the history).
MAX_POLLS_PER_MEETING: Final = 50


def new_poll_id() -> str:
    return "poll_" + secrets.token_urlsafe(8)


@dataclass(slots=True)
class Poll:
    id: str
    room: str
    question: str
    options: list[str]
    multiple: bool
    anonymous: bool
    by: str
    created_at: int
    #: Voter id -> chosen option indexes (sorted, distinct).
    votes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    #: Voter id -> display name when voting (named polls only).
    names: dict[str, str] = field(default_factory=dict)
    closed: bool = False

    def counts(self) -> list[int]:
        counts = [0] * len(self.options)
        for choices in self.votes.values():
            for i in choices:
                counts[i] += 1
        return counts

    def info(self, *, results: bool, mine: tuple[int, ...] | None = None) -> p.PollInfo:
        """The poll as a client sees it; ``results``: with counts (hosts, or closed)."""
        info = p.PollInfo(
            id=self.id,
            question=self.question,
            options=list(self.options),
            multiple=self.multiple,
            anonymous=self.anonymous,
            by=self.by,
            closed=self.closed,
            mine=list(mine) if mine is not None else None,
        )
        if results:
            info.voters = len(self.votes)
            info.counts = self.counts()
            if not self.anonymous:
                names: list[list[str]] = [[] for _ in self.options]
                for pid, choices in self.votes.items():
                    for i in choices:
                        names[i].append(self.names.get(pid, pid))
                info.names = [sorted(n) for n in names]
        return info

    def summary(self) -> str:
        """The system line the chat history keeps of the results."""
        counts = self.counts()
        parts = []
        for i, (option, count) in enumerate(zip(self.options, counts, strict=True)):
            text = f"{option}: {count}"
            if not self.anonymous and count:
                chose = sorted(self.names.get(v, v) for v, c in self.votes.items() if i in c)
                text += " (" + ", ".join(chose) + ")"
            parts.append(text)
        voters = len(self.votes)
        return (
            f'Poll closed: "{self.question}" — '
            + "; ".join(parts)
            + f" ({voters} {'voter' if voters == 1 else 'voters'})"
        )


@dataclass(slots=True)
class RoomPolls:
    open: dict[str, Poll] = field(default_factory=dict)
    started: int = 0


class Polls:
    """The open polls of every room.  ``journal`` appends to the owning ``Rooms``' journal."""

    def __init__(self, journal: Callable[[tuple[str, str, str | None]], None]) -> None:
        self.journal = journal
        self.rooms: dict[str, RoomPolls] = {}

    # -- requests ---------------------------------------------------------------------

    def create(
        self, host: Member, msg: p.PollCreate, hosts: tuple[str, ...], now_ms: int
    ) -> list[Effect]:
        """``host`` (already checked to be one) starts a poll."""
        ref = msg.ref
        question = msg.question.strip()
        if not question:
            raise ProtocolError(ErrorCode.EMPTY, "a poll needs a question", ref)
        if len(question) > MAX_QUESTION_CHARS:
            raise ProtocolError(
                ErrorCode.TOO_LONG,
                f"a poll question is at most {MAX_QUESTION_CHARS} characters",
                ref,
            )
        options = [o.strip() for o in msg.options]
        if not MIN_OPTIONS <= len(options) <= MAX_OPTIONS:
            raise ProtocolError(
                ErrorCode.BAD_MESSAGE,
                f"a poll has {MIN_OPTIONS} to {MAX_OPTIONS} options, not {len(options)}",
                ref,
            )
        if any(not o for o in options):
            raise ProtocolError(ErrorCode.EMPTY, "a poll option is empty", ref)
        if any(len(o) > MAX_OPTION_CHARS for o in options):
            raise ProtocolError(
                ErrorCode.TOO_LONG, f"a poll option is at most {MAX_OPTION_CHARS} characters", ref
            )
        if len(set(options)) != len(options):
            raise ProtocolError(ErrorCode.BAD_MESSAGE, "two poll options are the same", ref)
        state = self.rooms.setdefault(host.room, RoomPolls())
        if len(state.open) >= MAX_OPEN_POLLS:
            raise ProtocolError(
                ErrorCode.TOO_MANY, f"at most {MAX_OPEN_POLLS} polls may be open at once", ref
            )
        if state.started >= MAX_POLLS_PER_MEETING:
            raise ProtocolError(
                ErrorCode.TOO_MANY, f"a meeting may run at most {MAX_POLLS_PER_MEETING} polls", ref
            )
        poll = Poll(
            id=new_poll_id(),
            room=host.room,
            question=question,
            options=options,
            multiple=msg.multiple,
            anonymous=msg.anonymous,
            by=host.info.id,
            created_at=now_ms,
        )
        state.open[poll.id] = poll
        state.started += 1
        self.journal(("poll", host.room, poll.id))
        return [
            Deliver(host.room, p.PollOut(poll=poll.info(results=False))),
            Deliver(host.room, p.PollOut(poll=poll.info(results=True)), to=hosts),
            Note(host.room, f'{host.info.name} started a poll: "{question}"'),
        ]

    def vote(self, voter: Member, msg: p.PollVote, hosts: tuple[str, ...]) -> list[Effect]:
        """``voter`` chooses (again): the vote replaces any earlier one while the poll is open."""
        poll = self._poll(voter.room, msg.poll, msg.ref)
        choices = tuple(sorted(set(msg.choices)))
        if len(choices) != len(msg.choices):
            raise ProtocolError(ErrorCode.BAD_MESSAGE, "an option is chosen twice", msg.ref)
        if not choices:
            raise ProtocolError(ErrorCode.EMPTY, "choose at least one option", msg.ref)
        if not poll.multiple and len(choices) > 1:
            raise ProtocolError(
                ErrorCode.BAD_MESSAGE,
                "this poll takes one choice (change it by voting again)",
                msg.ref,
            )
        if choices[0] < 0 or choices[-1] >= len(poll.options):
            raise ProtocolError(
                ErrorCode.BAD_MESSAGE, f"options are numbered 0-{len(poll.options) - 1}", msg.ref
            )
        pid = voter.info.id
        poll.votes[pid] = choices
        if not poll.anonymous:
            poll.names[pid] = voter.info.name
        self.journal(("vote", voter.room, f"{poll.id} {pid}"))
        return [
            Deliver(
                voter.room, p.PollVoted(poll=poll.id, choices=list(choices), ref=msg.ref), to=(pid,)
            ),
            Deliver(voter.room, p.PollOut(poll=poll.info(results=True)), to=hosts),
        ]

    def close(self, host: Member, msg: p.PollClose) -> list[Effect]:
        """``host`` (already checked to be one) closes a poll: results to all and to the record."""
        poll = self._poll(host.room, msg.poll, msg.ref)
        poll.closed = True
        del self.rooms[host.room].open[poll.id]
        self.journal(("poll", host.room, poll.id))
        return [
            Deliver(host.room, p.PollOut(poll=poll.info(results=True))),
            Note(host.room, poll.summary()),
        ]

    def _poll(self, room: str, poll_id: str, ref: str | None) -> Poll:
        state = self.rooms.get(room)
        poll = state.open.get(poll_id) if state is not None else None
        if poll is None:
            # Closed polls are forgotten; an id that was never one reads the same.
            raise ProtocolError(
                ErrorCode.POLL_CLOSED, f"poll {poll_id!r} is closed or does not exist", ref
            )
        return poll

    # -- queries and housekeeping ------------------------------------------------------

    def open_polls(self, room: str) -> list[Poll]:
        state = self.rooms.get(room)
        return list(state.open.values()) if state is not None else []

    def find(self, room: str, poll_id: str) -> Poll | None:
        state = self.rooms.get(room)
        return state.open.get(poll_id) if state is not None else None

    def state_for(self, room: str, pid: str, host: bool) -> list[Effect]:
        """What a participant who just (re)joined needs: the open polls and its own votes."""
        return [
            Deliver(
                room,
                p.PollOut(poll=poll.info(results=host, mine=poll.votes.get(pid))),
                to=(pid,),
            )
            for poll in self.open_polls(room)
        ]

    def forget(self, room: str, *, shared: bool = True) -> None:
        """The meeting ended (or the room emptied): its polls go, unannounced.

        ``shared``: say so to the other nodes (False when this node only stops mirroring
        a room that goes on elsewhere, or applies another node's end)."""
        if self.rooms.pop(room, None) is not None and shared:
            self.journal(("polls-ended", room, None))

    # -- replication: what another node changed ------------------------------------------

    def put_remote_poll(self, poll: Poll) -> None:
        """A poll another node started or closed (votes travel separately)."""
        state = self.rooms.setdefault(poll.room, RoomPolls())
        known = state.open.get(poll.id)
        if known is None:
            state.open[poll.id] = poll
            state.started += 1

    def drop_remote_poll(self, room: str, poll_id: str) -> None:
        state = self.rooms.get(room)
        if state is not None:
            state.open.pop(poll_id, None)

    def put_remote_vote(
        self, room: str, poll_id: str, pid: str, choices: tuple[int, ...], name: str | None
    ) -> None:
        poll = self.find(room, poll_id)
        if poll is None or any(not 0 <= i < len(poll.options) for i in choices):
            return
        poll.votes[pid] = choices
        if name is not None:
            poll.names[pid] = name
