"""Meeting events: what happened, for the event log and its webhooks.

The core names an event where the change is made (never where another node's
change is replicated), inside the effect that stores the change
(``SaveMeeting.events``, ``RoomEmptied.events``), so the store writes the event in
the same commit as its cause: an event is logged if and only if what it reports
is stored.  Chat messages are logged by the store itself, in the chat commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

ROOM_STARTED: Final = "room.started"
ROOM_FINISHED: Final = "room.finished"
PARTICIPANT_JOINED: Final = "participant.joined"
PARTICIPANT_LEFT: Final = "participant.left"
ROLE_CHANGED: Final = "role.changed"
MEETING_ENDED: Final = "meeting.ended"
CHAT_MESSAGE: Final = "chat.message"
RECORDING_STARTED: Final = "recording.started"
RECORDING_FINISHED: Final = "recording.finished"

#: Every event type, in the order the docs list them.
EVENT_TYPES: Final = (
    ROOM_STARTED,
    ROOM_FINISHED,
    PARTICIPANT_JOINED,
    PARTICIPANT_LEFT,
    ROLE_CHANGED,
    MEETING_ENDED,
    CHAT_MESSAGE,
    RECORDING_STARTED,
    RECORDING_FINISHED,
)
#: Logged unless the operator chooses otherwise: chat is opt-in (it carries what
#: people wrote, and it is the busiest stream).
DEFAULT_EVENT_TYPES: Final = tuple(t for t in EVENT_TYPES if t != CHAT_MESSAGE)


@dataclass(frozen=True, slots=True)
class MeetingEvent:
    """An event to log; the store gives it its id when it commits it."""

    type: str
    room: str
    at: int
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class LoggedEvent:
    """An event as the log holds it: ``id`` strictly increases in commit order."""

    id: int
    type: str
    room: str
    at: int
    data: dict[str, Any]


def person(pid: str, name: str, role: str) -> dict[str, str]:
    """How events name a participant."""
    return {"id": pid, "name": name, "role": role}
