"""Stage and audience, and who may chat: the rules of a large meeting.

In **stage mode** only the stage publishes media: hosts, and the people a host
brought on stage.  Everyone else is the **audience**: they watch, listen, chat,
react and raise a hand to ask to speak.  The audience is the ``observer`` role
(the SFU already refuses an observer's publish, and ``media`` refuses an
observer's devices); being on stage is any other role.  So stage mode changes
only who a joiner becomes (audience, unless a join token or the first-host rule
says otherwise), and a host moves people with ``set-role`` (``participant``: on
stage, ``observer``: back to the audience).

A room is in stage mode when its hosts turned it on (``room-settings``
``stage: true``), or, while they have not chosen (``"auto"``), when it may hold
more than ``--stage-threshold`` people.

**Who may chat** (``room-settings`` ``chat``), whatever the stage mode:
``everyone``; ``stage`` (the audience cannot chat at all); ``questions`` (an
audience member's message is a *question*: stored with the recipient
``"stage"``, delivered to the stage and its sender only).  The audience's private
messages are refused in both restricted modes: they would be a way around them.

A room's chat also has a rate limit of its own, everyone together
(``--room-chat-rate`` per 10 s, on top of each person's): in a room of 10,000 each
message costs 10,000 frames, so the room, not only each person, needs a ceiling.
Hosts are never held back by it, so they can always speak to a busy room.

Nothing here does I/O; the clock is passed in.
"""

from __future__ import annotations

from typing import Final

from ..config import RateLimit
from . import protocol as p
from .protocol import ErrorCode, ProtocolError
from .ratelimit import TokenBucket
from .state import Member, Room, RoomConfig

#: The audience's role.
AUDIENCE: Final = "observer"
#: ``ChatRecord.to`` of an audience member's question (never a participant id: those
#: start with ``p_``).
QUESTIONS_TO: Final = "stage"
CHAT_MODES: Final = ("everyone", "stage", "questions")
#: Seconds over which ``--room-chat-rate`` messages are allowed.
ROOM_CHAT_WINDOW: Final = 10.0

_CHAT_NOTES: Final = {
    "everyone": "opened the chat to everyone",
    "stage": "limited the chat to the stage",
    "questions": "limited the audience's chat to questions to the stage",
}


def is_on(config: RoomConfig, capacity: int, threshold: int) -> bool:
    """Whether the room is in stage mode (``capacity``: how many it may hold)."""
    return config.stage if config.stage is not None else capacity > threshold


def on_stage(member: Member) -> bool:
    return member.info.role != AUDIENCE


def stage_ids(room: Room) -> tuple[str, ...]:
    """Who receives the room's questions: everyone on stage (one scan of the room;
    only a question costs it, and questions count against the room's chat rate)."""
    return tuple(pid for pid, m in room.members.items() if m.info.role != AUDIENCE)


def chat_recipient(
    member: Member, config: RoomConfig, to: str | None, ref: str | None
) -> str | None:
    """Where ``member``'s message goes under the room's chat setting: ``to`` unchanged,
    or ``QUESTIONS_TO`` for an audience member's question; refused with ``forbidden``
    if the setting does not let the audience say it."""
    if on_stage(member) or config.chat == "everyone":
        if to == QUESTIONS_TO:  # only the audience asks questions, and only in that mode
            raise ProtocolError(
                ErrorCode.NO_SUCH_PARTICIPANT, f"no participant {to!r} in this room", ref
            )
        return to
    if config.chat == "stage":
        raise ProtocolError(
            ErrorCode.FORBIDDEN, "the hosts limited the chat to the people on stage", ref
        )
    if to is not None and to != QUESTIONS_TO:
        raise ProtocolError(
            ErrorCode.FORBIDDEN,
            "the hosts limited the audience's chat to questions; private messages are off",
            ref,
        )
    return QUESTIONS_TO


def role_note(host: str, target: str, before: str, after: str) -> str | None:
    """The system line of a move between stage and audience (None: not such a move)."""
    if before == AUDIENCE and after != AUDIENCE:
        return f"{host} invited {target} to the stage"
    if before != AUDIENCE and after == AUDIENCE:
        return f"{host} moved {target} to the audience"
    return None


class RoomChatRates:
    """One token bucket per room with chat (made on the room's first message, dropped
    with the room): at most ``count`` messages per ``ROOM_CHAT_WINDOW``, everyone
    together."""

    def __init__(self, count: int, enabled: bool) -> None:
        self.limit = RateLimit(count, ROOM_CHAT_WINDOW)
        self.enabled = enabled and count > 0
        self._buckets: dict[str, TokenBucket] = {}

    def check(self, room: str, now: float, ref: str | None) -> None:
        """Count one message of ``room``; refuse it (``rate_limited``) past the limit."""
        if not self.enabled:
            return
        bucket = self._buckets.get(room)
        if bucket is None:
            bucket = self._buckets[room] = TokenBucket(self.limit, now)
        if not bucket.allow(now):
            raise ProtocolError(
                ErrorCode.RATE_LIMITED,
                f"this room's chat is busy ({self.limit.count} messages per "
                f"{ROOM_CHAT_WINDOW:.0f} s, everyone together); retry in "
                f"{bucket.retry_after():.1f} s",
                ref,
            )

    def forget(self, room: str) -> None:
        self._buckets.pop(room, None)

    def __len__(self) -> int:
        return len(self._buckets)


def apply_settings(config: RoomConfig, msg: p.RoomSettingsUpdate, name: str) -> list[str]:
    """Apply a settings change's ``stage`` and ``chat``; return its system lines."""
    notes: list[str] = []
    if msg.stage is not None:
        stage = None if msg.stage == "auto" else msg.stage
        if stage != config.stage:
            config.stage = stage
            if stage is None:
                notes.append(f"{name} set the stage to follow the room's size")
            else:
                notes.append(f"{name} turned the stage {'on' if stage else 'off'}")
    if msg.chat is not None and msg.chat != config.chat:
        config.chat = msg.chat
        notes.append(f"{name} {_CHAT_NOTES[msg.chat]}")
    return notes
