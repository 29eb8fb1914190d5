"""The wire protocol: typed messages, decoded and validated in one step.

Every frame is a JSON object whose ``type`` field names it.  Client messages
decode into one of the structs of :data:`ClientMessage` (a msgspec tagged
union); anything else raises :class:`ProtocolError` with the error code the
client receives.  Server messages are structs too and are encoded once per
fan-out.  ``docs/protocol.md`` documents each message; keep the two in step.

This module does no I/O.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

import msgspec

PROTOCOL_VERSION: Final = 1

#: Emoji a ``reaction`` may carry.
REACTIONS: Final = frozenset({"👍", "👏", "❤️", "😂", "😮", "🎉", "🤔", "👋"})


class ErrorCode:
    """The ``code`` values of ``error`` messages (see docs/protocol.md)."""

    BAD_JSON: Final = "bad_json"
    BAD_MESSAGE: Final = "bad_message"
    UNKNOWN_TYPE: Final = "unknown_type"
    BAD_VERSION: Final = "bad_version"
    NOT_JOINED: Final = "not_joined"
    ALREADY_JOINED: Final = "already_joined"
    BAD_ROOM: Final = "bad_room"
    BAD_NAME: Final = "bad_name"
    BAD_RESUME: Final = "bad_resume"
    ROOM_FULL: Final = "room_full"
    TOO_LONG: Final = "too_long"
    EMPTY: Final = "empty"
    NO_SUCH_PARTICIPANT: Final = "no_such_participant"
    NO_SUCH_MESSAGE: Final = "no_such_message"
    BAD_REACTION: Final = "bad_reaction"
    RATE_LIMITED: Final = "rate_limited"
    UNAVAILABLE: Final = "unavailable"
    FORBIDDEN: Final = "forbidden"
    LOCKED: Final = "locked"
    PASSWORD_REQUIRED: Final = "password_required"
    BAD_PASSWORD: Final = "bad_password"
    TOKEN_REQUIRED: Final = "token_required"
    BAD_TOKEN: Final = "bad_token"
    BANNED: Final = "banned"
    DENIED: Final = "denied"
    WAITING: Final = "waiting"
    TOO_MANY: Final = "too_many"
    INTERNAL: Final = "internal"
    POLL_CLOSED: Final = "poll_closed"
    NO_SUCH_BREAKOUT: Final = "no_such_breakout"
    BREAKOUTS_OPEN: Final = "breakouts_open"
    NO_BREAKOUTS: Final = "no_breakouts"
    ALREADY_RECORDING: Final = "already_recording"
    NOT_RECORDING: Final = "not_recording"
    RECORDING_UNAVAILABLE: Final = "recording_unavailable"


class ProtocolError(Exception):
    """A refused request: becomes ``{"type":"error","code":…,"message":…,"ref":…}``."""

    def __init__(self, code: str, message: str, ref: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.ref = ref


class CloseCode:
    """WebSocket close codes the server uses."""

    NORMAL: Final = 1000
    GOING_AWAY: Final = 1001  # server shutting down or draining
    PROTOCOL_ERROR: Final = 1002  # a malformed WebSocket frame (unmasked, bad opcode...)
    UNSUPPORTED_DATA: Final = 1003  # binary frame
    INVALID_DATA: Final = 1007  # a text frame that is not UTF-8
    POLICY: Final = 1008  # join timeout, too many errors, too slow
    TOO_BIG: Final = 1009  # frame over max_frame_bytes
    INTERNAL: Final = 1011
    SERVICE_RESTART: Final = 1012  # node draining: reconnect (to another node) and resume
    # Application codes (4000-4999): the client must not reconnect on its own.
    REPLACED: Final = 4000  # the same participant resumed on another connection
    REMOVED: Final = 4001  # a host removed this participant
    ENDED: Final = 4002  # a host ended the meeting (or the last host left the lobby)
    DENIED: Final = 4003  # a host declined the request to join


# --------------------------------------------------------------------------
# Client -> server


#: A correlation id: at most 64 characters.
Ref = Annotated[str, msgspec.Meta(max_length=64)]
#: Integers the store can hold (signed 64-bit), e.g. message ids.
Int64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]


class _Client(msgspec.Struct, tag_field="type", forbid_unknown_fields=False):
    #: Optional client-chosen correlation id, echoed in the answer or error.
    ref: Ref | None = None


class Join(_Client, tag="join"):
    room: str = ""
    name: str = ""
    v: Int64 = PROTOCOL_VERSION
    #: Resume token from an earlier ``welcome``: keeps the same identity.
    resume: str | None = None
    #: Room password, when the room has one.
    password: str | None = None
    #: Signed join token (JWT), required by ``--require-token`` servers.
    token: str | None = None


class Chat(_Client, tag="chat"):
    text: str = ""
    #: Participant id for a private message; absent for the whole room.
    to: str | None = None


class Signal(_Client, tag="signal"):
    to: str = ""
    #: Opaque WebRTC signalling (offer/answer/candidate), relayed unchanged.
    payload: msgspec.Raw = msgspec.Raw(b"null")


class Reaction(_Client, tag="reaction"):
    emoji: str = ""


class Hand(_Client, tag="hand"):
    raised: bool = False


class Media(_Client, tag="media"):
    mic: bool | None = None
    cam: bool | None = None
    screen: bool | None = None


class Rename(_Client, tag="rename"):
    name: str = ""


class History(_Client, tag="history"):
    before: Int64 | None = None
    limit: Int64 | None = None
    #: From a breakout: the main room's history (absent: the room one is in).
    room: str | None = None


class Ping(_Client, tag="ping"):
    pass


class Leave(_Client, tag="leave"):
    pass


# -- moderation (hosts only) ---------------------------------------------------

#: "bot" is given only by a join token (``set-role`` refuses it).
Role = Literal["host", "participant", "observer", "bot"]
MediaKind = Literal["mic", "cam", "screen"]
#: ``room-settings.chat``: who may chat in a room (core/stage.py).
ChatMode = Literal["everyone", "stage", "questions"]


class Mute(_Client, tag="mute"):
    """Turn off one participant's microphone, camera or screen share."""

    to: str = ""
    kind: MediaKind = "mic"


