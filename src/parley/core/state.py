"""What the core knows of rooms and participants: plain data, no behaviour of note."""

from __future__ import annotations

from dataclasses import dataclass, field

from . import protocol as p


@dataclass(slots=True)
class RoomConfig:
    """Settings a host controls; persisted in the store."""

    locked: bool = False
    lobby: bool = False
    password_hash: str | None = None
    max_participants: int | None = None  # None: the server's limit
    #: Set by a host whose role came from a join token, or by the operator: these
    #: settings outlive the meeting.  Others expire when the room empties, so that a
    #: passer-by cannot hold a room name hostage with a password or a size of 1.
    managed: bool = False
    #: Stage mode (core/stage.py): True, False, or None: on when the room may hold more
    #: than ``Limits.stage_threshold`` people.
    stage: bool | None = None
    #: Who may chat (core/stage.py): "everyone", "stage" or "questions".
    chat: str = "everyone"


@dataclass(frozen=True, slots=True)
class MeetingRecord:
    """Who was in a room (participant id -> role) and who is barred, as stored."""

    members: dict[str, str]
    banned: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class StoredRoom:
    """A room as the store knows it, before it is open in memory."""

    created_at: int
    config: RoomConfig | None = None
    meeting: MeetingRecord | None = None


@dataclass(slots=True)
class Member:
    """A participant as the room knows it."""

    info: p.Participant
    room: str
    #: False between a dropped socket and a resume (or the end of the grace period).
    connected: bool = True
    #: Monotonic deadline for a resume while disconnected.
    resume_deadline: float | None = None
    #: In the lobby, not yet admitted.
    waiting: bool = False
    subject: str | None = None
    address: str | None = None
    #: The node whose socket serves this participant (several nodes share a room).
    node: str = "local"
    #: The role came from a verified join token (its settings changes are "managed").
    invited: bool = False


@dataclass(frozen=True, slots=True)
class Recording:
    """A recording of the room in progress (:mod:`parley.core.recording`)."""

    id: str
    by: str  # participant id, or "admin"
    by_name: str
    since: int  # ms since the epoch
    #: The node writing the files: in a cluster, the room's media owner ("": none yet).
    node: str = ""


@dataclass(slots=True)
class Room:
    name: str
    created_at: int
    config: RoomConfig = field(default_factory=RoomConfig)
    members: dict[str, Member] = field(default_factory=dict)
    lobby: dict[str, Member] = field(default_factory=dict)
    #: Keys barred for this meeting: "pid:…", "sub:…", "addr:…".
    banned: set[str] = field(default_factory=set)
    #: When the room was opened in memory (ms since the epoch; 0: seen from another node).
    opened_at: int = 0
    #: Members of the meeting before a restart (pid -> role, from the store) who may
    #: still resume into it, until ``restorable_until`` (monotonic).
    restorable: dict[str, str] = field(default_factory=dict)
    restorable_until: float = 0.0
    recording: Recording | None = None

    def participants(self) -> list[p.Participant]:
        return [m.info for m in self.members.values()]

    def hosts(self) -> tuple[str, ...]:
        return tuple(pid for pid, m in self.members.items() if m.info.role == "host")
