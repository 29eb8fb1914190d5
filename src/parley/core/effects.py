"""Effects: every consequence of a request, as the core returns it.

The core never acts; it says what must happen, in order, and one executor
(:mod:`parley.server.executor`) carries it out for local sessions and for the
replicator alike.  Each effect names what it needs, so that carrying it out
never means asking the core again (the room may be gone from memory by then).
"""

from __future__ import annotations

from dataclasses import dataclass

from . import protocol as p
from .events import MeetingEvent
from .state import RoomConfig


def lobby_key(room: str) -> str:
    """The fan-out address of a room's lobby ('#' never appears in room names)."""
    return room + "#lobby"


@dataclass(frozen=True, slots=True)
class Deliver:
    """Send ``message`` to the room: everyone, only ``to``, or all but ``exclude``."""

    room: str
    message: p.ServerMessage
    to: tuple[str, ...] | None = None
    exclude: str | None = None


@dataclass(frozen=True, slots=True)
class StoreChat:
    """Store a participant's chat message; acknowledge it to the sender (``ref``), then
    deliver it (:func:`chat_deliveries`).  A failed write refuses it: nothing is sent."""

    room: str
    sender: str
    name: str
    text: str
    to: str | None
    ts: int
    ref: str | None
    #: Who receives it, when not the room or the two of a private message: an
    #: audience member's question (``to`` "stage") goes to the stage and its sender.
    deliver_to: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class Note:
    """A system line for the room's chat: stored, then delivered to everyone."""

    room: str
    text: str


@dataclass(frozen=True, slots=True)
class DeleteChat:
    """Delete a stored message if ``by`` may (``parley.core.record_rules.may_delete``:
    the store knows its author), then tell those who saw it (``message-deleted``)."""

    room: str
    msg_id: int
    by: str
    host: bool
    ref: str | None


@dataclass(frozen=True, slots=True)
class SaveRetention:
    """Persist a room's own history retention (None: the server's default)."""

    room: str
    days: int | None


@dataclass(frozen=True, slots=True)
class Disconnect:
    """Close this participant's socket (after the effects before it went out), on
    whichever node holds it."""

    pid: str
    room: str
    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class LetIn:
    """A participant left the lobby for the room: its socket moves in and gets its
    welcome, on whichever node holds it."""

    pid: str
    room: str


@dataclass(frozen=True, slots=True)
class ToLobby:
    """Move ``pid``'s socket from the room to its lobby and tell it to wait there
    (the core already moved the member)."""

    pid: str
    room: str


@dataclass(frozen=True, slots=True)
class RoleChanged:
    """A participant's role changed: its socket gets a fresh resume token."""

    pid: str
    role: str


@dataclass(frozen=True, slots=True)
class Moved:
    """``pid`` moved to another room of the same meeting (a breakout, or back): its
    socket follows, unchanged, and gets a welcome for ``room``."""

    pid: str
    room: str


@dataclass(frozen=True, slots=True)
class Wake:
    """Call the core back at ``at_ms`` (ms since the epoch) about ``room``'s breakouts
    (:meth:`parley.core.breakouts.Breakouts.due`): a duration ended, a warning ran out."""

    room: str
    at_ms: int


@dataclass(frozen=True, slots=True)
class PresenceDue:
    """Call the core back at ``at_ms`` (ms since the epoch) to send ``room``'s batched
    presence (:meth:`parley.core.presence.Presence.flush`)."""

    room: str
    at_ms: int


@dataclass(frozen=True, slots=True)
class StopForwarding:
    """Media follows membership: forward nothing more from or to ``pid``."""

    room: str
    pid: str


@dataclass(frozen=True, slots=True)
class Unpublish:
    """``pid`` may no longer send media (an observer): stop forwarding what it sends."""

    room: str
    pid: str


@dataclass(frozen=True, slots=True)
class MediaEnded:
    """The meeting ended: the room's media goes."""

    room: str


@dataclass(frozen=True, slots=True)
class RoomOpened:
    """A room came into use (its first participant entered): an event for observers."""

    room: str
    opened_at: int


@dataclass(frozen=True, slots=True)
class Arrived:
    """A participant entered the room (not a resume): the record notes it (an
    attendance entry; the others are told by a ``Deliver``)."""

    room: str
    pid: str
    name: str


@dataclass(frozen=True, slots=True)
class Left:
    """A participant is no longer in the room (left, removed, timed out, expired): an
    event for observers (the others are told by a ``Deliver``)."""

    room: str
    pid: str
    name: str
    reason: str


@dataclass(frozen=True, slots=True)
class SaveSettings:
    """Persist a room's settings (given here: the room may be gone from memory)."""

    room: str
    created_at: int
    config: RoomConfig


@dataclass(frozen=True, slots=True)
class SaveMeeting:
    """Persist who is in the room and in which role (read when written, from
    ``Rooms.meeting_record``), so that a restart restores roles from stored state.

    ``events``: what the change was, logged in the same commit (see ``core.events``).
    """

    room: str
    events: tuple[MeetingEvent, ...] = ()


@dataclass(frozen=True, slots=True)
class RoomEmptied:
    """The last person left or the meeting ended: the meeting's stored state goes.

    ``keep`` is the configuration that outlives the meeting (a JWT- or
    admin-managed room, unlocked); None: the settings expire with the meeting, and
    a room with no history is forgotten altogether.
    """

    room: str
    created_at: int
    keep: RoomConfig | None
    events: tuple[MeetingEvent, ...] = ()


@dataclass(frozen=True, slots=True)
class StartRecording:
    """Start recording the room's media into recording ``id`` (the media side)."""

    room: str
    id: str
    by: str
    by_name: str


@dataclass(frozen=True, slots=True)
class StopRecording:
    """Stop recording ``id`` (``reason``: "stopped", "meeting-ended")."""

    room: str
    id: str
    reason: str


@dataclass(frozen=True, slots=True)
class RecordingStarted:
    """Event for the outside (webhook ``recording.started``): a recording is running."""

    room: str
    id: str
    by: str


@dataclass(frozen=True, slots=True)
class RecordingFinished:
    """Event for the outside (webhook ``recording.finished``): its files are complete.

    ``reason``: "stopped", "meeting-ended", "disk-full", "write-error", "media-moved",
    "interrupted" (its server was killed; finished when it started again); ``files``: the
    file names (manifest.json included)."""

    room: str
    id: str
    reason: str
    files: tuple[str, ...] = ()


Effect = (
    Deliver
    | StoreChat
    | Note
    | DeleteChat
    | SaveRetention
    | Disconnect
    | LetIn
    | ToLobby
    | Moved
    | Wake
    | PresenceDue
    | RoleChanged
    | StopForwarding
    | Unpublish
    | MediaEnded
    | RoomOpened
    | Arrived
    | Left
    | SaveSettings
    | SaveMeeting
    | RoomEmptied
    | StartRecording
    | StopRecording
    | RecordingStarted
    | RecordingFinished
)


def chat_deliveries(
    record: p.ChatRecord, deliver_to: tuple[str, ...] | None = None
) -> list[Deliver]:
    """Fan-out of a chat message once it is stored (sender included; a private one only
    to its two participants; ``deliver_to``, when given, names everyone who gets it)."""
    out = p.ChatOut(message=record)
    if deliver_to is not None:
        return [Deliver(record.room, out, to=deliver_to)]
    if record.to is None:
        return [Deliver(record.room, out)]
    to = (record.sender,) if record.to == record.sender else (record.sender, record.to)
    return [Deliver(record.room, out, to=to)]
