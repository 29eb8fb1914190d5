"""The events ``async for event in meeting`` yields: the protocol's own structs.

Each event class subclasses the server message of :mod:`parley.core.protocol` it decodes
(``isinstance(event, protocol.ParticipantJoined)`` holds) and adds ``type``, the message's
wire tag, as a class constant, so ``event.type == "chat"`` both tests and (for mypy)
narrows the union :data:`Event`.

A chat message arrives as ``{"type":"chat","message":ChatRecord}``.  :class:`Chat` keeps
that shape (``event.message`` is the :class:`~parley.core.protocol.ChatRecord`) and also
exposes the record's fields directly: ``event.sender``, ``event.text``, ``event.name``,
``event.to``, ``event.id``, ``event.ts``, ``event.system``.

:class:`Rejoined` is the SDK's own: after a reconnect the server no longer held this
participant (the resume grace was over, or the server was replaced), so the SDK joined
again as someone new; ``meeting.id`` is now ``new_id``.
"""

from __future__ import annotations

from typing import ClassVar, Final, Literal

import msgspec

from ..core import protocol as p

__all__ = [
    "Chat",
    "Error",
    "Event",
    "Lobby",
    "MeetingEnded",
    "MessageDeleted",
    "Muted",
    "ParticipantJoined",
    "ParticipantLeft",
    "ParticipantUpdated",
    "Reaction",
    "Rejoined",
    "Removed",
    "RoomUpdated",
    "Signal",
    "Speaker",
]


class Chat(p.ChatOut, tag="chat"):
    """A chat message: public, private (``to`` is set) or a system line (``system``)."""

    type: ClassVar[Literal["chat"]] = "chat"

    @property
    def id(self) -> int:
        return self.message.id

    @property
    def ts(self) -> int:
        """Milliseconds since the epoch (server clock)."""
        return self.message.ts

    @property
    def sender(self) -> str:
        """The sender's participant id (``"system"`` for a system line)."""
        return self.message.sender

    @property
    def name(self) -> str:
        """The sender's display name when the message was sent."""
        return self.message.name

    @property
    def text(self) -> str:
        return self.message.text

    @property
    def to(self) -> str | None:
        """The recipient of a private message; None for the whole room."""
        return self.message.to

    @property
    def system(self) -> bool:
        return self.message.system


class ParticipantJoined(p.ParticipantJoined, tag="participant-joined"):
    """Someone entered the room: ``event.participant``."""

    type: ClassVar[Literal["participant-joined"]] = "participant-joined"


class ParticipantLeft(p.ParticipantLeft, tag="participant-left"):
    """``event.id`` left (``reason``: ``left``, ``disconnected``, ``timeout``, ``removed``)."""

    type: ClassVar[Literal["participant-left"]] = "participant-left"


class ParticipantUpdated(p.ParticipantUpdated, tag="participant-updated"):
    """Someone's media, hand, name or role changed: ``event.participant`` is the new state."""

    type: ClassVar[Literal["participant-updated"]] = "participant-updated"


class Presence(p.PresenceOut, tag="presence"):
    """Big rooms: the joins (``joined``), leaves (``left``) and changes (``updated``) of
    a short window at once, and ``count``, the people in the room.  The SDK has already
    applied them to ``meeting.participants`` (which, in a big room, holds the welcome's
    first page and the changes since: ``truncated`` says some were too many to list)."""

    type: ClassVar[Literal["presence"]] = "presence"


class Reaction(p.ReactionOut, tag="reaction"):
    """``event.sender`` reacted with ``event.emoji``."""

    type: ClassVar[Literal["reaction"]] = "reaction"


class Signal(p.SignalOut, tag="signal"):
    """Signalling from another participant (mesh rooms); the SFU's is handled inside."""

    type: ClassVar[Literal["signal"]] = "signal"


class RoomUpdated(p.RoomUpdated, tag="room-updated"):
    type: ClassVar[Literal["room-updated"]] = "room-updated"


