"""Rooms and participants: the rules of the meeting, without any I/O.

:class:`Rooms` holds every room of this server and decides what each client
request does.  Its methods validate a request against the limits and the
requester's role, change state, and return the *effects* the transport
carries out in order: :class:`Deliver` a message (through the broker),
write a system :class:`Note` into the chat, :class:`Disconnect` a
participant, :class:`Admit` someone from the lobby, :class:`SaveSettings`,
:class:`SaveMeeting` (who is in, for a restart) and :class:`RoomEmptied`.
Nothing here touches a socket, the store or the clock directly, so the
rules are tested as plain Python.
"""

from __future__ import annotations

import re
import secrets
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from ..config import Limits
from . import protocol as p
from .protocol import CloseCode, ErrorCode, ProtocolError

ROOM_NAME = re.compile(r"[A-Za-z0-9._-]+")
ROLES = ("host", "participant", "observer")
#: Longest room password (checked before any hashing).
MAX_PASSWORD_CHARS = 128
DEVICE_NAMES = {"mic": "microphone", "cam": "camera", "screen": "screen share"}


def lobby_key(room: str) -> str:
    """The fan-out address of a room's lobby ('#' never appears in room names)."""
    return room + "#lobby"


# -- effects ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Deliver:
    """Send ``message`` to the room: everyone, only ``to``, or all but ``exclude``."""

    room: str
    message: p.ServerMessage
    to: tuple[str, ...] | None = None
    exclude: str | None = None


@dataclass(frozen=True, slots=True)
class Note:
    """A system line for the room's chat: stored, then delivered to everyone."""

    room: str
    text: str


@dataclass(frozen=True, slots=True)
class Disconnect:
    """Close this participant's socket (after the effects before it went out)."""

    pid: str
    room: str
    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class Admit:
    """A participant left the lobby for the room: send them their welcome."""

    pid: str


@dataclass(frozen=True, slots=True)
class SaveSettings:
    """Persist a room's settings (given here: the room may be gone from memory)."""

    room: str
    created_at: int
    config: RoomConfig


@dataclass(frozen=True, slots=True)
class SaveMeeting:
    """Persist who is in the room and in which role (read when written: see
    :meth:`Rooms.meeting_record`), so that a restart restores roles from stored state."""

    room: str


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


Effect = Deliver | Note | Disconnect | Admit | SaveSettings | SaveMeeting | RoomEmptied


# -- state ----------------------------------------------------------------------------


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


@dataclass(slots=True)
class Room:
    name: str
    created_at: int
    config: RoomConfig = field(default_factory=RoomConfig)
    members: dict[str, Member] = field(default_factory=dict)
    lobby: dict[str, Member] = field(default_factory=dict)
    #: Keys barred for this meeting: "pid:…", "sub:…", "addr:…".
    banned: set[str] = field(default_factory=set)
    #: Members of the meeting before a restart (pid -> role, from the store) who may
    #: still resume into it, until ``restorable_until`` (monotonic).
    restorable: dict[str, str] = field(default_factory=dict)
    restorable_until: float = 0.0

    def participants(self) -> list[p.Participant]:
        return [m.info for m in self.members.values()]

    def hosts(self) -> tuple[str, ...]:
        return tuple(pid for pid, m in self.members.items() if m.info.role == "host")


@dataclass(frozen=True, slots=True)
class Joined:
    """The outcome of a join: who joined, whether an identity was restored, what follows."""

    member: Member
    resumed: bool
    effects: list[Effect]

    @property
    def waiting(self) -> bool:
        return self.member.waiting

    @property
    def deliveries(self) -> list[Effect]:
        return self.effects


# -- validation ---------------------------------------------------------------------


def check_room_name(name: str, limits: Limits) -> str:
    if not (1 <= len(name) <= limits.room_name_max) or not ROOM_NAME.fullmatch(name):
        raise ProtocolError(
            ErrorCode.BAD_ROOM,
            f"room names are 1-{limits.room_name_max} letters, digits, '-', '_' or '.'",
        )
    return name


#: Never in a display name: controls, format characters (bidi controls, zero-width
#: space/joiners, soft hyphen...), line/paragraph separators, surrogates, private use.
_NAME_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co"})
#: The other default-ignorable code points (Unicode DerivedCoreProperties): drawn as
#: nothing.  Variation selectors and Mongolian selectors are allowed after a base they
#: apply to (see _name_char_has_a_job).
_NAME_IGNORABLE = (
    (0x034F, 0x034F),  # combining grapheme joiner
    (0x115F, 0x1160),  # Hangul choseong/jungseong fillers
    (0x17B4, 0x17B5),  # Khmer inherent vowels
    (0x180B, 0x180F),  # Mongolian variation selectors
    (0x2065, 0x2065),
    (0x3164, 0x3164),  # Hangul filler
    (0xFE00, 0xFE0F),  # variation selectors
    (0xFFA0, 0xFFA0),  # halfwidth Hangul filler
    (0xFFF0, 0xFFF8),
    (0xE0000, 0xE0FFF),  # tags, variation selectors supplement
)
#: Scripts whose letters join (Arabic, Syriac, N'Ko, Mandaic, Mongolian, Phags-pa,
#: presentation forms, Manichaean...Adlam): ZWNJ between two of their letters is visible.
_JOINING_SCRIPTS = (
    (0x0600, 0x08FF),
    (0x1800, 0x18AF),
    (0xA840, 0xA877),
    (0xFB50, 0xFDFF),
    (0xFE70, 0xFEFF),
    (0x10AC0, 0x10D3F),
    (0x10F30, 0x10FDF),
    (0x1E900, 0x1E95F),
)
_ZWNJ, _ZWJ, _BLACK_FLAG, _CANCEL_TAG = "\u200c", "\u200d", "\U0001f3f4", "\U000e007f"


