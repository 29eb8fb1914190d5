"""Rooms and participants: the rules of the meeting, without any I/O.

:class:`Rooms` holds every room of this server and decides what each client
request does.  Its methods validate a request against the limits and the
requester's role, change state, and return every consequence as an *effect*
(:mod:`parley.core.effects`) for the executor to carry out in order.  Joining
is one decision (:meth:`Rooms.decide`, see :mod:`parley.core.admission`)
followed by :meth:`Rooms.enter`.  Nothing here touches a socket, the store or
the clock directly, so the rules are tested as plain Python.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import replace

import msgspec

from ..config import Limits
from . import events as ev
from . import protocol as p
from . import record_rules, recording, stage
from . import roster as roster_pages
from .admission import Decision, Enter, Joined, JoinRequest, NeedPassword, Refuse
from .breakouts import Breakouts
from .effects import (
    Arrived,
    Deliver,
    Disconnect,
    Effect,
    Left,
    LetIn,
    MediaEnded,
    Moved,
    Note,
    RoleChanged,
    RoomEmptied,
    RoomOpened,
    SaveMeeting,
    SaveSettings,
    StopForwarding,
    StoreChat,
    ToLobby,
    Unpublish,
    lobby_key,
)
from .names import check_display_name, check_room_name
from .polls import Polls
from .presence import Presence
from .protocol import CloseCode, ErrorCode, ProtocolError
from .roster import FirstPages
from .state import MeetingRecord, Member, Recording, Room, RoomConfig, StoredRoom

ROLES = ("host", "participant", "observer", "bot")
#: Roles a host may give with ``set-role``; "bot" comes only from a join token.
ASSIGNABLE_ROLES = ("host", "participant", "observer")
#: Longest room password (checked before any hashing).
MAX_PASSWORD_CHARS = 128
TOO_MANY_ROOMS = "this server has too many open rooms; try later"
DEVICE_NAMES = {"mic": "microphone", "cam": "camera", "screen": "screen share"}


def new_participant_id() -> str:
    return "p_" + secrets.token_urlsafe(12)


def _stored_config(stored: StoredRoom | None) -> RoomConfig:
    return stored.config if stored is not None and stored.config is not None else RoomConfig()


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
        #: Open polls (core/polls.py); journal kinds "poll", "vote", "polls-ended" are theirs.
        self.polls = Polls(lambda entry: self.journal.append(entry))
        #: Breakout rooms (core/breakouts.py): child rooms people move into and back.
        self.breakouts = Breakouts(
            self,
            max_text=limits.chat_max_chars,
            close_warning_ms=round(limits.breakout_close_warning * 1000),
            journal=lambda entry: self.journal.append(entry),
        )
        #: Rooms can be recorded (the server's media goes through its SFU).
        self.recordable = False
        #: Big rooms' presence, batched (core/presence.py), and their welcome's first
        #: roster page (core/roster.py).
        self.presence = Presence(limits.presence_threshold, self.now_ms)
        self.first_pages = FirstPages()
        #: Each room's chat rate, everyone together (core/stage.py).
        self.chat_rates = stage.RoomChatRates(limits.room_chat_rate, limits.rate_limits)

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
            stage=True if self.stage_on(config) else msgspec.UNSET,
            chat=msgspec.UNSET if config.chat == "everyone" else config.chat,
        )

    def stage_on(self, config: RoomConfig) -> bool:
        """The room is in stage mode (core/stage.py)."""
        return stage.is_on(config, self._capacity(config), self.limits.stage_threshold)

    def is_known(self, pid: str, room_name: str) -> bool:
        """True when ``pid`` is a current member of the room (so a resume skips the checks)."""
        member = self.members.get(pid)
        return member is not None and member.room == room_name and not member.waiting

    # -- admission: one decision, then entry --------------------------------------------

    def decide(self, req: JoinRequest, stored: StoredRoom | None = None) -> Decision:
        """Whether ``req`` may join, and how (see :mod:`parley.core.admission`).

        ``stored``: the room as the store knows it, for a room not open in memory.
        Changes nothing.  In order: a current member comes back in its current role
        whatever changed meanwhile; then room count, bans, the identity a resume may
        restore, lock, password, room size, role, lobby.
        """
        if req.resume_id is not None and self.is_known(req.resume_id, req.room):
            return Enter(self.members[req.resume_id].info.role, restore=True)
        room = self.rooms.get(req.room)
        if self._no_room_for(req.room):
            return Refuse(ErrorCode.TOO_MANY, TOO_MANY_ROOMS)
        config = room.config if room is not None else _stored_config(stored)
        keys = {f"pid:{req.resume_id}", f"sub:{req.subject}", f"addr:{req.address}"}
        if self._banned(req.room, stored) & keys:
            return Refuse(ErrorCode.BANNED, "you were removed from this meeting")
        restored = self._restorable_role(req.room, req.resume_id, stored)
        role = restored if restored is not None else req.role
        if restored is None:
            if config.locked and role != "host":
                return Refuse(ErrorCode.LOCKED, "the room is locked")
            if config.password_hash is not None and role != "host" and not req.password_verified:
                return NeedPassword(config.password_hash)
        present = len(room.members) if room is not None else 0
        if present >= self._capacity(config):
            return Refuse(
                ErrorCode.ROOM_FULL,
                f"room {req.room} is full ({self._capacity(config)} participants)",
            )
        # (``any`` stops at the first host, usually the first member: a join into a big
        # room must not cost a scan of it.)
        hosts = room is not None and any(m.info.role == "host" for m in room.members.values())
        if role is None:
            # In stage mode a joiner the rules give no role enters the audience.
            joiner = stage.AUDIENCE if self.stage_on(config) else "participant"
            role = "host" if self.auto_host and not hosts else joiner
        lobby = restored is None and config.lobby and role != "host" and hosts
        if lobby and room is not None and len(room.lobby) >= self.limits.max_lobby:
            return Refuse(ErrorCode.TOO_MANY, "the lobby is full; try later")
        return Enter(role, restore=restored is not None, lobby=lobby)

    def enter(self, req: JoinRequest, decision: Enter, stored: StoredRoom | None = None) -> Joined:
        """Carry out an :class:`Enter` decision: the participant is in (or waits)."""
        pid = req.resume_id if decision.restore else None
        if pid is not None and self.is_known(pid, req.room):
            # Still a member: within the grace period, or its old socket is not yet
            # seen as dead.  Either way the others see no leave/join.
            existing = self.members[pid]
            existing.connected = True
            existing.resume_deadline = None
            existing.node = self.node
            self.journal.append(("member", req.room, pid))
            return Joined(existing, True, [])
        opened = not self.is_open(req.room)
        room = self.open_room(
            req.room,
            stored.created_at if stored is not None else 0,
            stored.config if stored is not None else None,
            stored.meeting if stored is not None else None,
        )
        if pid is None:
            pid = new_participant_id()
        room.restorable.pop(pid, None)
        if pid in self.members:  # a stale lobby entry of the same identity
            self._drop_waiting(pid)
        info = p.Participant(id=pid, name=req.name, role=decision.role, joined_at=self.now_ms())
        member = Member(
            info=info,
            room=req.room,
            subject=req.subject,
            address=req.address,
            node=self.node,
            invited=req.invited and not decision.restore and decision.role == req.role,
        )
        self.members[pid] = member
        self.journal.append(("member", req.room, pid))
        if decision.lobby:
            member.waiting = True
            room.lobby[pid] = member
            return Joined(member, False, [self._lobby_update(room)])
        room.members[pid] = member
        announce = self._announce_joined(room, info)
        logged = [self._event(ev.PARTICIPANT_JOINED, req.room, participant=self._person(member))]
        if opened:
            logged.insert(0, self._event(ev.ROOM_STARTED, req.room))
        # Stored (and logged) before anyone is told: the event log's order is then the
        # order in which people saw things happen.
        effects: list[Effect] = [SaveMeeting(req.room, tuple(logged)), *announce]
        if not decision.restore:
            effects.append(Arrived(req.room, pid, info.name))
        if opened:
            effects.insert(0, RoomOpened(req.room, room.opened_at))
            self.journal.append(("room", req.room, None))  # shares opened_at
        return Joined(member, decision.restore, effects)

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
        subject: str | None = None,
        address: str | None = None,
        password_verified: bool = False,
        ref: str | None = None,
    ) -> Joined:
        """:meth:`decide` then :meth:`enter` in one call (a refusal, or a password not
        yet verified, raises): for callers with nothing to do in between."""
        req = JoinRequest(
            room_name,
            display_name,
            ref,
            role=role,
            subject=subject,
            address=address,
            resume_id=resume_id,
            password_verified=password_verified,
        )
        stored = StoredRoom(created_at, config, meeting)
        decision = self.decide(req, stored)
        if isinstance(decision, Refuse):
            raise ProtocolError(decision.code, decision.message, ref)
        if isinstance(decision, NeedPassword):
            raise ProtocolError(ErrorCode.PASSWORD_REQUIRED, "this room needs a password", ref)
        return self.enter(req, decision, stored)

    def _banned(self, room_name: str, stored: StoredRoom | None) -> set[str] | frozenset[str]:
        room = self.rooms.get(room_name)
        if room is not None:
            return room.banned
        meeting = stored.meeting if stored is not None else None
        return meeting.banned if meeting is not None else frozenset()

    def _restorable_role(
        self, room_name: str, resume_id: str | None, stored: StoredRoom | None
    ) -> str | None:
        """The role a resume restores for an identity that is not a current member.

        A resume token only proves who its holder was.  After a restart a member of
        the interrupted meeting comes back in the role the store kept for it, until
        one resume grace after the room is back in memory.  Removed, expired, barred
        or unknown identities restore nothing: they join afresh, through every check.
        """
        if resume_id is None:
            return None
        room = self.rooms.get(room_name)
        if room is not None:
            if f"pid:{resume_id}" in room.banned or self._mono() >= room.restorable_until:
                return None
            return room.restorable.get(resume_id)
        meeting = stored.meeting if stored is not None else None
        if meeting is None or f"pid:{resume_id}" in meeting.banned:
            return None
        return meeting.members.get(resume_id)

    def make_room_for(self, room_name: str, ref: str | None = None) -> list[Effect]:
        """Make sure one room more may open (before touching the store).

        At ``max_rooms``, a room held only by the resume grace of people whose
        sockets dropped gives way (its oldest-dropped first): a flood of joins that
        hang up at once must not shut everyone else out for the grace period.
        """
        if not self._no_room_for(room_name):
            return []
        idle = [
            r
            for r in self.rooms.values()
            if not r.lobby and r.members and not any(m.connected for m in r.members.values())
        ]
        if not idle:
            raise ProtocolError(ErrorCode.TOO_MANY, TOO_MANY_ROOMS, ref)
        oldest = min(idle, key=lambda r: min(m.resume_deadline or 0.0 for m in r.members.values()))
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
            if self._no_room_for(room_name):
                raise ProtocolError(ErrorCode.TOO_MANY, TOO_MANY_ROOMS)
            room = self.rooms[room_name] = Room(room_name, created_at, config or RoomConfig())
            room.opened_at = self.now_ms()
            if meeting is not None:
                # Back after a restart: the interrupted meeting's members may resume in
                # their roles for one grace period, and its bans still hold.
                room.restorable = dict(meeting.members)
                room.restorable_until = self._mono() + self.limits.resume_grace
                room.banned = set(meeting.banned)
        return room

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
        self.polls.forget(room.name)
        self._forget_presence(room.name)
        keep = replace(room.config, locked=False) if room.config.managed else None
        if keep is not None or room.config != RoomConfig():
            self.journal.append(("room", room.name, None))
        room.config = keep or RoomConfig()
        return recording.with_meeting(room) + [
            RoomEmptied(room.name, room.created_at, keep, (self._finished(room),))
        ]

    def _finished(self, room: Room) -> ev.MeetingEvent:
        duration = self.now_ms() - room.opened_at if room.opened_at else None
        return self._event(ev.ROOM_FINISHED, room.name, duration_ms=duration)

    def _event(self, type_: str, room: str, **data: object) -> ev.MeetingEvent:
        return ev.MeetingEvent(type_, room, self.now_ms(), data)

    @staticmethod
    def _person(member: Member) -> dict[str, str]:
        return ev.person(member.info.id, member.info.name, member.info.role)

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
        left = self._event(
            ev.PARTICIPANT_LEFT, member.room, participant=self._person(member), reason=reason
        )
        # Told first, then stored: a leave shows at once.  (So a chat message sent right
        # after it may be logged before its participant.left: the log is in commit order.)
        effects: list[Effect] = [
            *self._announce_left(room, pid, reason),
            Left(member.room, pid, member.info.name, reason),
            StopForwarding(member.room, pid),
            SaveMeeting(member.room, (left,)),
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

    def move(self, pid: str, target: str) -> list[Effect]:
        """Move a participant to another room of its meeting (a breakout, or back), on
        the same socket: the rooms' others see it leave and join; its media stops in the
        old room, and its socket is welcomed into the new one (``Moved``).

        No hand-over and no checks of size, lock or lobby: a host decided.  The main room
        stays open while its breakouts are, even with nobody in it.
        """
        member = self.members[pid]
        source = self.rooms[member.room]
        if member.room == target:
            return []
        opened = not self.is_open(target)
        room = self.open_room(target, self.now_ms(), None)
        if opened:
            self.journal.append(("room", target, None))  # its start, for the other nodes
        del source.members[pid]
        room.members[pid] = member
        member.room = target
        member.info.hand, member.info.hand_at = False, None
        self.journal.append(("gone", source.name, pid))
        self.journal.append(("member", target, pid))
        effects: list[Effect] = [
            *self._announce_left(source, pid, "moved", exclude=pid),
            StopForwarding(source.name, pid),
            *self._announce_joined(room, member.info),
            Moved(pid, target),
        ]
        who = self._person(member)
        arrived = [self._event(ev.PARTICIPANT_JOINED, target, participant=who)]
        if opened:
            arrived.insert(0, self._event(ev.ROOM_STARTED, target))
        effects += [
            SaveMeeting(
                source.name,
                (self._event(ev.PARTICIPANT_LEFT, source.name, participant=who, reason="moved"),),
            ),
            SaveMeeting(target, tuple(arrived)),
        ]
        if not self.breakouts.is_open(source.name):
            effects += self._forget_if_empty(source)
        return effects

    def rooms_free(self) -> int:
        return max(0, self.limits.max_rooms - len(self.rooms))

    def _no_room_for(self, room_name: str) -> bool:
        """``room_name`` is not open and opening it would pass ``max_rooms`` (the one
        rule behind the admission answer, making room, and opening)."""
        return room_name not in self.rooms and len(self.rooms) >= self.limits.max_rooms

    def _hand_over(self, room: Room) -> list[Effect]:
        """The last host left: the longest-present participant takes over."""
        if not self.auto_host:
            return []
        candidates = [m for m in room.members.values() if m.info.role == "participant"]
        if not candidates:
            return []
        heir = min(candidates, key=lambda m: m.info.joined_at)
        heir.info.role = "host"
        changed = self._event(
            ev.ROLE_CHANGED, room.name, participant=self._person(heir), role="host", by=None
        )
        effects: list[Effect] = [
            SaveMeeting(room.name, (changed,)),
            *self._updated(heir),
            RoleChanged(heir.info.id, "host"),
            Note(room.name, f"{heir.info.name} is now a host"),
            *self.polls.state_for(room.name, heir.info.id, host=True),
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

    def handle(self, pid: str, message: p.ClientMessage) -> list[Effect]:
        """A joined participant's request that needs nothing but the rules: its effects.

        Joining, leaving, history, pings, SFU signals and room settings (whose password
        is hashed first) are the transport's; anything else sent here is refused.
        """
        match message:
            case p.Chat():
                return self.chat(pid, message)
            case p.Signal():
                return self.signal(pid, message)
            case p.Media():
                return self.media(pid, message)
            case p.Hand():
                return self.hand(pid, message)
            case p.Rename():
                return self.rename(pid, message)
            case p.Reaction():
                return self.reaction(pid, message)
            case p.Mute():
                return self.mute(pid, message)
            case p.MuteAll():
                return self.mute_all(pid, message)
            case p.Remove():
                return self.remove(pid, message)
            case p.SetRole():
                return self.set_role(pid, message)
            case p.LowerHand():
                return self.lower_hand(pid, message)
            case p.Admit():
                return self.admit(pid, message)
            case p.Deny():
                return self.deny(pid, message)
            case p.EndMeeting():
                return self.end_meeting(pid, message)
            case p.DeleteMessage():
                return record_rules.delete_message(self, pid, message)
            case p.SetRetention():
                return record_rules.set_retention(self, pid, message)
            case p.PollCreate():
                host = self.require_host(pid, message.ref)
                hosts = self.rooms[host.room].hosts()
                return self.polls.create(host, message, hosts, self.now_ms())
            case p.PollVote():
                voter = self.member(pid, message.ref)
                return self.polls.vote(voter, message, self.rooms[voter.room].hosts())
            case p.PollClose():
                return self.polls.close(self.require_host(pid, message.ref), message)
            case (
                p.BreakoutsOpen()
                | p.BreakoutAssign()
                | p.BreakoutVisit()
                | p.BreakoutsClose()
                | p.BreakoutHelp()
                | p.BreakoutBroadcast()
            ):
                return self.breakouts.handle(pid, message)
            case p.Record():
                return self.record(pid, message)
            case p.Roster():
                return self.roster_page(pid, message)
        raise ProtocolError(ErrorCode.BAD_MESSAGE, "not a request the rules handle", message.ref)

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
        to = stage.chat_recipient(member, self.rooms[member.room].config, msg.to, msg.ref)
        if to is not None and to != stage.QUESTIONS_TO:
            self._peer(member, to, msg.ref)
        return member, text, to

    def chat(self, pid: str, msg: p.Chat) -> list[Effect]:
        """A chat message: stored first; acknowledged and delivered once it is."""
        member, text, to = self.check_chat(pid, msg)
        if member.info.role != "host":  # (hosts can always speak to a busy room)
            self.chat_rates.check(member.room, self._mono(), msg.ref)
        deliver_to = None
        if to == stage.QUESTIONS_TO:
            deliver_to = (*stage.stage_ids(self.rooms[member.room]), pid)
        info = member.info
        return [
            StoreChat(member.room, pid, info.name, text, to, self.now_ms(), msg.ref, deliver_to)
        ]

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

    def _updated(self, member: Member) -> list[Effect]:
        self.journal.append(("member", member.room, member.info.id))
        self.first_pages.changed(member.room)
        return self.presence.updated(self.rooms[member.room], member.info)

    def _announce_joined(self, room: Room, info: p.Participant) -> list[Effect]:
        """Tell the room of a newcomer: at once, or in its next presence frame."""
        self.first_pages.joined(room.name)
        return self.presence.joined(room, info)

    def _announce_left(
        self, room: Room, pid: str, reason: str, exclude: str | None = None
    ) -> list[Effect]:
        self.first_pages.left(room.name, pid)
        return self.presence.left(room, pid, reason, exclude)

    def _forget_presence(self, room_name: str) -> None:
        self.chat_rates.forget(room_name)
        self.presence.forget(room_name)
        self.first_pages.changed(room_name)

    def presence_due(self, room_name: str) -> list[Effect]:
        """A big room's presence window ended (a ``PresenceDue``): its frame."""
        return self.presence.flush(self.rooms.get(room_name), room_name)

    def roster_page(self, pid: str, msg: p.Roster) -> list[Effect]:
        """One page of the room's participants for ``pid`` (core/roster.py)."""
        member = self.member(pid, msg.ref)
        out = roster_pages.page(self.rooms[member.room], msg)
        return [Deliver(member.room, out, to=(pid,))]

    def welcome_roster(
        self, room: Room, pid: str
    ) -> tuple[list[p.Participant], int | None, str | None]:
        """Who a welcome lists: everyone in a small room; in a big one, the first page
        (with the newcomer) and the count and cursor of the rest."""
        if not self.presence.is_big(room):
            return room.participants(), None, None
        people, cursor = self.first_pages.get(room)
        me = room.members.get(pid)
        if me is not None and all(i.id != pid for i in people):
            people = [me.info, *people]
        return people, len(room.members), cursor

    def welcome_roster_json(
        self, room: Room, pid: str
    ) -> tuple[list[p.Participant] | msgspec.Raw, int | None, str | None]:
        """:meth:`welcome_roster` for a welcome about to be sent: a big room's first page
        as JSON encoded once per change of it, not once per join (core/roster.py)."""
        if not self.presence.is_big(room):
            return room.participants(), None, None
        me = room.members.get(pid)
        people, cursor = self.first_pages.encoded(room, me.info if me is not None else None)
        return people, len(room.members), cursor

    def media(self, pid: str, msg: p.Media) -> list[Effect]:
        member = self.member(pid, msg.ref)
        info = member.info
        if info.role == "observer" and (msg.mic or msg.cam or msg.screen):
            why = "observers cannot send media"
            if self.stage_on(self.rooms[member.room].config):
                why = "only the stage sends media; raise your hand to ask to speak"
            raise ProtocolError(ErrorCode.FORBIDDEN, why, msg.ref)
        for attr in ("mic", "cam", "screen"):
            value = getattr(msg, attr)
            if value is not None:
                setattr(info, attr, value)
        return self._updated(member)

    def hand(self, pid: str, msg: p.Hand) -> list[Effect]:
        member = self.member(pid, msg.ref)
        self._set_hand(member, msg.raised)
        return self._updated(member)

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
        return self._updated(member)

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
            effects += self._updated(target)
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

    def admin_to_lobby(self, room_name: str, pid: str) -> list[Effect] | None:
        """Send a participant back to the room's lobby (a policy's action): they wait
        there until a host lets them in again.  None if not there, or a host (someone
        must stay who can let people in)."""
        room = self.rooms.get(room_name)
        target = room.members.get(pid) if room is not None else None
        if room is None or target is None or target.info.role == "host":
            return None
        del room.members[pid]
        target.waiting = True
        target.info.hand = False
        target.info.mic = target.info.cam = target.info.screen = False
        room.lobby[pid] = target
        self.journal.append(("member", room.name, pid))
        left = self._event(
            ev.PARTICIPANT_LEFT, room.name, participant=self._person(target), reason="lobby"
        )
        return [
            SaveMeeting(room.name, (left,)),
            # The others see them leave; they themselves are told by lobby-wait.
            *self._announce_left(room, pid, "lobby", exclude=pid),
            Left(room.name, pid, target.info.name, "lobby"),
            StopForwarding(room.name, pid),
            ToLobby(pid, room.name),
            self._lobby_update(room),
            Note(room.name, f"{target.info.name} was moved to the lobby"),
        ]

    def admin_mute(self, room_name: str, pid: str, kind: str) -> list[Effect] | None:
        """The operator (or the room's policy) turns a participant's device off; None if
        not there."""
        room = self.rooms.get(room_name)
        target = room.members.get(pid) if room is not None else None
        if room is None or target is None or kind not in DEVICE_NAMES:
            return None
        setattr(target.info, kind, False)
        return [
            Deliver(room_name, p.Muted(kind=kind, by="admin"), to=(pid,)),
            *self._updated(target),
            Note(
                room_name,
                f"An administrator turned off {target.info.name}'s {DEVICE_NAMES[kind]}",
            ),
        ]

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
        if msg.role not in ASSIGNABLE_ROLES:
            raise ProtocolError(
                ErrorCode.FORBIDDEN, "only a join token gives the bot role", msg.ref
            )
        room = self.rooms[host.room]
        if target.info.role == "host" and msg.role != "host" and len(room.hosts()) == 1:
            raise ProtocolError(ErrorCode.FORBIDDEN, "a room needs at least one host", msg.ref)
        before = target.info.role
        target.info.role = msg.role
        target.invited = False  # the role is the host's choice now, not the token's
        if msg.role == "observer":
            target.info.mic = target.info.cam = target.info.screen = False
        if (before == stage.AUDIENCE) != (msg.role == stage.AUDIENCE):
            self._set_hand(target, False)  # on stage, or back: the request is answered
        changed = self._event(
            ev.ROLE_CHANGED,
            room.name,
            participant=self._person(target),
            role=msg.role,
            by=self._person(host),
        )
        effects: list[Effect] = [
            SaveMeeting(room.name, (changed,)),
            *self._updated(target),
            RoleChanged(msg.to, msg.role),
        ]
        if msg.role == "observer":
            effects.append(Unpublish(room.name, msg.to))
        if msg.role == "host" and room.lobby:
            effects.append(self._lobby_update(room))
        if msg.role == "host":
            effects += self.polls.state_for(room.name, msg.to, host=True)
        article = "an" if msg.role == "observer" else "a"
        note = f"{host.info.name} made {target.info.name} {article} {msg.role}"
        if self.stage_on(room.config):
            note = stage.role_note(host.info.name, target.info.name, before, msg.role) or note
        effects.append(Note(room.name, note))
        return effects

    def lower_hand(self, pid: str, msg: p.LowerHand) -> list[Effect]:
        host = self.require_host(pid, msg.ref)
        target = self._peer(host, msg.to, msg.ref)
        if not target.info.hand:
            return []
        self._set_hand(target, False)
        return [
            *self._updated(target),
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
        notes += stage.apply_settings(config, msg, name)
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
        updated = p.RoomUpdated(settings=self.settings_of(room), recording=bool(room.recording))
        effects.insert(0, Deliver(room.name, updated))
        effects.insert(1, SaveSettings(room.name, room.created_at, replace(room.config)))
        effects += [Note(room.name, text) for text in notes]
        return effects

    def _admit(self, room: Room, pid: str) -> list[Effect]:
        member = room.lobby.pop(pid)
        member.waiting = False
        room.members[pid] = member
        self.journal.append(("member", room.name, pid))
        joined = self._event(ev.PARTICIPANT_JOINED, room.name, participant=self._person(member))
        return [
            SaveMeeting(room.name, (joined,)),
            LetIn(pid, room.name),
            *self._announce_joined(room, member.info),
            Arrived(room.name, pid, member.info.name),
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
        effects: list[Effect] = []
        for child in self.breakouts.forget(room.name):  # the breakouts end with it
            if (open_child := self.rooms.get(child)) is not None:
                effects += self._end(open_child, by, by_name)
        effects.append(Note(room.name, f"{by_name} ended the meeting"))
        effects += recording.with_meeting(room)
        # What the meeting set ends with it (see _forget_if_empty); stored before anyone
        # is sent away, so that whoever comes straight back finds the room open.
        keep = replace(room.config, locked=False) if room.config.managed else None
        room.config = keep or RoomConfig()
        logged = [self._event(ev.MEETING_ENDED, room.name, by={"id": by, "name": by_name})]
        logged += [
            self._event(ev.PARTICIPANT_LEFT, room.name, participant=self._person(m), reason="ended")
            for m in room.members.values()
        ]
        logged.append(self._finished(room))
        effects.append(RoomEmptied(room.name, room.created_at, keep, tuple(logged)))
        effects.append(Deliver(room.name, p.MeetingEnded(by=by)))
        effects.append(Deliver(lobby_key(room.name), p.MeetingEnded(by=by)))
        effects.append(MediaEnded(room.name))
        for other in list(room.members) + list(room.lobby):
            effects.append(Disconnect(other, room.name, CloseCode.ENDED, "the meeting ended"))
            self.members.pop(other, None)
        room.members.clear()
        room.lobby.clear()
        self.rooms.pop(room.name, None)
        self.polls.forget(room.name)
        self._forget_presence(room.name)
        self.journal.append(("ended", room.name, None))
        return effects

    # -- recording (rules: parley.core.recording) ---------------------------------

    def record(self, pid: str, msg: p.Record) -> list[Effect]:
        """A host starts or stops recording the room."""
        host = self.require_host(pid, msg.ref)
        return self._record(self.rooms[host.room], msg.action, pid, host.info.name, msg.ref)

    def admin_record(self, room_name: str, action: str) -> list[Effect] | None:
        """The operator starts or stops a recording (admin API); None if no such room."""
        room = self.rooms.get(room_name)
        return None if room is None else self._record(room, action, "admin", "An administrator")

    def _record(
        self, room: Room, action: str, by: str, by_name: str, ref: str | None = None
    ) -> list[Effect]:
        if action not in ("start", "stop"):
            raise ProtocolError(ErrorCode.BAD_MESSAGE, 'action is "start" or "stop"', ref)
        settings = self.settings_of(room)
        self.journal.append(("room", room.name, None))  # the state travels to other nodes
        if action == "start":
            return recording.start(
                room, settings, by=by, by_name=by_name, now=self._wall(),
                recordable=self.recordable, ref=ref,
                recording_now=sum(1 for r in self.rooms.values() if r.recording is not None),
            )  # fmt: skip
        return recording.stop(room, settings, by_name=by_name, ref=ref)

    def recording_failed(self, room_name: str, rec_id: str, reason: str) -> list[Effect]:
        """The media side stopped recording by itself (a full disk)."""
        room = self.rooms.get(room_name)
        if room is None:
            return []
        self.journal.append(("room", room_name, None))
        return recording.failed(room, self.settings_of(room), rec_id, reason)

    def recording_here(self, room_name: str, rec_id: str) -> None:
        """This node writes the files of ``rec_id`` (the room's media owner, in a cluster)."""
        room = self.rooms.get(room_name)
        if room is not None and room.recording is not None and room.recording.id == rec_id:
            room.recording = replace(room.recording, node=self.node)
            self.journal.append(("room", room_name, None))

    # -- replication: state another node changed -----------------------------------

    def put_remote_member(self, member: Member, created_at: int) -> list[Effect]:
        """Insert or replace a member as another node changed it (no journal).

        What follows here from a change made elsewhere: a new role (a fresh resume
        token if the socket is here; no more forwarding of an observer's media).
        """
        room = self.rooms.get(member.room)
        if room is None:
            room = self.rooms[member.room] = Room(member.room, created_at)
        pid = member.info.id
        old = self.members.get(pid)
        effects: list[Effect] = []
        if old is not None and old.room != member.room:
            effects += self.drop_remote_member(old.room, pid)
        elif old is not None and old.info.role != member.info.role:
            effects.append(RoleChanged(pid, member.info.role))
        if member.info.role == "observer":
            effects.append(Unpublish(member.room, pid))
        if old is None:
            self.first_pages.joined(member.room)  # (no scan per join on another node)
        else:
            self.first_pages.changed(member.room)
        self.members[pid] = member
        if member.waiting:
            room.members.pop(pid, None)
            room.lobby[pid] = member
        else:
            room.lobby.pop(pid, None)
            room.members[pid] = member
        return effects

    def drop_remote_member(self, room_name: str, pid: str) -> list[Effect]:
        """Another node removed ``pid`` from the room: its media goes too."""
        member = self.members.get(pid)
        if member is not None and member.room == room_name:
            del self.members[pid]
        room = self.rooms.get(room_name)
        if room is not None:
            room.members.pop(pid, None)
            room.lobby.pop(pid, None)
        self.first_pages.left(room_name, pid)
        return [StopForwarding(room_name, pid)]

    def put_remote_room(
        self,
        room_name: str,
        created_at: int,
        config: RoomConfig,
        banned: set[str],
        opened_at: int = 0,
        rec: Recording | None = None,
    ) -> list[Effect]:
        """Another node's room state; a recording that began or ended there is started or
        stopped here too (the room's media owner writes it: see server.recordings)."""
        room = self.rooms.get(room_name)
        if room is None:
            room = self.rooms[room_name] = Room(room_name, created_at)
        room.config = config
        room.banned = set(banned)
        if opened_at:  # the opening node's clock: every node reports the same start
            room.opened_at = opened_at
        return recording.replicated(room, rec)

    def drop_room(self, room_name: str) -> list[Effect]:
        """Forget a room and everyone in it (the meeting ended elsewhere)."""
        room = self.rooms.pop(room_name, None)
        self.polls.forget(room_name, shared=False)
        self._forget_presence(room_name)
        self.breakouts.drop_remote(room_name)
        if room is None:
            return []
        for pid in list(room.members) + list(room.lobby):
            self.members.pop(pid, None)
        return [*recording.with_meeting(room), MediaEnded(room_name)]

    def forget_if_unused(self, room_name: str) -> None:
        room = self.rooms.get(room_name)
        if room is not None and not self.breakouts.is_open(room_name):
            self._forget_if_empty(room)  # (a main room stays while its breakouts are open)

    # -- queries --------------------------------------------------------------

    def room(self, room_name: str) -> Room | None:
        """The room if it is open (in memory) here."""
        return self.rooms.get(room_name)

    def is_open(self, room_name: str) -> bool:
        return room_name in self.rooms

    def find(self, pid: str) -> Member | None:
        """The participant (in a room or its lobby), if this server knows it."""
        return self.members.get(pid)

    def open_rooms(self) -> list[Room]:
        return list(self.rooms.values())

    def participants_on(self, node: str) -> int:
        """Participants (not waiting) whose socket is on ``node``."""
        return sum(1 for m in self.members.values() if m.node == node and not m.waiting)

    def room_of(self, pid: str) -> Room:
        return self.rooms[self.member(pid).room]

    def hand_queue(self, room_name: str) -> list[p.Participant]:
        """Raised hands, in the order they went up."""
        room = self.rooms.get(room_name)
        if room is None:
            return []
        raised = [m.info for m in room.members.values() if m.info.hand]
        return sorted(raised, key=lambda info: info.hand_at or 0)