class Lobby(p.Lobby, tag="lobby"):
    """To hosts: who waits in the lobby now (``event.waiting``)."""

    type: ClassVar[Literal["lobby"]] = "lobby"


class Muted(p.Muted, tag="muted"):
    """A host turned this client's ``kind`` off (the SDK stops sending it)."""

    type: ClassVar[Literal["muted"]] = "muted"


class Removed(p.Removed, tag="removed"):
    """A host removed this client; the iteration ends after it."""

    type: ClassVar[Literal["removed"]] = "removed"


class MeetingEnded(p.MeetingEnded, tag="meeting-ended"):
    """A host ended the meeting; the iteration ends after it."""

    type: ClassVar[Literal["meeting-ended"]] = "meeting-ended"


class Speaker(p.ActiveSpeaker, tag="speaker"):
    """SFU rooms: who speaks most now (``event.id``; None when nobody does)."""

    type: ClassVar[Literal["speaker"]] = "speaker"


class Error(p.Error, tag="error"):
    """An error the server sent that answers none of this client's requests."""

    type: ClassVar[Literal["error"]] = "error"


class MessageDeleted(p.MessageDeleted, tag="message-deleted"):
    """A chat message was deleted (by its author or a host): ``id``, ``room``, ``by``.
    The SDK has already taken it out of ``meeting.history``."""

    type: ClassVar[Literal["message-deleted"]] = "message-deleted"


class Rejoined(msgspec.Struct, frozen=True):
    """The SDK's own event: after a reconnect the server no longer held this participant,
    so the SDK joined again as ``new_id`` (``reason`` says why)."""

    old_id: str
    new_id: str
    reason: str
    type: ClassVar[Literal["rejoined"]] = "rejoined"


# -- what the SDK consumes itself ------------------------------------------------------


class Welcome(p.Welcome, tag="welcome"):
    type: ClassVar[Literal["welcome"]] = "welcome"


class ResumeToken(p.ResumeToken, tag="resume-token"):
    type: ClassVar[Literal["resume-token"]] = "resume-token"


class ChatAck(p.ChatAck, tag="chat-ack"):
    type: ClassVar[Literal["chat-ack"]] = "chat-ack"


class History(p.HistoryOut, tag="history"):
    type: ClassVar[Literal["history"]] = "history"


class LobbyWait(p.LobbyWait, tag="lobby-wait"):
    type: ClassVar[Literal["lobby-wait"]] = "lobby-wait"


class Pong(p.Pong, tag="pong"):
    type: ClassVar[Literal["pong"]] = "pong"


#: What ``async for event in meeting`` yields (``lobby-wait`` and ``welcome`` only when the
#: room's policy sends this client back to the lobby and a host lets it in again).
Event = (
    Chat
    | ParticipantJoined
    | ParticipantLeft
    | ParticipantUpdated
    | Presence
    | Reaction
    | Signal
    | RoomUpdated
    | Lobby
    | Muted
    | Removed
    | MeetingEnded
    | Speaker
    | Error
    | Rejoined
    | LobbyWait
    | Welcome
    | MessageDeleted
)


ServerFrame = (
    Chat
    | ParticipantJoined
    | ParticipantLeft
    | ParticipantUpdated
    | Presence
    | Reaction
    | Signal
    | RoomUpdated
    | Lobby
    | Muted
    | Removed
    | MeetingEnded
    | Speaker
    | Error
    | Welcome
    | ResumeToken
    | ChatAck
    | History
    | LobbyWait
    | Pong
    | MessageDeleted
)

_decoder: Final = msgspec.json.Decoder(ServerFrame)


def decode(data: str | bytes) -> ServerFrame:
    """One server frame as its struct; raises ``msgspec.DecodeError`` or
    ``msgspec.ValidationError`` (e.g. a message type this client does not know)."""
    frame: ServerFrame = _decoder.decode(data)
    return frame
