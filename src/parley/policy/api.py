"""What a policy module sees and returns (the names of ``parley.policy``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

# -- decisions of on_join ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Allow:
    """In, as the room's rules would have it, or as ``role`` (host, participant, observer)."""

    role: str | None = None


@dataclass(frozen=True, slots=True)
class Deny:
    """Not in: the joiner gets ``error forbidden`` with this reason."""

    reason: str = "not allowed in this room"


@dataclass(frozen=True, slots=True)
class Lobby:
    """Wait in the lobby until a host admits (even if no host is there yet)."""


JoinDecision = Allow | Deny | Lobby


def allow(role: str | None = None) -> Allow:
    return Allow(role)


def deny(reason: str = "not allowed in this room") -> Deny:
    return Deny(reason)


def lobby() -> Lobby:
    return Lobby()


# -- what the hooks are given ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JoinInfo:
    room: str
    name: str
    #: The verified join token's claims (empty without a token).
    claims: Mapping[str, Any]
    address: str | None
    #: Display names of the people in the room now.
    participants: tuple[str, ...]
    #: The role the room's rules give (None: the rules' default for a newcomer).
    role: str | None = None


@dataclass(slots=True)
class ChatInfo:
    """A chat message before it is stored; return it (maybe with a new ``text``) to pass."""

    room: str
    sender: str
    name: str
    text: str
    #: The recipient of a private message (None: everyone).
    to: str | None = None


@dataclass(frozen=True, slots=True)
class LeaveInfo:
    room: str
    id: str
    name: str
    reason: str


@dataclass(frozen=True, slots=True)
class RenameInfo:
    """A participant's change of display name; return it to pass, a str to use instead."""

    room: str
    id: str
    #: The name now, and the one asked for.
    name: str
    new_name: str


@dataclass(frozen=True, slots=True)
class RoomInfo:
    room: str
    #: Milliseconds since the epoch when the room opened (its meeting started).
    opened_at: int = 0


# -- timers -------------------------------------------------------------------------------------


class Actions(Protocol):
    """What a timer (or a hook that takes a second argument) may do."""

    def rooms(self) -> list[RoomInfo]:
        """The rooms open now, with when each opened."""
        ...

    async def say(self, room: str, text: str) -> None:
        """A system line in the room's chat."""

    async def mute(self, room: str, pid: str, kind: str = "mic") -> None: ...

    async def remove(self, room: str, pid: str) -> None: ...

    async def end(self, room: str) -> None:
        """End the meeting for everyone."""

    async def to_lobby(self, room: str, pid: str) -> None:
        """Send a participant back to the room's lobby: they wait there until a host
        lets them in again (hosts cannot be sent: someone must stay to let people in)."""

    async def settings(self, room: str, **settings: Any) -> None:
        """Set room settings (``locked``, ``lobby``, ``password``, ``max_participants``)."""

    async def record(self, room: str, action: str = "start") -> None:
        """Start (``"start"``) or stop (``"stop"``) recording the room (SFU servers)."""

    def participants(self, room: str) -> list[tuple[str, str, str]]:
        """(id, name, role) of everyone in the room."""
        ...


@dataclass(frozen=True)
class Timer:
    fn: Callable[[Actions], Any]
    every: float | None = None
    at: dt.datetime | None = None
    name: str = field(default="")


#: Timers declared while a policy module is being imported (the loader collects them).
_declared: list[Timer] = []


def every(seconds: float) -> Callable[[Callable[[Actions], Any]], Callable[[Actions], Any]]:
    """Call the decorated function every ``seconds`` with an :class:`Actions` context."""
    if seconds <= 0:
        raise ValueError("every() needs a positive number of seconds")

    def register(fn: Callable[[Actions], Any]) -> Callable[[Actions], Any]:
        _declared.append(Timer(fn, every=float(seconds), name=fn.__name__))
        return fn

    return register


def at(when: dt.datetime) -> Callable[[Callable[[Actions], Any]], Callable[[Actions], Any]]:
    """Call the decorated function once, at ``when`` (an aware datetime, or local time)."""

    def register(fn: Callable[[Actions], Any]) -> Callable[[Actions], Any]:
        _declared.append(Timer(fn, at=when, name=fn.__name__))
        return fn

    return register