class MuteAll(_Client, tag="mute-all"):
    """Turn off everyone's microphone (or camera), hosts excepted."""

    kind: MediaKind = "mic"


class Remove(_Client, tag="remove"):
    to: str = ""
    #: Also bar re-entry for the rest of the meeting.
    ban: bool = False


class SetRole(_Client, tag="set-role"):
    to: str = ""
    role: Role = "participant"


class LowerHand(_Client, tag="lower-hand"):
    to: str = ""


class RoomSettingsUpdate(_Client, tag="room-settings"):
    """Change room settings; absent fields stay as they are."""

    locked: bool | None = None
    lobby: bool | None = None
    #: New password; "" clears it.
    password: str | None = None
    max_participants: Int64 | None = None
    #: Stage mode (core/stage.py): on, off, or "auto" (on past ``--stage-threshold``).
    stage: bool | Literal["auto"] | None = None
    #: Who may chat: everyone, the stage only, or the audience by questions to the stage.
    chat: ChatMode | None = None


class Admit(_Client, tag="admit"):
    to: str = ""


class Deny(_Client, tag="deny"):
    to: str = ""


class EndMeeting(_Client, tag="end-meeting"):
    pass


# -- the meeting record --------------------------------------------------------


class DeleteMessage(_Client, tag="delete-message"):
    """Delete a stored chat message: its author, or a host for a public one."""

    id: Int64 = 0


class SetRetention(_Client, tag="set-retention"):
    """Hosts: keep this room's history ``days`` days (null: the server's default)."""

    days: Int64 | None = None


# -- polls (see core/polls.py for the rules and limits) -------------------------------

#: Generous bounds on decoding only (the rules refuse more than 10 options, with a clear
#: message): the work a frame can cause stays small.
_PollOptions = Annotated[list[str], msgspec.Meta(max_length=32)]
_PollChoices = Annotated[list[Int64], msgspec.Meta(max_length=32)]


class PollCreate(_Client, tag="poll-create"):
    """A host starts a poll."""

    question: str = ""
    options: _PollOptions = msgspec.field(default_factory=list)
    multiple: bool = False
    anonymous: bool = True


class PollVote(_Client, tag="poll-vote"):
    """Vote (or change one's vote) in an open poll: the indexes of the chosen options."""

    poll: str = ""
    choices: _PollChoices = msgspec.field(default_factory=list)


class PollClose(_Client, tag="poll-close"):
    """A host closes a poll: its results go to everyone and into the chat history."""

    poll: str = ""


# -- breakout rooms (see core/breakouts.py for the rules and limits) ------------------