def _in_ranges(ch: str, ranges: tuple[tuple[int, int], ...]) -> bool:
    cp = ord(ch)
    return any(lo <= cp <= hi for lo, hi in ranges)


def _joining_letter(name: str, i: int, step: int) -> bool:
    """Whether the first non-mark character from ``i`` on (walking by ``step``) is a
    letter of a joining script."""
    while 0 <= i < len(name) and unicodedata.category(name[i]) == "Mn":
        i += step
    return (
        0 <= i < len(name)
        and unicodedata.category(name[i]).startswith("L")
        and _in_ranges(name[i], _JOINING_SCRIPTS)
    )


def _name_char_has_a_job(name: str, i: int) -> bool:
    """Whether the invisible ``name[i]`` changes how its visible neighbours are drawn,
    as the scripts and emoji that need it use it (after UTS #51 and RFC 5892 CONTEXTJ)."""
    ch = name[i]
    if i == 0:
        return False
    prev = name[i - 1]
    prev_cat = unicodedata.category(prev)
    after = unicodedata.category(name[i + 1]) if i + 1 < len(name) else ""
    if ch in (_ZWNJ, _ZWJ) and unicodedata.combining(prev) == 9:
        return True  # after a virama: Indic conjunct forms (Devanagari, Sinhala "Sri"...)
    if ch == _ZWNJ:  # Persian "Ali-Reza": breaks the join between two letters
        return _joining_letter(name, i - 1, -1) and _joining_letter(name, i + 1, 1)
    if ch == _ZWJ:  # emoji ZWJ sequence: woman + ZWJ + laptop = woman technologist
        return (prev_cat.startswith("S") or prev == "\ufe0f") and after.startswith("S")
    if ch in "\ufe0e\ufe0f":  # text/emoji style of a symbol, or a keycap ("1" VS16 U+20E3)
        return prev_cat[0] in "SPN"
    cp = ord(ch)
    if 0xFE00 <= cp <= 0xFE0D or 0xE0100 <= cp <= 0xE01EF:  # ideographic/math variants
        return unicodedata.name(prev, "").startswith("CJK ") or prev_cat.startswith("S")
    if 0x180B <= cp <= 0x180F:  # Mongolian variation selectors, vowel separator
        return 0x1800 <= ord(prev) <= 0x18AF
    return False


def _first_hidden_char(name: str) -> int | None:
    """Index of the first character of ``name`` that is drawn as nothing or reorders the
    text around it (and has no job where it stands); None if there is none.  One pass."""
    i, n = 0, len(name)
    while i < n:
        ch = name[i]
        if ch == _BLACK_FLAG and i + 1 < n and "\U000e0020" <= name[i + 1] <= "\U000e007e":
            # subdivision flag (Scotland): black flag, tag letters, cancel tag
            j = i + 1
            while j < n and "\U000e0020" <= name[j] <= "\U000e007e":
                j += 1
            if j == n or name[j] != _CANCEL_TAG:
                return i + 1
            i = j + 1
            continue
        cp = ord(ch)
        hidden = (
            unicodedata.category(ch) in _NAME_REFUSED_CATEGORIES
            or _in_ranges(ch, _NAME_IGNORABLE)
            or 0xFDD0 <= cp <= 0xFDEF
            or cp & 0xFFFE == 0xFFFE  # noncharacters
        )
        if hidden and not _name_char_has_a_job(name, i):
            return i
        i += 1
    return None


def check_display_name(name: str, limits: Limits) -> str:
    """The display name everyone will see: trimmed and in NFC; ``bad_name`` if it is
    empty or too long after that, starts with a combining mark, or holds a character
    that is invisible or reorders the text around it (bidi controls, zero-width
    characters, fillers...).  Joiners and selectors stay where a script or an emoji
    sequence needs them; unassigned code points pass (emoji newer than our Unicode)."""
    name = unicodedata.normalize("NFC", name.strip()).strip()
    if not name:
        raise ProtocolError(ErrorCode.BAD_NAME, "a display name is required")
    if len(name) > limits.display_name_max:
        raise ProtocolError(
            ErrorCode.BAD_NAME,
            f"display names are at most {limits.display_name_max} characters",
        )
    if unicodedata.category(name[0]).startswith("M"):
        raise ProtocolError(ErrorCode.BAD_NAME, "display names cannot start with a combining mark")
    hidden = _first_hidden_char(name)
    if hidden is not None:
        ch = name[hidden]
        what = unicodedata.name(ch, "")
        raise ProtocolError(
            ErrorCode.BAD_NAME,
            "display names cannot contain control, invisible or text-direction characters"
            f" (U+{ord(ch):04X}{' ' + what if what else ''})",
        )
    return name


