"""Rooms and participants: the rules of the meeting, without any I/O.

:class:`Rooms` holds every room of this server and decides what each client
request does.  Its methods validate a request against the limits, change
state, and return the :class:`Deliver` instructions the transport carries
out (through the broker).  Nothing here touches a socket, the store or the
clock directly, so the rules are tested as plain Python.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from . import protocol as p
from .config import Limits
from .protocol import ErrorCode, ProtocolError

ROOM_NAME = re.compile(r"[A-Za-z0-9._-]+")


@dataclass(frozen=True, slots=True)
class Deliver:
    """Send ``message`` to the room: everyone, only ``to``, or all but ``exclude``."""

    room: str
    message: p.ServerMessage
    to: tuple[str, ...] | None = None
    exclude: str | None = None


@dataclass(slots=True)
class Member:
    """A participant as the room knows it."""

    info: p.Participant
    room: str
    #: False between a dropped socket and a resume (or the end of the grace period).
    connected: bool = True
    #: Monotonic deadline for a resume while disconnected.
    resume_deadline: float | None = None


@dataclass(slots=True)
class Room:
    name: str
    created_at: int
    members: dict[str, Member] = field(default_factory=dict)

    def participants(self) -> list[p.Participant]:
        return [m.info for m in self.members.values()]


@dataclass(frozen=True, slots=True)
class Joined:
    """The outcome of a join: who joined, whether an identity was restored, what to announce."""

    member: Member
    resumed: bool
    deliveries: list[Deliver]


def check_room_name(name: str, limits: Limits) -> str:
    if not (1 <= len(name) <= limits.room_name_max) or not ROOM_NAME.fullmatch(name):
        raise ProtocolError(
            ErrorCode.BAD_ROOM,
            f"room names are 1-{limits.room_name_max} letters, digits, '-', '_' or '.'",
        )
    return name


def check_display_name(name: str, limits: Limits) -> str:
    name = name.strip()
    if not name:
        raise ProtocolError(ErrorCode.BAD_NAME, "a display name is required")
    if len(name) > limits.display_name_max:
        raise ProtocolError(
            ErrorCode.BAD_NAME,
            f"display names are at most {limits.display_name_max} characters",
        )
    if any(ch < " " for ch in name):
        raise ProtocolError(ErrorCode.BAD_NAME, "display names cannot contain control characters")
    return name


def new_participant_id() -> str:
    return "p_" + secrets.token_urlsafe(12)


class Rooms:
    """All rooms of this server and the rules applied to every request."""

    def __init__(
        self,
        limits: Limits,
        *,
        wall_clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limits = limits
        self._wall = wall_clock
        self._mono = monotonic
        self.rooms: dict[str, Room] = {}
        self.members: dict[str, Member] = {}

    def now_ms(self) -> int:
        return int(self._wall() * 1000)

    # -- joining and leaving ------------------------------------------------

    def validate_join(self, msg: p.Join) -> tuple[str, str]:
        """Check a join request; return the room name and the trimmed display name."""
        if msg.v != p.PROTOCOL_VERSION:
            raise ProtocolError(
                ErrorCode.BAD_VERSION,
                f"protocol version {msg.v} is not supported; this server speaks "
                f"{p.PROTOCOL_VERSION}",
                msg.ref,
            )
        try:
            return check_room_name(msg.room, self.limits), check_display_name(msg.name, self.limits)
        except ProtocolError as exc:
            exc.ref = msg.ref
            raise

    def join(
        self,
        room_name: str,
        display_name: str,
        created_at: int,
        *,
        resume_id: str | None = None,
        ref: str | None = None,
    ) -> Joined:
        """Add a participant (or restore ``resume_id``, taken from a verified token)."""
        room = self.rooms.get(room_name)
        if resume_id is not None:
            existing = self.members.get(resume_id)
            if existing is not None and existing.room == room_name:
                # Still known: within the grace period, or its old socket is not yet
                # seen as dead.  Either way the others see no leave/join.
                existing.connected = True
                existing.resume_deadline = None
                return Joined(existing, True, [])
        if room is None:
            room = self.rooms[room_name] = Room(room_name, created_at)
        if len(room.members) >= self.limits.max_participants:
            raise ProtocolError(
                ErrorCode.ROOM_FULL,
                f"room {room_name} is full ({self.limits.max_participants} participants)",
                ref,
            )
        pid = resume_id if resume_id is not None else new_participant_id()
        info = p.Participant(id=pid, name=display_name, joined_at=self.now_ms())
        member = Member(info=info, room=room_name)
        room.members[pid] = member
        self.members[pid] = member
        announce = Deliver(room_name, p.ParticipantJoined(participant=info), exclude=pid)
        return Joined(member, resume_id is not None, [announce])

    def leave(self, pid: str, reason: str = "left") -> list[Deliver]:
        """Remove a participant now and tell the others."""
        member = self.members.pop(pid, None)
        if member is None:
            return []
        room = self.rooms[member.room]
        del room.members[pid]
        if not room.members:
            del self.rooms[member.room]
        return [Deliver(member.room, p.ParticipantLeft(id=pid, reason=reason))]

    def disconnected(self, pid: str) -> float | None:
        """The socket dropped without ``leave``: hold the identity for a resume.

        Returns the monotonic deadline after which :meth:`expire` removes it.
        """
        member = self.members.get(pid)
        if member is None:
            return None
        member.connected = False
        member.resume_deadline = self._mono() + self.limits.resume_grace
        return member.resume_deadline

    def expire(self, pid: str) -> list[Deliver]:
        """Remove ``pid`` if it is still disconnected past its resume deadline."""
        member = self.members.get(pid)
        if member is None or member.connected or member.resume_deadline is None:
            return []
        if self._mono() < member.resume_deadline:
            return []
        return self.leave(pid, reason="disconnected")

    # -- requests from a joined participant -----------------------------------

    def member(self, pid: str) -> Member:
        member = self.members.get(pid)
        if member is None:
            raise ProtocolError(ErrorCode.NOT_JOINED, "join a room first")
        return member

    def _peer(self, member: Member, target: str, ref: str | None) -> None:
        other = self.members.get(target)
        if other is None or other.room != member.room:
            raise ProtocolError(
                ErrorCode.NO_SUCH_PARTICIPANT, f"no participant {target!r} in this room", ref
            )

    def check_chat(self, pid: str, msg: p.Chat) -> tuple[Member, str, str | None]:
        """Validate a chat message before it is stored; return sender, text and recipient."""
        member = self.member(pid)
        text = msg.text
        if not text.strip():
            raise ProtocolError(ErrorCode.EMPTY, "chat text is empty", msg.ref)
        if len(text) > self.limits.chat_max_chars:
            raise ProtocolError(
                ErrorCode.TOO_LONG,
                f"chat text is {len(text)} characters; the limit is {self.limits.chat_max_chars}",
                msg.ref,
            )
        if msg.to is not None:
            self._peer(member, msg.to, msg.ref)
        return member, text, msg.to

    def chat_stored(self, record: p.ChatRecord) -> list[Deliver]:
        """Fan-out of a chat message once it is stored (sender included)."""
        out = p.ChatOut(message=record)
        if record.to is None:
            return [Deliver(record.room, out)]
        to = (record.sender,) if record.to == record.sender else (record.sender, record.to)
        return [Deliver(record.room, out, to=to)]

    def signal(self, pid: str, msg: p.Signal) -> list[Deliver]:
        member = self.member(pid)
        self._peer(member, msg.to, msg.ref)
        return [Deliver(member.room, p.SignalOut(sender=pid, payload=msg.payload), to=(msg.to,))]

    def reaction(self, pid: str, msg: p.Reaction) -> list[Deliver]:
        member = self.member(pid)
        if msg.emoji not in p.REACTIONS:
            raise ProtocolError(
                ErrorCode.BAD_REACTION,
                "reactions are one of " + " ".join(sorted(p.REACTIONS)),
                msg.ref,
            )
        return [Deliver(member.room, p.ReactionOut(sender=pid, emoji=msg.emoji))]

    def _updated(self, member: Member) -> list[Deliver]:
        return [Deliver(member.room, p.ParticipantUpdated(participant=member.info))]

    def media(self, pid: str, msg: p.Media) -> list[Deliver]:
        member = self.member(pid)
        info = member.info
        for attr in ("mic", "cam", "screen"):
            value = getattr(msg, attr)
            if value is not None:
                setattr(info, attr, value)
        return self._updated(member)

    def hand(self, pid: str, msg: p.Hand) -> list[Deliver]:
        member = self.member(pid)
        info = member.info
        if msg.raised != info.hand:
            info.hand = msg.raised
            info.hand_at = self.now_ms() if msg.raised else None
        return self._updated(member)

    def rename(self, pid: str, msg: p.Rename) -> list[Deliver]:
        member = self.member(pid)
        try:
            member.info.name = check_display_name(msg.name, self.limits)
        except ProtocolError as exc:
            exc.ref = msg.ref
            raise
        return self._updated(member)

    # -- queries --------------------------------------------------------------

    def room_of(self, pid: str) -> Room:
        return self.rooms[self.member(pid).room]

    def hand_queue(self, room_name: str) -> list[p.Participant]:
        """Raised hands, in the order they went up."""
        room = self.rooms.get(room_name)
        if room is None:
            return []
        raised = [m.info for m in room.members.values() if m.info.hand]
        return sorted(raised, key=lambda info: info.hand_at or 0)
