"""Shared room state across nodes: Redis is the record, each node keeps a mirror.

Every node's :class:`parley.core.rooms.Rooms` holds all participants of the rooms
it serves, its own (``node`` = this node) and the others' (a mirror).  What
the core changes is journalled; after each request the journal is written to
Redis (hash ``parley:members:<room>``, key ``parley:roomstate:<room>``) and
published on the room channel, in one ordered stream, so the other nodes
apply the same change to their mirrors.  A joiner's admission runs under a
per-room Redis lock on a freshly loaded snapshot, so room size, the host
rule, the lobby, passwords and bans hold across nodes.

Liveness: each node refreshes ``parley:node:<id>`` (with expiry).  A node
that disappears leaves orphans; after ``reap_after`` seconds without a
resume elsewhere, a surviving node announces them as left.

Media (``--media sfu``): a room's media is forwarded by one node, its media
owner (``parley:sfu:<room>``), the node that handled the room's first SFU
signal.  Participants connected to other nodes reach it through the room
channel (:class:`SfuSignalOp`); its answers come back as ordinary deliveries.
When the owner stops, its key is taken over by the next node that handles an
SFU signal for the room (clients re-publish when their connections fail).

Breakout rooms: a meeting and its breakouts share one channel (see
:func:`parley.cluster.redis_broker.channel`).  The open breakouts are a key
(``parley:breakouts:<main>``) and :class:`BreakoutsOp`; a move of a participant whose
socket is on another node is a :class:`MoveOp` to that node, after the member ops
that say where it now is.  The timers: see :mod:`parley.core.breakouts`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import AsyncIterator, Collection, Coroutine
from typing import Any, Protocol

import msgspec
from redis.exceptions import RedisError

from ..core import protocol as p
from ..core.breakouts import BreakoutSet, main_of
from ..core.effects import Effect
from ..core.polls import Poll
from ..core.rooms import Rooms
from ..core.state import Member, Recording, RoomConfig
from ..store import RoomRecord
from .redis_broker import CONTROL, STATE, Envelope, RedisBroker

log = logging.getLogger(__name__)


class NodeSide(Protocol):
    """What the replicator asks of its node: the one effect executor, acts on the
    sockets this node holds, and its SFU.  (Not the server: the cluster package imports
    nothing from ``parley.server``.)"""

    async def apply(self, effects: list[Effect]) -> None:
        """Carry out effects of changes other nodes made (the node's executor)."""

    def tell_local(self, room: str, message: p.ServerMessage) -> None:
        """A message for this node's sockets in the room only."""

    def replace(self, pid: str) -> None:
        """``pid`` resumed on another node: retire its socket here without a leave."""

    def disconnect_local(self, pid: str, code: int, reason: str) -> bool: ...

    def let_in_local(self, pid: str) -> bool: ...

    def to_lobby_local(self, pid: str) -> bool: ...

    def move_local(self, pid: str, room: str) -> bool:
        """Move ``pid``'s socket, if it is here, into another room of its meeting."""

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None: ...

    def media_rooms(self) -> Collection[str]:
        """Rooms whose media this node forwards."""

    async def remote_media_signal(
        self, room: str, pid: str, role: str, payload: bytes, ref: str | None
    ) -> None: ...


class MemberState(msgspec.Struct, array_like=True):
    info: p.Participant
    room: str
    node: str
    waiting: bool
    subject: str | None
    address: str | None
    invited: bool = False


class RecordingState(msgspec.Struct, array_like=True):
    """A room's recording in progress (``core.state.Recording``)."""

    id: str
    by: str
    by_name: str
    since: int
    node: str  # the node writing the files ("": none yet)


class RoomState(msgspec.Struct, array_like=True):
    created_at: int
    locked: bool
    lobby: bool
    password_hash: str | None
    max_participants: int | None
    banned: list[str]
    managed: bool = False
    #: When the meeting started (ms), as the node that opened the room saw it (0: unknown).
    opened_at: int = 0
    #: The room's recording, so every node's welcome and pre-join page tell it.
    recording: RecordingState | None = None
    #: Stage mode (None: by size) and who may chat (core/stage.py).
    stage: bool | None = None
    chat: str = "everyone"


class MemberOp(msgspec.Struct, tag="member", array_like=True):
    member: MemberState
    #: Sent while resynchronising after a Redis outage: nobody announced it, so a node
    #: that did not know this participant tells its clients.
    announce: bool = False


class GoneOp(msgspec.Struct, tag="gone", array_like=True):
    pid: str
    announce: bool = False


class RoomOp(msgspec.Struct, tag="room", array_like=True):
    state: RoomState


class EndedOp(msgspec.Struct, tag="ended", array_like=True):
    pass


class DisconnectOp(msgspec.Struct, tag="disconnect", array_like=True):
    pid: str
    code: int
    reason: str


class LetInOp(msgspec.Struct, tag="admit", array_like=True):
    """Let a waiting participant into the room (its socket is on the receiving node)."""

    pid: str


class ToLobbyOp(msgspec.Struct, tag="to-lobby", array_like=True):
    """Move a participant's socket to the room's lobby (its socket is on the receiving
    node)."""

    pid: str


class MoveOp(msgspec.Struct, tag="move", array_like=True):
    """Move a participant's socket into another room of its meeting (a breakout, or
    back) and welcome it there (its socket is on the receiving node)."""

    pid: str
    room: str


class BreakoutsState(msgspec.Struct, array_like=True):
    """A meeting's open breakouts (who is in which is in the rooms' members)."""

    titles: list[str]
    opened_by: str
    rooms: list[str]
    ends_at: int | None
    closing_at: int | None


class BreakoutsOp(msgspec.Struct, tag="breakouts", array_like=True):
    """The meeting's breakouts opened or changed (a state), or closed (None)."""

    state: BreakoutsState | None


class SfuSignalOp(msgspec.Struct, tag="sfu-signal", array_like=True):
    """A participant's ``signal`` to ``"sfu"``, for the room's media owner."""

    owner: str
    pid: str
    role: str
    payload: bytes  # the signal's JSON payload, as received
    ref: str | None


class PollState(msgspec.Struct, array_like=True):
    """An open poll's definition (its votes are kept one per voter: see VoteState)."""

    id: str
    question: str
    options: list[str]
    multiple: bool
    anonymous: bool
    by: str
    created_at: int


class VoteState(msgspec.Struct, array_like=True):
    choices: list[int]
    name: str | None  # the voter's name, for a named poll


class PollOp(msgspec.Struct, tag="poll", array_like=True):
    """A poll started on another node."""

    poll: PollState


class PollGoneOp(msgspec.Struct, tag="poll-gone", array_like=True):
    """A poll closed on another node (its results went out from there)."""

    id: str


class VoteOp(msgspec.Struct, tag="vote", array_like=True):
    """One voter's choices: votes of different voters commute, so nodes that apply them in
    different orders agree."""

    poll: str
    pid: str
    vote: VoteState


Op = (
    MemberOp
    | GoneOp
    | RoomOp
    | EndedOp
    | DisconnectOp
    | LetInOp
    | ToLobbyOp
    | SfuSignalOp
    | PollOp
    | PollGoneOp
    | VoteOp
    | MoveOp
    | BreakoutsOp
)
_encode = msgspec.msgpack.Encoder().encode
_decode_op = msgspec.msgpack.Decoder(Op).decode
_decode_member = msgspec.msgpack.Decoder(MemberState).decode
_decode_room = msgspec.msgpack.Decoder(RoomState).decode
_decode_poll = msgspec.msgpack.Decoder(PollState).decode
_decode_vote = msgspec.msgpack.Decoder(VoteState).decode
_decode_breakouts = msgspec.msgpack.Decoder(BreakoutsState).decode

# Release a lock only if we still own it.
_UNLOCK = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""
# Take a room's media over from a stopped node (only if it still names that node).
_TAKE_OVER = """
if redis.call('get', KEYS[1]) == ARGV[1] then redis.call('set', KEYS[1], ARGV[2], 'EX', ARGV[3]) end
return redis.call('get', KEYS[1])
"""
# Keep our media ownership from expiring (only if it is still ours).
_KEEP = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('expire', KEYS[1], ARGV[2]) end
return 0
"""
#: Seconds a room's admission lock lives unless its holder renews it (a stopped node's
#: lock is gone after this), and how long a join waits for a live holder's admission.
LOCK_TTL = 5  # whole seconds: renewed by _KEEP (EXPIRE)
LOCK_PATIENCE = 30.0
#: Seconds a room's new record may take to reach Redis before this node's own clients
#: hear of the change anyway (a join on another node reads the record: it must not find
#: the old settings after the host here was told of the new ones).
SETTLE_WAIT = 2.0
#: Seconds a media owner's key lives without a refresh (refreshed with the node's key).
MEDIA_TTL = 30


def members_key(room: str) -> str:
    return "parley:members:" + room


def room_key(room: str) -> str:
    return "parley:roomstate:" + room


def media_key(room: str) -> str:
    return f"parley:sfu:{room}"


def polls_key(room: str) -> str:
    """Hash of a room's open polls ("p:<poll>") and their votes ("v:<poll>:<pid>")."""
    return "parley:polls:" + room


def breakouts_key(main: str) -> str:
    """A meeting's open breakouts (a :class:`BreakoutsState`; absent: none open)."""
    return "parley:breakouts:" + main


def node_key(node: str) -> str:
    return "parley:node:" + node


def new_node_id() -> str:
    return "n_" + secrets.token_hex(4)


class RoomLoader(Protocol):
    """What the replicator reads from the store (a ``parley.store.Store`` is one)."""

    async def load_room(self, room: str) -> RoomRecord | None: ...


class Replicator:
    """Keeps this node's mirror of shared rooms in step with Redis and the other nodes."""

    def __init__(
        self,
        rooms: Rooms,
        broker: RedisBroker,
        store: RoomLoader,
        node_side: NodeSide,
        *,
        node_ttl: float = 10.0,
        reap_after: float = 10.0,
    ) -> None:
        self.rooms = rooms
        self.store = store
        self.node_side = node_side
        self.broker = broker
        self.node = broker.node
        self.redis = broker.redis
        self.node_ttl = node_ttl
        self.reap_after = reap_after
        self._orphans: dict[str, float] = {}  # pid -> first seen orphaned (monotonic)
        self._remote_rooms: set[str] = set()
        #: Meetings (main rooms) with an admission under way here: followed though nobody
        #: of them is here yet (a slow ``on_join`` hook can take seconds).
        self._admitting: dict[str, int] = {}
        self._tasks: list[asyncio.Task[None]] = []
        broker.on_op = self.on_op
        broker.on_reconnect = self.resync
        broker.remote_rooms = self._remote_rooms.__contains__

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._heartbeat(), name="parley-node-heartbeat"),
            asyncio.create_task(self._reaper(), name="parley-reaper"),
        ]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- writing our changes ---------------------------------------------------------

    def flush(self) -> bool:
        """Write and publish what the core journalled since the last flush; True if a
        room's record (its settings, bans, recording) or its end was among it."""
        rooms = self.rooms
        journal, rooms.journal = rooms.journal, []
        touched: set[str] = set()
        room_changed = False
        for kind, room_name, pid in journal:
            touched.add(room_name)
            if kind == "member" and pid is not None:
                member = rooms.find(pid)
                if member is None or member.room != room_name:
                    continue
                state = _member_state(member)
                self.broker.command("hset", members_key(room_name), pid, _encode(state))
                self.broker.send(STATE, room_name, _encode(MemberOp(state)))
            elif kind == "gone" and pid is not None:
                self.broker.command("hdel", members_key(room_name), pid)
                self.broker.send(STATE, room_name, _encode(GoneOp(pid)))
            elif kind == "room":
                room = rooms.room(room_name)
                if room is None:
                    continue
                rstate = _room_state(room.created_at, room.config, room.banned, room.opened_at)
                rstate.recording = _recording_state(room.recording)
                self.broker.command("set", room_key(room_name), _encode(rstate))
                self.broker.send(STATE, room_name, _encode(RoomOp(rstate)))
                room_changed = True
            elif kind == "ended":
                room_changed = True
                self.broker.command(
                    "delete",
                    members_key(room_name),
                    room_key(room_name),
                    polls_key(room_name),
                    breakouts_key(room_name),
                )
                self.broker.send(STATE, room_name, _encode(EndedOp()))
            elif kind in ("poll", "vote", "polls-ended"):
                self._flush_poll(kind, room_name, pid)
            elif kind == "breakouts":
                self._flush_breakouts(room_name)
        for room_name in touched:
            self._recount(room_name)
        return room_changed

    async def settle(self) -> None:
        """Wait until what :meth:`flush` queued is in Redis (at most ``SETTLE_WAIT``:
        with Redis away the meeting goes on from the local view)."""
        try:
            await asyncio.wait_for(self.broker.drain(), SETTLE_WAIT)
        except TimeoutError:
            log.warning("redis did not take a room's new record in %.1f s", SETTLE_WAIT)

    def _flush_poll(self, kind: str, room_name: str, key: str | None) -> None:
        polls = self.rooms.polls
        if kind == "polls-ended":  # the room emptied: its polls (and votes) go
            self.broker.command("delete", polls_key(room_name))
            return
        if key is None:
            return
        if kind == "poll":
            poll = polls.find(room_name, key)
            if poll is None:  # closed here: its votes stay until the room's key goes
                self.broker.command("hdel", polls_key(room_name), "p:" + key)
                self.broker.send(STATE, room_name, _encode(PollGoneOp(key)))
                return
            state = _poll_state(poll)
            self.broker.command("hset", polls_key(room_name), "p:" + key, _encode(state))
            self.broker.send(STATE, room_name, _encode(PollOp(state)))
            return
        poll_id, _, voter = key.partition(" ")
        poll = polls.find(room_name, poll_id)
        choices = poll.votes.get(voter) if poll is not None else None
        if poll is None or choices is None:
            return
        vote = VoteState(list(choices), poll.names.get(voter))
        field = f"v:{poll_id}:{voter}"
        self.broker.command("hset", polls_key(room_name), field, _encode(vote))
        self.broker.send(STATE, room_name, _encode(VoteOp(poll_id, voter, vote)))

    def _flush_breakouts(self, main: str) -> None:
        bset = self.rooms.breakouts.sets.get(main)
        if bset is None:
            self.broker.command("delete", breakouts_key(main))
            self.broker.send(STATE, main, _encode(BreakoutsOp(None)))
            return
        state = BreakoutsState(
            bset.titles, bset.opened_by, bset.rooms, bset.ends_at, bset.closing_at
        )
        self.broker.command("set", breakouts_key(main), _encode(state))
        self.broker.send(STATE, main, _encode(BreakoutsOp(state)))

    def control(
        self, room: str, op: DisconnectOp | LetInOp | ToLobbyOp | MoveOp | SfuSignalOp
    ) -> None:
        """Ask the node serving ``op.pid`` to act on it."""
        self.broker.send(CONTROL, room, _encode(op))

    def disconnect_remote(self, room: str, pid: str, code: int, reason: str) -> None:
        self.control(room, DisconnectOp(pid, code, reason))

    def let_in_remote(self, room: str, pid: str) -> None:
        member = self.rooms.find(pid)
        if member is not None and member.node != self.node:
            self.control(room, LetInOp(pid))

    def to_lobby_remote(self, room: str, pid: str) -> None:
        member = self.rooms.find(pid)
        if member is not None and member.node != self.node:
            self.control(room, ToLobbyOp(pid))

    def move_remote(self, room: str, pid: str) -> None:
        """``pid`` moved to ``room``: its node moves its socket there (sent after the
        member ops that put it there, on the same channel)."""
        member = self.rooms.find(pid)
        if member is not None and member.node != self.node:
            self.control(room, MoveOp(pid, room))

    def sfu_signal(
        self, room: str, owner: str, pid: str, role: str, payload: bytes, ref: str | None
    ) -> None:
        """A participant's signal for the SFU of ``owner``, the room's media owner."""
        self.control(room, SfuSignalOp(owner, pid, role, payload, ref))

    def _recount(self, room_name: str) -> None:
        room = self.rooms.room(room_name)
        remote = room is not None and any(
            m.node != self.node for m in (*room.members.values(), *room.lobby.values())
        )
        if remote:
            self._remote_rooms.add(room_name)
        else:
            self._remote_rooms.discard(room_name)

    # -- applying the others' changes -----------------------------------------------------

    def on_op(self, env: Envelope) -> None:
        try:
            op = _decode_op(env.body)
        except msgspec.DecodeError:
            log.warning("undecodable operation from node %s", env.node)
            return
        rooms = self.rooms
        node = self.node_side
        room_name = env.room
        effects: list[Effect] = []
        match op:
            case MemberOp(member=state, announce=announce):
                local = rooms.find(state.info.id)
                if announce and local is None and not state.waiting:
                    node.tell_local(room_name, p.ParticipantJoined(participant=state.info))
                if local is not None and local.node == self.node and state.node != self.node:
                    # Resumed on another node: retire our socket without a leave.
                    node.replace(state.info.id)
                opened = rooms.room(room_name)
                created = opened.created_at if opened is not None else 0
                effects = rooms.put_remote_member(_member(state), created)
            case GoneOp(pid=pid, announce=announce):
                known = rooms.find(pid)
                if announce and known is not None and not known.waiting:
                    node.tell_local(room_name, p.ParticipantLeft(id=pid, reason="disconnected"))
                effects = rooms.drop_remote_member(room_name, pid)
            case RoomOp(state=rstate):
                effects = rooms.put_remote_room(
                    room_name,
                    rstate.created_at,
                    _config(rstate),
                    set(rstate.banned),
                    rstate.opened_at,
                    _recording(rstate.recording),
                )
            case EndedOp():
                effects = rooms.drop_room(room_name)
            case PollOp(poll=pstate):
                rooms.polls.put_remote_poll(_poll(room_name, pstate))
            case PollGoneOp(id=poll_id):
                rooms.polls.drop_remote_poll(room_name, poll_id)
            case VoteOp(poll=poll_id, pid=voter, vote=vote):
                rooms.polls.put_remote_vote(
                    room_name, poll_id, voter, tuple(vote.choices), vote.name
                )
            case DisconnectOp(pid=pid, code=code, reason=reason):
                node.disconnect_local(pid, code, reason)
            case LetInOp(pid=pid):
                node.let_in_local(pid)
            case ToLobbyOp(pid=pid):
                node.to_lobby_local(pid)
            case MoveOp(pid=pid, room=target):
                if node.move_local(pid, target):
                    node.spawn(self.broker.watch(target))  # (its channel is already ours)
            case BreakoutsOp(state=bstate):
                if bstate is None:
                    rooms.breakouts.drop_remote(room_name)
                else:
                    effects = rooms.breakouts.put_remote(_breakouts(room_name, bstate))
            case SfuSignalOp(owner=owner, pid=pid, role=role, payload=payload, ref=ref):
                if owner == self.node:
                    node.spawn(node.remote_media_signal(room_name, pid, role, payload, ref))
        if effects:
            # What follows here from another node's change (a new role's token, media
            # that stops): carried out by this node's executor, like any effect.
            node.spawn(node.apply(effects))
        self._recount(room_name)

    # -- media ownership ------------------------------------------------------------------

    async def media_owner(self, room_name: str, *, claim: bool = True) -> str | None:
        """The node that forwards ``room_name``'s media (this one if none does yet).

        With ``claim=False`` (a question, not a negotiation) nothing is taken: None
        when no live node forwards the room's media.
        """
        key = media_key(room_name)
        try:
            if not claim:
                owner = _text(await self.redis.get(key))
                if owner is None or owner == self.node:
                    return owner
                return owner if await self.redis.exists(node_key(owner)) else None
            if await self.redis.set(key, self.node, nx=True, ex=MEDIA_TTL):
                return self.node
            owner = _text(await self.redis.get(key))
            if owner is None:  # expired just now
                return await self.media_owner(room_name)
            if owner != self.node and not await self.redis.exists(node_key(owner)):
                log.info("taking over the media of %s from stopped node %s", room_name, owner)
                owner = _text(
                    await self.redis.eval(_TAKE_OVER, 1, key, owner, self.node, MEDIA_TTL)
                )
            return owner or self.node
        except (RedisError, OSError) as exc:
            log.warning("media owner of %s unknown (%s): forwarding here", room_name, exc)
            return self.node

    async def release_media(self, room_name: str) -> None:
        """This node stopped forwarding ``room_name``: let the next signal choose anew."""
        with contextlib.suppress(RedisError, OSError):
            await self.redis.eval(_UNLOCK, 1, media_key(room_name), self.node)

    # -- snapshots and admission ------------------------------------------------------------

    async def enter(self, room_name: str) -> None:
        """Subscribe to a room and load its current state into the mirror."""
        await self.broker.watch(room_name)
        # What this node changed must be in Redis before it reads the record back: a
        # breakouts move changes other nodes' members, which a stale read would undo.
        self.flush()
        await self.broker.drain()
        await self.refresh(room_name)

    async def follow(self, room_name: str) -> None:
        """:meth:`enter`, unless Redis is away (then the local view is all there is)."""
        try:
            await self.enter(room_name)
        except (RedisError, OSError) as exc:
            log.warning("state of %s not loaded (%s); using the local view", room_name, exc)

    async def refresh(self, room_name: str) -> None:
        """Replace the mirror's remote participants of a room by Redis's record (of a
        main room: of its open breakout rooms too, so a resume finds its breakout)."""
        main = main_of(room_name)
        raw_members, raw_room, raw_polls, raw_breakouts = await asyncio.gather(
            self.redis.hgetall(members_key(room_name)),
            self.redis.get(room_key(room_name)),
            self.redis.hgetall(polls_key(room_name)),
            self.redis.get(breakouts_key(main)),
        )
        rooms = self.rooms
        room = rooms.room(room_name)
        created = room.created_at if room is not None else 0
        before = self._remote_members(room_name)
        effects_of_room: list[Effect] = []
        if raw_room is not None:
            rstate = _decode_room(_as_bytes(raw_room))
            created = rstate.created_at
            effects_of_room = rooms.put_remote_room(
                room_name,
                created,
                _config(rstate),
                set(rstate.banned),
                rstate.opened_at,
                _recording(rstate.recording),
            )
        elif room is None:
            # Nobody has shared this room's state yet: start from the stored settings.
            record = await self.store.load_room(room_name)
            if record is not None:
                created = record.created_at
                rooms.put_remote_room(room_name, created, record.config(), set())
        seen: set[str] = set()
        effects: list[Effect] = effects_of_room
        for raw in raw_members.values():
            state = _decode_member(_as_bytes(raw))
            seen.add(state.info.id)
            if state.node == self.node and state.info.id in rooms.members:
                continue  # ours: our memory is the newer truth
            effects += rooms.put_remote_member(_member(state), created)
        self._load_polls(room_name, raw_polls)
        if raw_breakouts is not None and not rooms.breakouts.is_open(main):
            # Known here already: the ops kept it current (and a write of ours may still
            # be queued), so only a meeting's breakouts seen for the first time load.
            bstate = _decode_breakouts(_as_bytes(raw_breakouts))
            effects += rooms.breakouts.put_remote(_breakouts(main, bstate))
        room = rooms.room(room_name)
        if room is not None:
            for pid, member in [*room.members.items(), *room.lobby.items()]:
                if member.node != self.node and pid not in seen:
                    effects += rooms.drop_remote_member(room_name, pid)
            rooms.forget_if_unused(room_name)
        self._recount(room_name)
        self._announce_differences(room_name, before, self._remote_members(room_name))
        if effects:
            await self.node_side.apply(effects)
        bset = rooms.breakouts.sets.get(main)
        if room_name == main and bset is not None:
            for child in bset.rooms:
                await self.refresh(child)

    def _load_polls(self, room_name: str, raw: dict[Any, Any]) -> None:
        """The room's open polls and votes from Redis's record (definitions first)."""
        polls = self.rooms.polls
        entries = sorted((_text(k) or "", _as_bytes(v)) for k, v in raw.items())
        for key, value in entries:  # "p:" sorts before "v:"
            if key.startswith("p:"):
                polls.put_remote_poll(_poll(room_name, _decode_poll(value)))
            elif key.startswith("v:"):
                poll_id, _, voter = key[2:].partition(":")
                vote = _decode_vote(value)
                polls.put_remote_vote(room_name, poll_id, voter, tuple(vote.choices), vote.name)

    def _remote_members(self, room_name: str) -> dict[str, p.Participant]:
        room = self.rooms.room(room_name)
        if room is None:
            return {}
        return {pid: m.info for pid, m in room.members.items() if m.node != self.node}

    def _announce_differences(
        self, room_name: str, before: dict[str, p.Participant], after: dict[str, p.Participant]
    ) -> None:
        """Tell our clients about joins and leaves they missed (e.g. during an outage)."""
        tell = self.node_side.tell_local
        for pid in before.keys() - after.keys():
            tell(room_name, p.ParticipantLeft(id=pid, reason="disconnected"))
        for pid in after.keys() - before.keys():
            tell(room_name, p.ParticipantJoined(participant=after[pid]))

    async def recording_of(self, room_name: str) -> bool:
        """Whether the cluster's record says ``room_name`` records (for a node serving
        nobody there: the pre-join page)."""
        raw = await self.redis.get(room_key(room_name))
        return raw is not None and _decode_room(_as_bytes(raw)).recording is not None

    async def members_of(self, room_name: str) -> list[p.Participant]:
        """Everyone in a room, from Redis's record (for nodes that serve nobody there)."""
        raw = await self.redis.hgetall(members_key(room_name))
        states = [_decode_member(_as_bytes(v)) for v in raw.values()]
        return [s.info for s in states if not s.waiting]

    @contextlib.asynccontextmanager
    async def room_lock(
        self, room_name: str, patience: float = LOCK_PATIENCE
    ) -> AsyncIterator[None]:
        """Serialise admissions to a room across nodes (and load its fresh state); the
        meeting stays followed (:meth:`sweep`) while one is under way."""
        main = main_of(room_name)
        self._admitting[main] = self._admitting.get(main, 0) + 1
        try:
            async with self._lock(room_name, patience):
                yield
        finally:
            left = self._admitting.pop(main) - 1
            if left:
                self._admitting[main] = left

    @contextlib.asynccontextmanager
    async def _lock(self, room_name: str, patience: float) -> AsyncIterator[None]:
        """The lock lives ``LOCK_TTL`` unless its holder renews it: an admission may
        outlast that (an ``on_join`` hook with a budget of seconds), a dead node's lock
        must not.  So a waiter may wait ``patience`` for a live holder."""
        key = "parley:lock:" + room_name
        token = secrets.token_hex(8)
        deadline = time.monotonic() + patience
        locked = False
        keeper: asyncio.Task[None] | None = None
        try:
            while time.monotonic() < deadline:
                if await self.redis.set(key, token, nx=True, ex=LOCK_TTL):
                    locked = True
                    break
                await asyncio.sleep(0.01)
            if locked:
                keeper = asyncio.create_task(self._keep_lock(key, token))
            else:
                log.warning("room lock %s not acquired in %.1f s; going ahead", room_name, patience)
            await self.enter(room_name)
        except (RedisError, OSError) as exc:
            if keeper is not None:
                keeper.cancel()
            # Redis is away: admit on the local view rather than refuse everyone.
            log.warning("room lock %s unavailable (%s); using the local view", room_name, exc)
            yield
            return
        try:
            yield
        finally:
            if keeper is not None:
                keeper.cancel()
            # The next admission must see what this one wrote: send it before unlocking.
            self.flush()
            await self.broker.drain()
            if locked:
                with contextlib.suppress(RedisError, OSError):
                    await self.redis.eval(_UNLOCK, 1, key, token)

    async def _keep_lock(self, key: str, token: str) -> None:
        """Renew a held room lock until its admission is done (cancelled then)."""
        while True:
            await asyncio.sleep(LOCK_TTL / 3)
            with contextlib.suppress(RedisError, OSError):
                await self.redis.eval(_KEEP, 1, key, token, LOCK_TTL)

    # -- liveness ----------------------------------------------------------------------------

    async def _heartbeat(self) -> None:
        while True:
            try:
                await self.redis.set(node_key(self.node), b"1", ex=max(1, int(self.node_ttl)))
                for room_name in list(self.node_side.media_rooms()):
                    await self.redis.eval(_KEEP, 1, media_key(room_name), self.node, MEDIA_TTL)
            except (RedisError, OSError):
                self.broker._needs_resync = True  # rewrite our state when Redis is back
            await asyncio.sleep(self.node_ttl / 3)

    async def _reaper(self) -> None:
        while True:
            await asyncio.sleep(min(3.0, self.reap_after / 3))
            try:
                await self.reap_once()
                await self.sweep()
            except (RedisError, OSError):
                pass
            except Exception:
                log.exception("reaper failed")

    async def reap_once(self) -> None:
        """Announce as left the participants of nodes that stopped, after a resume window."""
        rooms = self.rooms
        remote = [m for m in list(rooms.members.values()) if m.node != self.node]
        nodes = sorted({m.node for m in remote})
        if not nodes:
            self._orphans.clear()
            return
        alive = await self.redis.exists(*[node_key(n) for n in nodes]) if nodes else 0
        if alive == len(nodes):
            self._orphans.clear()
            return
        states = await asyncio.gather(*[self.redis.exists(node_key(n)) for n in nodes])
        dead = {n for n, up in zip(nodes, states, strict=True) if not up}
        now = time.monotonic()
        due: list[Member] = []
        current: dict[str, float] = {}
        for member in remote:
            if member.node in dead:
                since = self._orphans.get(member.info.id, now)
                current[member.info.id] = since
                if now - since >= self.reap_after:
                    due.append(member)
        self._orphans = current
        for member in due:
            await self._reap(member)

    async def _reap(self, member: Member) -> None:
        room_name, pid = member.room, member.info.id
        async with self.room_lock(room_name):
            # Someone may have resumed it elsewhere, or another survivor reaped it.
            fresh = self.rooms.find(pid)
            if fresh is None or fresh.node != member.node:
                return
            log.info("%s of stopped node %s announced as left", pid, member.node)
            await self.node_side.apply(self.rooms.leave(pid, reason="disconnected"))

    async def sweep(self) -> None:
        """Stop following rooms this node no longer serves anyone in.

        Decided and forgotten in one synchronous step (the unsubscribes come after): an
        admission that starts meanwhile watches the room again and loads it afresh, and
        one under way keeps its meeting followed until its newcomer is in.
        """
        rooms = self.rooms
        forwarded = self.node_side.media_rooms()
        # A meeting is followed as one: its main room and breakouts share a channel, and
        # its main room's mirror stays while anyone of it is here (in a breakout, say).
        kept = {main_of(r) for r in forwarded} | self._admitting.keys()
        for room in rooms.open_rooms():
            if any(m.node == self.node for m in (*room.members.values(), *room.lobby.values())):
                kept.add(main_of(room.name))
        gone = [r for r in self.broker.watched if main_of(r) not in kept]
        for room_name in gone:
            if rooms.room(room_name) is not None:
                rooms.drop_room(room_name)
            self._remote_rooms.discard(room_name)
        # Breakout rooms mirrored through their meeting's channel, never watched alone.
        followed = kept | {main_of(r) for r in self.broker.watched if r not in gone}
        for room in rooms.open_rooms():
            if main_of(room.name) not in followed:
                rooms.drop_room(room.name)
                self._remote_rooms.discard(room.name)
        for main in list(rooms.breakouts.sets):
            if main not in followed:
                rooms.breakouts.drop_remote(main)
        await self.broker.unwatch_many(gone)

    async def resync(self) -> None:
        """After a Redis outage (or restart): rewrite our participants, reload the others.

        What changed here meanwhile was never announced to the other nodes, so these
        operations ask them to tell their clients (``announce``): our participants that
        joined, and those that left (still in Redis's record under our name).
        """
        rooms = self.rooms
        ours = {pid: m for pid, m in rooms.members.items() if m.node == self.node}
        for pid, member in ours.items():
            state = _member_state(member)
            self.broker.command("hset", members_key(member.room), pid, _encode(state))
            self.broker.send(STATE, member.room, _encode(MemberOp(state, announce=True)))
        for room_name in list(self.broker.watched):
            with contextlib.suppress(RedisError, OSError):
                raw = await self.redis.hgetall(members_key(room_name))
                for pid_raw, value in raw.items():
                    state = _decode_member(_as_bytes(value))
                    if state.node == self.node and state.info.id not in ours:
                        self.broker.command("hdel", members_key(room_name), pid_raw)
                        gone = GoneOp(state.info.id, announce=True)
                        self.broker.send(STATE, room_name, _encode(gone))
        for room in rooms.open_rooms():
            room_name = room.name
            if any(m.node == self.node for m in room.members.values()):
                rooms.journal.append(("room", room_name, None))
                # Open polls and their votes, as this node knows them (idempotent writes).
                for poll in rooms.polls.open_polls(room_name):
                    rooms.journal.append(("poll", room_name, poll.id))
                    for voter in poll.votes:
                        rooms.journal.append(("vote", room_name, f"{poll.id} {voter}"))
        for main in list(rooms.breakouts.sets):
            # Rewritten by one node, the one acting for the meeting: a node that missed
            # the close during the outage must not bring closed breakouts back.
            if rooms.breakouts.acts_for(main):
                rooms.journal.append(("breakouts", main, None))
        self.flush()
        for room_name in list(self.broker.watched):
            with contextlib.suppress(RedisError, OSError):
                await self.refresh(room_name)


