"""Admission: a join request goes in, one decision comes out.

:meth:`parley.core.rooms.Rooms.decide` reads the room (and what the store kept
of it) and answers with a :data:`Decision`, changing nothing:

* :class:`Enter`: in, as ``role`` (or into the lobby), restoring an identity or not;
* :class:`NeedPassword`: the joiner must match this hash (the driver checks it,
  slowly and throttled, and asks again with ``password_verified``);
* :class:`Refuse`: no, with a protocol error code.

Only :meth:`~parley.core.rooms.Rooms.enter` changes state.  Between the two, a
policy can replace the decision (deny someone, give a role, send them to the
lobby): this is where an outside decision plugs in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .effects import Effect
from .state import Member


@dataclass(frozen=True, slots=True)
class JoinRequest:
    """What the transport verified about a joiner."""

    room: str
    #: The validated display name (a join token's name already applied).
    name: str
    ref: str | None = None
    #: The role a verified join token gives (None: decided by the room's rules).
    role: str | None = None
    #: The join token's ``sub``, and all its claims (for a policy to read).
    subject: str | None = None
    claims: Mapping[str, Any] = field(default_factory=dict)
    address: str | None = None
    #: Who a verified resume token says the joiner was (no more than that).
    resume_id: str | None = None
    password_verified: bool = False

    @property
    def invited(self) -> bool:
        """The role came from a join token."""
        return self.role is not None


@dataclass(frozen=True, slots=True)
class Enter:
    """Admitted as ``role``: into the room, or into its lobby to wait."""

    role: str
    #: Restore this identity (a member, or a member of the meeting before a restart):
    #: same id and state, no password, lock or lobby.  False: someone new.
    restore: bool = False
    lobby: bool = False


@dataclass(frozen=True, slots=True)
class NeedPassword:
    """The room has a password the joiner has not proven yet."""

    password_hash: str


@dataclass(frozen=True, slots=True)
class Refuse:
    """Not admitted: the error the joiner gets."""

    code: str
    message: str


Decision = Enter | NeedPassword | Refuse


@dataclass(frozen=True, slots=True)
class Joined:
    """The outcome of :meth:`~parley.core.rooms.Rooms.enter`: who joined, whether an
    identity was restored, and what follows."""

    member: Member
    resumed: bool
    effects: list[Effect]

    @property
    def waiting(self) -> bool:
        return self.member.waiting