def new_participant_id() -> str:
    return "p_" + secrets.token_urlsafe(12)


class Rooms:
    """All rooms of this server and the rules applied to every request.

    ``auto_host``: in rooms without token-given roles, the first participant
    becomes host, and when the last host leaves the longest-present
    participant takes over.
    """

    def __init__(
        self,
        limits: Limits,
        *,
        auto_host: bool = True,
        node: str = "local",
        wall_clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limits = limits
        self.auto_host = auto_host
        self.node = node
        #: What changed, for replication to other nodes: (kind, room, pid) with kind
        #: "member" (upserted), "gone", "room" (settings or bans) or "ended".  A
        #: single-node server clears it without reading it.
        self.journal: list[tuple[str, str, str | None]] = []
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

    def capacity(self, room: Room) -> int:
        return self._capacity(room.config)

    def _capacity(self, config: RoomConfig) -> int:
        configured = config.max_participants
        cap = self.limits.max_participants
        return cap if configured is None else min(configured, cap)

    def settings_of(self, room: Room) -> p.RoomSettings:
        return self.settings_for(room.config)

    def settings_for(self, config: RoomConfig) -> p.RoomSettings:
        """The settings as clients see them (``room-updated``)."""
        return p.RoomSettings(
            locked=config.locked,
            lobby=config.lobby,
            has_password=config.password_hash is not None,
            max_participants=self._capacity(config),
        )

    def is_known(self, pid: str, room_name: str) -> bool:
        """True when ``pid`` is a current member of the room (so a resume skips the checks)."""
        member = self.members.get(pid)
        return member is not None and member.room == room_name and not member.waiting

    def resume_role(
        self, room_name: str, resume_id: str | None, stored: StoredRoom | None = None
    ) -> str | None:
        """The role a resume restores, or None: not an identity this server still holds.

        A resume token only proves who its holder was.  It restores a current member
        (inside the resume grace) in its *current* role, or, after a restart, a member
        of the interrupted meeting in the role the store kept for it, until one resume
        grace after the room is back in memory.  Removed, expired, barred or unknown
        identities restore nothing: they join afresh, through every check.
        """
        if resume_id is None:
            return None
        member = self.members.get(resume_id)
        if member is not None and member.room == room_name and not member.waiting:
            return member.info.role
        room = self.rooms.get(room_name)
        if room is not None:
            if f"pid:{resume_id}" in room.banned or self._mono() >= room.restorable_until:
                return None
            return room.restorable.get(resume_id)
        meeting = stored.meeting if stored is not None else None
        if meeting is None or f"pid:{resume_id}" in meeting.banned:
            return None
        return meeting.members.get(resume_id)

    def password_hash_for(
        self, room_name: str, stored: StoredRoom | None, *, restoring: bool, role: str | None
    ) -> str | None:
        """The password hash a joiner must match, or None if no check applies."""
        room = self.rooms.get(room_name)
        config = room.config if room is not None else (stored.config if stored else None)
        if config is None or config.password_hash is None or restoring or role == "host":
            return None
        return config.password_hash

    def check_barred(
        self,
        room_name: str,
        stored: StoredRoom | None,
        *,
        resume_id: str | None,
        restoring: bool,
        role: str | None,
        subject: str | None,
        address: str | None,
        ref: str | None = None,
    ) -> None:
        """Refuse a barred joiner, or a locked room, before any password is checked."""
        room = self.rooms.get(room_name)
        if room is not None:
            banned: set[str] | frozenset[str] = room.banned
            config: RoomConfig | None = room.config
        else:
            meeting = stored.meeting if stored is not None else None
            banned = meeting.banned if meeting is not None else frozenset()
            config = stored.config if stored is not None else None
        if banned & {f"pid:{resume_id}", f"sub:{subject}", f"addr:{address}"}:
            raise ProtocolError(ErrorCode.BANNED, "you were removed from this meeting", ref)
        if restoring:
            return  # a member (or a member before the restart) is already inside
        if config is not None and config.locked and role != "host":
            raise ProtocolError(ErrorCode.LOCKED, "the room is locked", ref)

    def make_room_for(self, room_name: str, ref: str | None = None) -> list[Effect]:
        """Make sure one room more may open (before touching the store).

        At ``max_rooms``, a room held only by the resume grace of people whose
        sockets dropped gives way (its oldest-dropped first): a flood of joins that
        hang up at once must not shut everyone else out for the grace period.
        """
        if room_name in self.rooms or len(self.rooms) < self.limits.max_rooms:
            return []
        idle = [
            r
            for r in self.rooms.values()
            if not r.lobby and r.members and not any(m.connected for m in r.members.values())
        ]
        if not idle:
            raise ProtocolError(
                ErrorCode.TOO_MANY, "this server has too many open rooms; try later", ref
            )
        oldest = min(
            idle, key=lambda r: min(m.resume_deadline or 0.0 for m in r.members.values())
        )
        effects: list[Effect] = []
        for pid in list(oldest.members):
            effects += self.leave(pid, reason="disconnected")
        return effects

    def open_room(
        self,
        room_name: str,
        created_at: int,
        config: RoomConfig | None,
        meeting: MeetingRecord | None = None,
    ) -> Room:
        """The room, loaded into memory (with its stored settings) if it was not."""
        room = self.rooms.get(room_name)
        if room is not None and not room.created_at:
            room.created_at = created_at  # first seen through another node's state
        if room is None:
            if len(self.rooms) >= self.limits.max_rooms:
                raise ProtocolError(
                    ErrorCode.TOO_MANY, "this server has too many open rooms; try later"
                )
            room = self.rooms[room_name] = Room(room_name, created_at, config or RoomConfig())
            if meeting is not None:
                # Back after a restart: the interrupted meeting's members may resume in
                # their roles for one grace period, and its bans still hold.
                room.restorable = dict(meeting.members)
                room.restorable_until = self._mono() + self.limits.resume_grace
                room.banned = set(meeting.banned)
        return room

    def join(
        self,
        room_name: str,
        display_name: str,
        created_at: int,
        *,
        config: RoomConfig | None = None,
        meeting: MeetingRecord | None = None,
        resume_id: str | None = None,
        role: str | None = None,
        invited: bool = False,
        subject: str | None = None,
        address: str | None = None,
        password_verified: bool = False,
        ref: str | None = None,
    ) -> Joined:
        """Add a participant, or restore ``resume_id`` (taken from a verified token).

        ``role`` comes from a verified join token (``invited``; None: decided here);
        ``password_verified`` says the transport checked the room password.  A resume
        restores only what :meth:`resume_role` allows; any other joins as someone new.
        """
        if resume_id is not None and self.is_known(resume_id, room_name):
            # Still a member: within the grace period, or its old socket is not yet
            # seen as dead.  Either way the others see no leave/join.
            existing = self.members[resume_id]
            existing.connected = True
            existing.resume_deadline = None
            existing.node = self.node
            self.journal.append(("member", room_name, resume_id))
            return Joined(existing, True, [])
        opened = room_name not in self.rooms
        room = self.open_room(room_name, created_at, config, meeting)
        try:
            return self._enter(
                room,
                display_name,
                resume_id=resume_id,
                role=role,
                invited=invited,
                subject=subject,
                address=address,
                password_verified=password_verified,
                ref=ref,
            )
        except ProtocolError:
            if opened and not room.members and not room.lobby:
                self.rooms.pop(room_name, None)  # a refused join opens nothing
            raise

    def _enter(
        self,
        room: Room,
        display_name: str,
        *,
        resume_id: str | None,
        role: str | None,
        invited: bool,
        subject: str | None,
        address: str | None,
        password_verified: bool,
        ref: str | None,
    ) -> Joined:
        room_name = room.name
        keys = {f"pid:{resume_id}", f"sub:{subject}", f"addr:{address}"}
        if room.banned & keys:
            raise ProtocolError(ErrorCode.BANNED, "you were removed from this meeting", ref)
        restored = self.resume_role(room_name, resume_id)
        if restored is None:
            resume_id = None  # nothing to restore: a new identity
        else:
            role, invited = restored, False
        is_host = role == "host"
        if restored is None:
            if room.config.locked and not is_host:
                raise ProtocolError(ErrorCode.LOCKED, "the room is locked", ref)
            if room.config.password_hash is not None and not (is_host or password_verified):
                raise ProtocolError(
                    ErrorCode.PASSWORD_REQUIRED, "this room needs a password", ref
                )
        if len(room.members) >= self.capacity(room):
            raise ProtocolError(
                ErrorCode.ROOM_FULL,
                f"room {room_name} is full ({self.capacity(room)} participants)",
                ref,
            )
        if role is None:
            role = "host" if self.auto_host and not room.hosts() else "participant"
        pid = resume_id if resume_id is not None else new_participant_id()
        room.restorable.pop(pid, None)
        if pid in self.members:  # a stale lobby entry of the same identity
            self._drop_waiting(pid)
        info = p.Participant(id=pid, name=display_name, role=role, joined_at=self.now_ms())
        member = Member(
            info=info,
            room=room_name,
            subject=subject,
            address=address,
            node=self.node,
            invited=invited,
        )
        self.members[pid] = member
        self.journal.append(("member", room_name, pid))
        if restored is None and room.config.lobby and role != "host" and room.hosts():
            if len(room.lobby) >= self.limits.max_lobby:
                del self.members[pid]
                raise ProtocolError(ErrorCode.TOO_MANY, "the lobby is full; try later", ref)
            member.waiting = True
            room.lobby[pid] = member
            return Joined(member, False, [self._lobby_update(room)])
        room.members[pid] = member
        announce = Deliver(room_name, p.ParticipantJoined(participant=info), exclude=pid)
        return Joined(member, restored is not None, [announce, SaveMeeting(room_name)])

    def meeting_record(self, room_name: str) -> MeetingRecord | None:
        """What the store keeps of a running meeting (None: the room is not open)."""
        room = self.rooms.get(room_name)
        if room is None:
            return None
        members = {pid: m.info.role for pid, m in room.members.items()}
        if self._mono() < room.restorable_until:
            members = {**room.restorable, **members}  # still welcome back after a restart
        return MeetingRecord(members, frozenset(room.banned))

    def _lobby_update(self, room: Room) -> Deliver:
        waiting = [
            p.LobbyEntry(id=pid, name=m.info.name, since=m.info.joined_at)
            for pid, m in room.lobby.items()
        ]
        return Deliver(room.name, p.Lobby(waiting=waiting), to=room.hosts())

    def lobby_state(self, room_name: str, to: tuple[str, ...]) -> Deliver:
        """The lobby list for ``to`` (a host that just arrived)."""
        update = self._lobby_update(self.rooms[room_name])
        return Deliver(update.room, update.message, to=to)

    def _drop_waiting(self, pid: str) -> Member | None:
        member = self.members.get(pid)
        if member is None or not member.waiting:
            return None
        del self.members[pid]
        self.journal.append(("gone", member.room, pid))
        room = self.rooms.get(member.room)
        if room is not None:
            room.lobby.pop(pid, None)
            self._forget_if_empty(room)
        return member

    def _forget_if_empty(self, room: Room) -> list[Effect]:
        """Drop an empty room from memory; the meeting, and what it set, ends.

        Nobody is left to unlock the room or change its password: settings that a
        passer-by chose expire with the meeting, so a name is never held hostage.
        Those of a managed room (a token-holding host or the operator) stay, unlocked.
        """
        if room.members or room.lobby:
            return []
        self.rooms.pop(room.name, None)
        keep = replace(room.config, locked=False) if room.config.managed else None
        if keep is not None or room.config != RoomConfig():
            self.journal.append(("room", room.name, None))
        room.config = keep or RoomConfig()
        return [RoomEmptied(room.name, room.created_at, keep)]

    def leave(self, pid: str, reason: str = "left") -> list[Effect]:
        """Remove a participant now and tell the others."""
        member = self.members.get(pid)
        if member is None:
            return []
        room = self.rooms[member.room]
        if member.waiting:
            self._drop_waiting(pid)
            return [self._lobby_update(room)] if room.name in self.rooms else []
        del self.members[pid]
        del room.members[pid]
        self.journal.append(("gone", member.room, pid))
        effects: list[Effect] = [
            Deliver(member.room, p.ParticipantLeft(id=pid, reason=reason)),
            SaveMeeting(member.room),
        ]
        if member.info.role == "host" and not room.hosts():
            effects += self._hand_over(room)
        if not room.members:
            # Nobody left to admit anyone: the lobby goes too.
            for waiting in list(room.lobby):
                effects.append(Disconnect(waiting, room.name, CloseCode.ENDED, "no host is left"))
                self._drop_waiting(waiting)
        effects += self._forget_if_empty(room)
        return effects

    def _hand_over(self, room: Room) -> list[Effect]:
        """The last host left: the longest-present participant takes over."""
        if not self.auto_host:
            return []
        candidates = [m for m in room.members.values() if m.info.role == "participant"]
        if not candidates:
            return []
        heir = min(candidates, key=lambda m: m.info.joined_at)
        heir.info.role = "host"
        effects: list[Effect] = [
            self._updated(heir),
            Note(room.name, f"{heir.info.name} is now a host"),
        ]
        if room.lobby:
            effects.append(self._lobby_update(room))
        return effects

    def disconnected(self, pid: str) -> float | None:
        """The socket dropped without ``leave``: hold the identity for a resume.

        Returns the monotonic deadline after which :meth:`expire` removes it.
        Someone waiting in the lobby is simply dropped (returns None).
        """
        member = self.members.get(pid)
        if member is None:
            return None
        if member.waiting:
            return None
        member.connected = False
        member.resume_deadline = self._mono() + self.limits.resume_grace
        return member.resume_deadline

    def expire(self, pid: str) -> list[Effect]:
        """Remove ``pid`` if it is still disconnected past its resume deadline."""
        member = self.members.get(pid)
        if member is None or member.connected or member.resume_deadline is None:
            return []
        if self._mono() < member.resume_deadline:
            return []
        return self.leave(pid, reason="disconnected")

    # -- requests from a joined participant -----------------------------------

    def member(self, pid: str, ref: str | None = None) -> Member:
        member = self.members.get(pid)
        if member is None:
            raise ProtocolError(ErrorCode.NOT_JOINED, "join a room first", ref)
        if member.waiting:
            raise ProtocolError(ErrorCode.WAITING, "wait until a host admits you", ref)
        return member

    def _peer(self, member: Member, target: str, ref: str | None) -> Member:
        other = self.members.get(target)
        if other is None or other.room != member.room or other.waiting:
            raise ProtocolError(
                ErrorCode.NO_SUCH_PARTICIPANT, f"no participant {target!r} in this room", ref
            )
        return other

    def check_chat(self, pid: str, msg: p.Chat) -> tuple[Member, str, str | None]:
        """Validate a chat message before it is stored; return sender, text and recipient."""
        member = self.member(pid, msg.ref)
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

    def signal(self, pid: str, msg: p.Signal) -> list[Effect]:
        member = self.member(pid, msg.ref)
        self._peer(member, msg.to, msg.ref)
        return [Deliver(member.room, p.SignalOut(sender=pid, payload=msg.payload), to=(msg.to,))]

    def reaction(self, pid: str, msg: p.Reaction) -> list[Effect]:
        member = self.member(pid, msg.ref)
        if msg.emoji not in p.REACTIONS:
            raise ProtocolError(
                ErrorCode.BAD_REACTION,
                "reactions are one of " + " ".join(sorted(p.REACTIONS)),
                msg.ref,
            )
        return [Deliver(member.room, p.ReactionOut(sender=pid, emoji=msg.emoji))]

    def _updated(self, member: Member) -> Deliver:
        self.journal.append(("member", member.room, member.info.id))
        return Deliver(member.room, p.ParticipantUpdated(participant=member.info))

    def media(self, pid: str, msg: p.Media) -> list[Effect]:
        member = self.member(pid, msg.ref)
        info = member.info
        if info.role == "observer" and (msg.mic or msg.cam or msg.screen):
            raise ProtocolError(ErrorCode.FORBIDDEN, "observers cannot send media", msg.ref)
        for attr in ("mic", "cam", "screen"):
            value = getattr(msg, attr)
            if value is not None:
                setattr(info, attr, value)
        return [self._updated(member)]

    def hand(self, pid: str, msg: p.Hand) -> list[Effect]:
        member = self.member(pid, msg.ref)
        self._set_hand(member, msg.raised)
        return [self._updated(member)]

    def _set_hand(self, member: Member, raised: bool) -> None:
        info = member.info
        if raised != info.hand:
            info.hand = raised
            info.hand_at = self.now_ms() if raised else None

    def rename(self, pid: str, msg: p.Rename) -> list[Effect]:
        member = self.member(pid, msg.ref)
        try:
            member.info.name = check_display_name(msg.name, self.limits)
        except ProtocolError as exc:
            exc.ref = msg.ref
            raise
        return [self._updated(member)]

    # -- moderation -------------------------------------------------------------------

    def require_host(self, pid: str, ref: str | None = None) -> Member:
        member = self.member(pid, ref)
        if member.info.role != "host":
            raise ProtocolError(ErrorCode.FORBIDDEN, "only hosts can do that", ref)
        return member

    def mute(self, pid: str, msg: p.Mute) -> list[Effect]:
        host = self.require_host(pid, msg.ref)
        target = self._peer(host, msg.to, msg.ref)
        return self._mute(host, [target], msg.kind) + [
            Note(
                host.room,
                f"{host.info.name} turned off {target.info.name}'s {DEVICE_NAMES[msg.kind]}",
            )
        ]

    def mute_all(self, pid: str, msg: p.MuteAll) -> list[Effect]:
        host = self.require_host(pid, msg.ref)
        room = self.rooms[host.room]
        targets = [m for m in room.members.values() if m.info.role != "host"]
        return self._mute(host, targets, msg.kind) + [
            Note(host.room, f"{host.info.name} turned off everyone's {DEVICE_NAMES[msg.kind]}")
        ]

    def _mute(self, host: Member, targets: list[Member], kind: str) -> list[Effect]:
        effects: list[Effect] = []
        for target in targets:
            setattr(target.info, kind, False)
            effects.append(
                Deliver(host.room, p.Muted(kind=kind, by=host.info.id), to=(target.info.id,))
            )
            effects.append(self._updated(target))
        return effects

    def remove(self, pid: str, msg: p.Remove) -> list[Effect]:
        host = self.require_host(pid, msg.ref)
        target = self._peer(host, msg.to, msg.ref)
        return self._remove(self.rooms[host.room], target, msg.ban, pid, host.info.name)

    def admin_remove(self, room_name: str, pid: str) -> list[Effect] | None:
        """The operator removes a participant (admin API); None if not there."""
        room = self.rooms.get(room_name)
        target = room.members.get(pid) if room is not None else None
        if room is None or target is None:
            return None
        return self._remove(room, target, False, "admin", "An administrator")

    def _remove(self, room: Room, target: Member, ban: bool, by: str, by_name: str) -> list[Effect]:
        if ban:
            room.banned.add(f"pid:{target.info.id}")
            if target.subject:
                room.banned.add(f"sub:{target.subject}")
            if target.address:
                room.banned.add(f"addr:{target.address}")
            self.journal.append(("room", room.name, None))
        tid = target.info.id
        verb = "removed and barred" if ban else "removed"
        effects: list[Effect] = [
            Deliver(room.name, p.Removed(by=by, ban=ban), to=(tid,)),
            Disconnect(tid, room.name, CloseCode.REMOVED, "removed by a host"),
        ]
        effects += self.leave(tid, reason="removed")
        effects.append(Note(room.name, f"{by_name} {verb} {target.info.name}"))
        return effects

    def set_role(self, pid: str, msg: p.SetRole) -> list[Effect]:
        host = self.require_host(pid, msg.ref)
        target = self._peer(host, msg.to, msg.ref)
        if msg.role not in ROLES:
            raise ProtocolError(ErrorCode.BAD_MESSAGE, f"unknown role {msg.role!r}", msg.ref)
        room = self.rooms[host.room]
        if target.info.role == "host" and msg.role != "host" and len(room.hosts()) == 1:
            raise ProtocolError(ErrorCode.FORBIDDEN, "a room needs at least one host", msg.ref)
        target.info.role = msg.role
        target.invited = False  # the role is the host's choice now, not the token's
        if msg.role == "observer":
            target.info.mic = target.info.cam = target.info.screen = False
        effects: list[Effect] = [self._updated(target), SaveMeeting(room.name)]
        if msg.role == "host" and room.lobby:
            effects.append(self._lobby_update(room))
        article = "an" if msg.role == "observer" else "a"
        effects.append(
            Note(room.name, f"{host.info.name} made {target.info.name} {article} {msg.role}")
        )
        return effects

    def lower_hand(self, pid: str, msg: p.LowerHand) -> list[Effect]:
        host = self.require_host(pid, msg.ref)
        target = self._peer(host, msg.to, msg.ref)
        if not target.info.hand:
            return []
        self._set_hand(target, False)
        return [
            self._updated(target),
            Note(host.room, f"{host.info.name} lowered {target.info.name}'s hand"),
        ]

    def update_settings(
        self, pid: str, msg: p.RoomSettingsUpdate, password_hash: str | None
    ) -> list[Effect]:
        """Apply a host's settings change; ``password_hash`` is the hashed ``msg.password``."""
        host = self.require_host(pid, msg.ref)
        room = self.rooms[host.room]
        # An invited host's settings outlive the meeting, like the operator's.
        return self._apply_settings(room, msg, password_hash, host.info.name, host.invited)

    def admin_settings(
        self, room_name: str, msg: p.RoomSettingsUpdate, password_hash: str | None
    ) -> list[Effect] | None:
        """The operator sets a room's settings (managed: they outlive its meetings).

        None if the room is not open here (the caller updates the store instead).
        """
        room = self.rooms.get(room_name)
        if room is None:
            return None
        return self._apply_settings(room, msg, password_hash, "An administrator", True)

    def check_settings(self, msg: p.RoomSettingsUpdate) -> None:
        """Refuse out-of-range settings before anything changes."""
        if msg.max_participants is not None and not (
            1 <= msg.max_participants <= self.limits.max_participants
        ):
            raise ProtocolError(
                ErrorCode.BAD_MESSAGE,
                f"max_participants must be 1-{self.limits.max_participants}",
                msg.ref,
            )
        if msg.password is not None and len(msg.password) > MAX_PASSWORD_CHARS:
            raise ProtocolError(
                ErrorCode.BAD_MESSAGE,
                f"passwords are at most {MAX_PASSWORD_CHARS} characters",
                msg.ref,
            )

    def _apply_settings(
        self,
        room: Room,
        msg: p.RoomSettingsUpdate,
        password_hash: str | None,
        name: str,
        managed: bool,
    ) -> list[Effect]:
        self.check_settings(msg)
        config = room.config
        if managed:
            config.managed = True
        notes: list[str] = []
        if msg.max_participants is not None:
            config.max_participants = msg.max_participants
            notes.append(f"{name} limited the room to {msg.max_participants} participants")
        if msg.locked is not None and msg.locked != config.locked:
            config.locked = msg.locked
            notes.append(f"{name} {'locked' if msg.locked else 'unlocked'} the room")
        if msg.password is not None:
            if msg.password == "":
                config.password_hash = None
                notes.append(f"{name} removed the room password")
            else:
                config.password_hash = password_hash
                notes.append(f"{name} set a room password")
        effects: list[Effect] = []
        if msg.lobby is not None and msg.lobby != config.lobby:
            config.lobby = msg.lobby
            notes.append(f"{name} turned the lobby {'on' if msg.lobby else 'off'}")
            if not msg.lobby:
                # Nobody waits once the lobby is off: in if there is room, else told so.
                for waiting in list(room.lobby):
                    if len(room.members) < self.capacity(room):
                        effects += self._admit(room, waiting)
                        continue
                    effects.append(
                        Deliver(
                            lobby_key(room.name),
                            p.Error(code=ErrorCode.ROOM_FULL, message="the room is full"),
                            to=(waiting,),
                        )
                    )
                    effects.append(Disconnect(waiting, room.name, CloseCode.DENIED, "room full"))
                    self._drop_waiting(waiting)
        self.journal.append(("room", room.name, None))
        effects.insert(0, Deliver(room.name, p.RoomUpdated(settings=self.settings_of(room))))
        effects.insert(1, SaveSettings(room.name, room.created_at, replace(room.config)))
        effects += [Note(room.name, text) for text in notes]
        return effects

    def _admit(self, room: Room, pid: str) -> list[Effect]:
        member = room.lobby.pop(pid)
        member.waiting = False
        room.members[pid] = member
        self.journal.append(("member", room.name, pid))
        return [
            Admit(pid),
            Deliver(room.name, p.ParticipantJoined(participant=member.info), exclude=pid),
            SaveMeeting(room.name),
        ]

    def _waiting(self, host: Member, target: str, ref: str | None) -> Room:
        room = self.rooms[host.room]
        if target not in room.lobby:
            raise ProtocolError(ErrorCode.NO_SUCH_PARTICIPANT, f"nobody {target!r} is waiting", ref)
        return room

    def admit(self, pid: str, msg: p.Admit) -> list[Effect]:
        host = self.require_host(pid, msg.ref)
        room = self._waiting(host, msg.to, msg.ref)
        if len(room.members) >= self.capacity(room):
            raise ProtocolError(ErrorCode.ROOM_FULL, "the room is full", msg.ref)
        name = room.lobby[msg.to].info.name
        return self._admit(room, msg.to) + [
            self._lobby_update(room),
            Note(room.name, f"{host.info.name} admitted {name}"),
        ]

    def deny(self, pid: str, msg: p.Deny) -> list[Effect]:
        host = self.require_host(pid, msg.ref)
        room = self._waiting(host, msg.to, msg.ref)
        member = room.lobby[msg.to]
        effects: list[Effect] = [
            Deliver(
                lobby_key(room.name),
                p.Error(code=ErrorCode.DENIED, message="a host declined your request to join"),
                to=(msg.to,),
            ),
            Disconnect(msg.to, room.name, CloseCode.DENIED, "denied"),
        ]
        self._drop_waiting(msg.to)
        return effects + [
            self._lobby_update(room),
            Note(room.name, f"{host.info.name} declined {member.info.name}'s request to join"),
        ]

    def end_meeting(self, pid: str, msg: p.EndMeeting) -> list[Effect]:
        host = self.require_host(pid, msg.ref)
        return self._end(self.rooms[host.room], pid, host.info.name)

    def admin_end(self, room_name: str) -> list[Effect] | None:
        """The operator ends a meeting (admin API); None if no such room."""
        room = self.rooms.get(room_name)
        return None if room is None else self._end(room, "admin", "An administrator")

    def _end(self, room: Room, by: str, by_name: str) -> list[Effect]:
        effects: list[Effect] = [Note(room.name, f"{by_name} ended the meeting")]
        # What the meeting set ends with it (see _forget_if_empty); stored before anyone
        # is sent away, so that whoever comes straight back finds the room open.
        keep = replace(room.config, locked=False) if room.config.managed else None
        room.config = keep or RoomConfig()
        effects.append(RoomEmptied(room.name, room.created_at, keep))
        effects.append(Deliver(room.name, p.MeetingEnded(by=by)))
        effects.append(Deliver(lobby_key(room.name), p.MeetingEnded(by=by)))
        for other in list(room.members) + list(room.lobby):
            effects.append(Disconnect(other, room.name, CloseCode.ENDED, "the meeting ended"))
            self.members.pop(other, None)
        room.members.clear()
        room.lobby.clear()
        self.rooms.pop(room.name, None)
        self.journal.append(("ended", room.name, None))
        return effects

    # -- replication: state another node changed -----------------------------------

    def put_remote_member(self, member: Member, created_at: int) -> None:
        """Insert or replace a member served by another node (no journal, no effects)."""
        room = self.rooms.get(member.room)
        if room is None:
            room = self.rooms[member.room] = Room(member.room, created_at)
        pid = member.info.id
        old = self.members.get(pid)
        if old is not None and old.room != member.room:
            self.drop_remote_member(old.room, pid)
        self.members[pid] = member
        if member.waiting:
            room.members.pop(pid, None)
            room.lobby[pid] = member
        else:
            room.lobby.pop(pid, None)
            room.members[pid] = member

    def drop_remote_member(self, room_name: str, pid: str) -> None:
        member = self.members.get(pid)
        if member is not None and member.room == room_name:
            del self.members[pid]
        room = self.rooms.get(room_name)
        if room is not None:
            room.members.pop(pid, None)
            room.lobby.pop(pid, None)

    def put_remote_room(
        self, room_name: str, created_at: int, config: RoomConfig, banned: set[str]
    ) -> None:
        room = self.rooms.get(room_name)
        if room is None:
            room = self.rooms[room_name] = Room(room_name, created_at)
        room.config = config
        room.banned = set(banned)

    def drop_room(self, room_name: str) -> None:
        """Forget a room and everyone in it (the meeting ended elsewhere)."""
        room = self.rooms.pop(room_name, None)
        if room is None:
            return
        for pid in list(room.members) + list(room.lobby):
            self.members.pop(pid, None)

    def forget_if_unused(self, room_name: str) -> None:
        room = self.rooms.get(room_name)
        if room is not None:
            self._forget_if_empty(room)

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