class BreakoutsOpen(_Client, tag="breakouts-open"):
    """A host opens breakout rooms: one per name; who goes where by ``assign`` (participant
    id -> room index) and, with ``auto``, everyone else spread evenly at random."""

    names: Annotated[list[str], msgspec.Meta(max_length=32)] = msgspec.field(default_factory=list)
    assign: Annotated[dict[str, Int64], msgspec.Meta(max_length=512)] = msgspec.field(
        default_factory=dict
    )
    auto: bool = True
    #: Seconds until everyone returns on their own; None: until a host closes them.
    duration: Int64 | None = None


class BreakoutAssign(_Client, tag="breakout-assign"):
    """A host moves someone into a breakout (``room``: its index) or back (None)."""

    to: str = ""
    room: Int64 | None = None


class BreakoutVisit(_Client, tag="breakout-visit"):
    """A host goes into a breakout (``room``: its index) or back to the main room (None)."""

    room: Int64 | None = None


class BreakoutsClose(_Client, tag="breakouts-close"):
    """A host closes every breakout: everyone returns after a warning."""


class BreakoutHelp(_Client, tag="breakout-help"):
    """Someone in a breakout asks the hosts for help."""


class BreakoutBroadcast(_Client, tag="breakout-broadcast"):
    """A host's message to every breakout (and the main room)."""

    text: str = ""


class Record(_Client, tag="record"):
    """Start or stop recording the room (hosts; SFU rooms only)."""

    action: Literal["start", "stop"] = "start"


class Roster(_Client, tag="roster"):
    """One page of the room's participants, in join order (core/roster.py has the limits):
    after ``after`` (the ``next`` of the page before; absent: from the start), at most
    ``limit``, only those whose name contains ``q`` (any case) if given."""

    after: str | None = None
    limit: Int64 | None = None
    q: str | None = None


ClientMessage = (
    Join
    | Chat
    | Signal
    | Reaction
    | Hand
    | Media
    | Rename
    | History
    | Ping
    | Leave
    | Mute
    | MuteAll
    | Remove
    | SetRole
    | LowerHand
    | RoomSettingsUpdate
    | Admit
    | Deny
    | EndMeeting
    | DeleteMessage
    | SetRetention
    | PollCreate
    | PollVote
    | PollClose
    | BreakoutsOpen
    | BreakoutAssign
    | BreakoutVisit
    | BreakoutsClose
    | BreakoutHelp
    | BreakoutBroadcast
    | Record
    | Roster
)

_decoder: Final = msgspec.json.Decoder(ClientMessage)


def decode(data: str | bytes) -> ClientMessage:
    """Decode one client frame, or raise :class:`ProtocolError`."""
    try:
        message: ClientMessage = _decoder.decode(data)
        return message
    except msgspec.ValidationError as exc:
        text = str(exc)
        ref = _peek_ref(data)
        if "`$.type`" in text or "missing required field `type`" in text:
            raise ProtocolError(
                ErrorCode.UNKNOWN_TYPE, f"unknown or missing message type: {text}", ref
            ) from None
        if "Expected `object`" in text and "`$`" not in text.replace("`$.", ""):
            raise ProtocolError(ErrorCode.BAD_MESSAGE, "a message must be a JSON object") from None
        raise ProtocolError(ErrorCode.BAD_MESSAGE, text, ref) from None
    except msgspec.DecodeError as exc:
        raise ProtocolError(ErrorCode.BAD_JSON, f"malformed JSON: {exc}") from None
    except RecursionError:
        raise ProtocolError(ErrorCode.BAD_JSON, "JSON nested too deeply") from None


def _peek_ref(data: str | bytes) -> str | None:
    """Best effort: the ``ref`` of a message that failed validation."""
    try:
        obj = msgspec.json.decode(data)
    except (msgspec.DecodeError, RecursionError):
        return None
    if isinstance(obj, dict):
        ref = obj.get("ref")
        if isinstance(ref, str) and len(ref) <= 64:
            return ref
    return None


# --------------------------------------------------------------------------
# Server -> client


class Participant(msgspec.Struct):
    id: str
    name: str
    role: str = "participant"
    mic: bool = False
    cam: bool = False
    screen: bool = False
    hand: bool = False
    #: Milliseconds since the epoch when the hand went up (orders the queue).
    hand_at: int | None = None
    joined_at: int = 0