def _text(raw: bytes | str | None) -> str | None:
    return raw.decode() if isinstance(raw, bytes) else raw


def _as_bytes(raw: bytes | str) -> bytes:
    return raw.encode() if isinstance(raw, str) else raw


def _member_state(member: Member) -> MemberState:
    return MemberState(
        member.info,
        member.room,
        member.node,
        member.waiting,
        member.subject,
        member.address,
        member.invited,
    )


def _member(state: MemberState) -> Member:
    return Member(
        info=state.info,
        room=state.room,
        waiting=state.waiting,
        subject=state.subject,
        address=state.address,
        node=state.node,
        invited=state.invited,
    )


def _room_state(
    created_at: int, config: RoomConfig, banned: set[str], opened_at: int = 0
) -> RoomState:
    return RoomState(
        created_at,
        config.locked,
        config.lobby,
        config.password_hash,
        config.max_participants,
        sorted(banned),
        config.managed,
        opened_at,
        stage=config.stage,
        chat=config.chat,
    )


def _recording_state(rec: Recording | None) -> RecordingState | None:
    if rec is None:
        return None
    return RecordingState(rec.id, rec.by, rec.by_name, rec.since, rec.node)


def _recording(state: RecordingState | None) -> Recording | None:
    if state is None:
        return None
    return Recording(state.id, state.by, state.by_name, state.since, state.node)


def _poll_state(poll: Poll) -> PollState:
    return PollState(
        poll.id,
        poll.question,
        poll.options,
        poll.multiple,
        poll.anonymous,
        poll.by,
        poll.created_at,
    )


def _poll(room: str, state: PollState) -> Poll:
    return Poll(
        id=state.id,
        room=room,
        question=state.question,
        options=list(state.options),
        multiple=state.multiple,
        anonymous=state.anonymous,
        by=state.by,
        created_at=state.created_at,
    )


def _breakouts(main: str, state: BreakoutsState) -> BreakoutSet:
    return BreakoutSet(
        main=main,
        titles=list(state.titles),
        opened_by=state.opened_by,
        ends_at=state.ends_at,
        closing_at=state.closing_at,
        rooms=list(state.rooms),
    )


def _config(state: RoomState) -> RoomConfig:
    return RoomConfig(
        locked=state.locked,
        lobby=state.lobby,
        password_hash=state.password_hash,
        max_participants=state.max_participants,
        managed=state.managed,
        stage=state.stage,
        chat=state.chat,
    )