class ChatRecord(msgspec.Struct, omit_defaults=True):
    """A stored chat message as clients see it."""

    id: int
    ts: int  # milliseconds since the epoch
    room: str
    sender: str  # participant id
    name: str  # sender's display name when sent
    text: str
    #: Recipient id of a private message; "stage" for an audience member's question
    #: (the room's chat is "questions": it reaches the stage and its sender only).
    to: str | None = None
    system: bool = False  # a line written by the server (moderation, meeting events)
    #: A system entry's kind: "note" (moderation), "joined"/"left" (attendance, in the
    #: record: exports and search), "poll"...; absent for a participant's message.
    kind: str | None = None
    #: A system entry's structured content (e.g. a poll's results), if any.
    data: dict[str, Any] | None = None


class RoomSettings(msgspec.Struct):
    """Room settings as clients see them (the password itself never leaves the server)."""

    locked: bool = False
    lobby: bool = False
    has_password: bool = False
    max_participants: int = 6
    #: Present (true) only in stage mode: only the stage (hosts, speakers) publishes;
    #: joiners are audience (core/stage.py).
    stage: bool | msgspec.UnsetType = msgspec.UNSET
    #: Present only when restricted: "stage" or "questions" (absent: everyone may chat).
    chat: str | msgspec.UnsetType = msgspec.UNSET


class RoomInfo(msgspec.Struct):
    name: str
    created_at: int
    media: Literal["mesh", "sfu"] = "mesh"
    max_participants: int = 6
    settings: RoomSettings = msgspec.field(default_factory=RoomSettings)
    #: The room is being recorded (docs/recording.md).
    recording: bool = False


class LobbyEntry(msgspec.Struct):
    id: str
    name: str
    since: int


class _Server(msgspec.Struct, tag_field="type", omit_defaults=True):
    pass


class BreakoutHere(msgspec.Struct, omit_defaults=True):
    """In a welcome: this room is a breakout of ``main``."""

    main: str
    index: int
    title: str
    ends_at: int | None = None  # ms since the epoch: everyone returns then
    closing_at: int | None = None  # a host closed the breakouts: everyone returns then


class BreakoutRoom(msgspec.Struct):
    index: int
    title: str
    room: str  # the room's name (``<main>~<n>``): its chat history is stored under it
    members: list[str]  # participant ids
    names: list[str]  # their display names, in the same order


class BreakoutsState(msgspec.Struct, omit_defaults=True):
    main: str
    open: bool
    rooms: list[BreakoutRoom] = msgspec.field(default_factory=list)
    ends_at: int | None = None
    closing_at: int | None = None


class Welcome(_Server, tag="welcome"):
    v: int
    id: str
    resume: str
    resumed: bool
    room: RoomInfo
    participants: list[Participant]
    history: list[ChatRecord]
    history_more: bool
    ice_servers: list[dict[str, object]]
    limits: dict[str, int]
    #: Set when this room is a breakout (the same socket moved here from the main room).
    breakout: BreakoutHere | None = None
    #: Big rooms only (core/presence.py): ``participants`` is then a first page (hosts,
    #: raised hands, people on mic or sharing, then the earliest to join); how many are
    #: in the room, and the cursor of the next page (``roster``), absent if none.
    participant_count: int | None = None
    roster_next: str | None = None


class ResumeToken(_Server, tag="resume-token"):
    """A fresh resume token for this participant (its role changed since the last one)."""

    token: str


class ParticipantJoined(_Server, tag="participant-joined"):
    participant: Participant


class ParticipantLeft(_Server, tag="participant-left"):
    id: str
    reason: str  # "left" | "disconnected" | "timeout" | "removed" | "moved" (breakouts)


class ParticipantUpdated(_Server, tag="participant-updated"):
    participant: Participant


class Departure(msgspec.Struct):
    id: str
    reason: str  # as in participant-left


class PresenceOut(_Server, tag="presence", omit_defaults=False):
    """Big rooms: the joins, leaves and changes of one short window, in one frame (apply
    ``left``, then ``joined``, then ``updated``).  ``count``: people in the room now.
    ``truncated``: too many changes for one frame; the lists are empty and a client that
    shows the roster pages it again (``roster``)."""

    joined: list[Participant] = msgspec.field(default_factory=list)
    left: list[Departure] = msgspec.field(default_factory=list)
    updated: list[Participant] = msgspec.field(default_factory=list)
    count: int = 0
    truncated: bool = False


class RosterPage(_Server, tag="roster-page"):
    """The answer to ``roster``: participants in join order, the cursor of the next page
    (absent: the last page), and how many are in the room."""

    participants: list[Participant]
    count: int
    next: str | None = None
    q: str | None = None
    ref: str | None = None


class ChatOut(_Server, tag="chat"):
    message: ChatRecord


class ChatAck(_Server, tag="chat-ack"):
    id: int
    ts: int
    ref: str | None = None


class SignalOut(_Server, tag="signal"):
    sender: str = msgspec.field(name="from")
    payload: msgspec.Raw


class ReactionOut(_Server, tag="reaction"):
    sender: str = msgspec.field(name="from")
    emoji: str


class HistoryOut(_Server, tag="history"):
    messages: list[ChatRecord]
    more: bool
    ref: str | None = None
    #: Set when the request named a room (the main room, from a breakout).
    room: str | None = None


class RoomUpdated(_Server, tag="room-updated", omit_defaults=False):
    settings: RoomSettings
    #: The room is being recorded (always present).
    recording: bool = False


class Lobby(_Server, tag="lobby"):
    """To hosts: who is waiting to be admitted."""

    waiting: list[LobbyEntry]


class LobbyWait(_Server, tag="lobby-wait"):
    """To a joiner: the room has a lobby; wait for a host."""

    room: str


class Muted(_Server, tag="muted"):
    """To the participant a host muted: turn that device off."""

    kind: str
    by: str


class Removed(_Server, tag="removed"):
    by: str
    ban: bool


class MeetingEnded(_Server, tag="meeting-ended"):
    by: str


class ActiveSpeaker(_Server, tag="speaker", omit_defaults=False):
    """The SFU's dominant speaker changed (null: nobody is speaking)."""

    id: str | None


class MessageDeleted(_Server, tag="message-deleted"):
    """A chat message was deleted: show a tombstone in its place."""

    id: int
    room: str
    by: str


class PollInfo(msgspec.Struct, omit_defaults=True):
    """A poll as a client sees it.  ``counts`` (votes per option) and ``voters`` go to
    hosts while it is open and to everyone once it is closed; ``names`` (per option,
    who chose it) only for a named poll, on the same terms."""

    id: str
    question: str
    options: list[str]
    multiple: bool
    anonymous: bool
    by: str  # the host who started it (participant id)
    closed: bool = False
    voters: int | None = None
    counts: list[int] | None = None
    names: list[list[str]] | None = None
    #: The receiver's own choices (sent to that participant only).
    mine: list[int] | None = None


class PollOut(_Server, tag="poll"):
    """A poll started, changed (hosts: live counts) or closed."""

    poll: PollInfo


class PollVoted(_Server, tag="poll-voted"):
    """To the voter: the vote counted (the choices now held for it)."""

    poll: str
    choices: list[int]
    ref: str | None = None


class BreakoutsOut(_Server, tag="breakouts"):
    """The breakout rooms of a meeting opened, changed, are closing or closed."""

    state: BreakoutsState


class BreakoutHelpOut(_Server, tag="breakout-help"):
    """To hosts: someone in a breakout asks for help."""

    sender: str = msgspec.field(name="from")
    name: str
    index: int
    title: str


class BreakoutMessage(_Server, tag="breakout-message"):
    """A host's message to every breakout."""

    sender: str = msgspec.field(name="from")
    name: str
    text: str


class Pong(_Server, tag="pong"):
    ref: str | None = None


class Error(_Server, tag="error"):
    code: str
    message: str
    ref: str | None = None


ServerMessage = (
    Welcome
    | ResumeToken
    | ParticipantJoined
    | ParticipantLeft
    | ParticipantUpdated
    | PresenceOut
    | RosterPage
    | ChatOut
    | ChatAck
    | SignalOut
    | ReactionOut
    | HistoryOut
    | RoomUpdated
    | Lobby
    | LobbyWait
    | Muted
    | Removed
    | MeetingEnded
    | ActiveSpeaker
    | MessageDeleted
    | PollOut
    | PollVoted
    | BreakoutsOut
    | BreakoutHelpOut
    | BreakoutMessage
    | Pong
    | Error
)

_encoder: Final = msgspec.json.Encoder()


def encode(message: ServerMessage) -> bytes:
    """Serialise a server message to the JSON bytes of one text frame."""
    return _encoder.encode(message)


def error(exc: ProtocolError) -> bytes:
    return encode(Error(code=exc.code, message=exc.message, ref=exc.ref))
