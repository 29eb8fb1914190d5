"""The server: the composition root of one Parley process, and its aiohttp app.

It builds the parts (core, hub, broker, store, media, cluster, the effect
executor) and wires them through their ports; requests reach the core through
sessions, and every consequence goes out through the executor.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections import Counter
from collections.abc import Coroutine, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from aiohttp import web

from .. import __version__
from ..auth import AttemptThrottle, JoinTokenVerifier, hash_password, throttle_key
from ..cluster import RedisBroker, Replicator, new_node_id
from ..cluster.media_relay import RelayDirectory
from ..config import Settings
from ..core import protocol as p
from ..core import stage
from ..core.broker import Broker, InProcessBroker
from ..core.effects import Effect, StartRecording, StopRecording
from ..core.events import CHAT_MESSAGE, DEFAULT_EVENT_TYPES
from ..core.protocol import CloseCode, ErrorCode, ProtocolError
from ..core.ratelimit import TokenBucket
from ..core.resume_tokens import ResumeTokens, load_secret
from ..core.rooms import Rooms
from ..core.state import MeetingRecord, Member, RoomConfig, StoredRoom
from ..ops.admin import AdminRoomSettings, add_admin_routes
from ..ops.event_api import add_event_routes
from ..ops.metrics import Metrics, StatsSnapshot, add_metrics_route
from ..ops.proxy import TrustedProxies
from ..ops.turn import TurnConfig
from ..policy.runner import Policy
from ..store import MeetingState, RoomRecord, SqlStore, Store, open_store
from ..webhooks import Delivery
from . import aiohttp_socket, api, pages
from .aiohttp_socket import AiohttpSocket
from .executor import Executor, SingleNode, room_record
from .frames import text_frame
from .hub import Connection, Hub
from .local_sessions import LocalSessions, Spawn
from .media import MediaRooms
from .meeting_writer import MeetingWriter
from .origin import origin_allowed
from .policy_glue import PolicyActions, PolicyObserver
from .recording_api import add_recording_routes
from .recording_peers import RecordingPeers, node_url
from .recordings import Recordings
from .retention import RetentionSweeper
from .session import Session, Socket
from .sfu_signals import SfuSignals

log = logging.getLogger(__name__)

#: The room guard of a server that is the whole cluster (``Server.room_guard``).
_UNGUARDED: contextlib.AbstractAsyncContextManager[None] = contextlib.nullcontext()

SERVER_KEY: web.AppKey[Server] = web.AppKey("server")


class Refusal(NamedTuple):
    """Why a WebSocket handshake is refused, as an HTTP status and a sentence."""

    status: int
    text: str


class Server:
    """Everything one Parley process runs: core, hub, broker and store."""

    def __init__(
        self,
        settings: Settings,
        *,
        store: Store | None = None,
        broker: Broker | None = None,
        join_tokens: JoinTokenVerifier | None = None,
    ) -> None:
        self.settings = settings
        limits = settings.limits
        self.join_tokens = join_tokens
        self.join_tokens_required = settings.require_token
        self.node = settings.node_id or new_node_id()
        self.metrics = Metrics(self.stats, version=__version__, node=self.node)
        # With required tokens, roles come from the tokens; otherwise the first
        # participant of a room becomes its host.
        self.rooms = Rooms(limits, auto_host=not settings.require_token, node=self.node)
        self.hub = Hub(limits.max_outgoing_buffer)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._forever: list[asyncio.Task[None]] = []
        #: One armed breakout timer per meeting (the earliest): (at_ms, handle).
        self._wakes: dict[str, tuple[int, asyncio.TimerHandle]] = {}
        self.sockets = LocalSessions(self.hub, self.spawn)
        self.store: Store = store or open_store(settings.effective_database_url)
        if isinstance(self.store, SqlStore):  # its commits in place wait for reads as the hub
            self.store.reads = lambda: self.hub.reads
        self.meetings = MeetingWriter(self.store, self._meeting_state)
        self.media: MediaRooms | None = None
        if settings.media == "sfu":
            self.media = MediaRooms(
                settings,
                self.rooms,
                lambda d: self.executor.publish(d),
                last_n=settings.last_n,
                host_addresses=list(settings.media_ips) if settings.media_ips else None,
            )
        self.replicator: Replicator | None = None
        bridge = NodeBridge(self.sockets, self.spawn)
        if broker is None and settings.broker_url:
            redis_broker = RedisBroker(settings.broker_url, self.node)
            redis_broker.on_lag = lambda seconds: self.metrics.observe_broker_lag(seconds)
            redis_broker.is_local = self.hub.by_pid.__contains__
            self.replicator = Replicator(self.rooms, redis_broker, self.store, bridge)
            broker = redis_broker
        self.relay_directory = relay_directory(
            settings, self.node, self.media, broker, self.sockets
        )
        self.broker: Broker = broker or InProcessBroker()
        self.policy: Policy | None = None
        self.policy_actions: PolicyActions | None = None
        if settings.policy is not None:
            # A file that does not load stops the start with one line (PolicyError).
            self.policy = Policy(settings.policy, settings.policy_budget, settings.policy_default)
        self.executor = Executor(
            fanout=self.broker,
            sockets=self.sockets,
            store=self.store,
            meetings=self.meetings,
            cluster=self.replicator or SingleNode(self.rooms.journal),
            media=self.media,
            timings=self.metrics,
            now_ms=self.rooms.now_ms,
            observer=PolicyObserver(self.policy, self.spawn) if self.policy else None,
            wake=self.wake,
            presence_due=self.presence_due,
        )
        event_types = settings.webhook_events or DEFAULT_EVENT_TYPES
        self.executor.event_types = frozenset(event_types)
        self.store.chat_events = CHAT_MESSAGE in event_types
        self.webhooks: Delivery | None = None
        if settings.webhook_urls:
            if not settings.webhook_secret:
                raise ValueError("webhook receivers need a webhook secret")
            self.webhooks = Delivery(
                self.store,
                settings.webhook_urls,
                settings.webhook_secret,
                self.node,
                timeout=settings.webhook_timeout,
            )
            self.executor.on_logged = self.webhooks.wake
        self.recordings: Recordings | None = None
        if self.media is not None:
            self.rooms.recordable = True
            self.recordings = Recordings(
                settings, self.rooms, self.media, self.apply, self.spawn,
                self.executor.recording_event, node=self.node, owners=self.replicator,
            )  # fmt: skip
            self.executor.recordings = self.recordings
        # With the relay each participant's media stays on its own node: no media owner.
        owners = self.replicator if self.relay_directory is None else None
        self.sfu_signals = (
            SfuSignals(self.media, self.rooms, self.executor, self.node, owners)
            if self.media is not None
            else None
        )
        bridge.executor = self.executor
        if self.media is not None and self.replicator is not None:
            self.media.on_released = self._release_media
        bridge.sfu_signals = self.sfu_signals
        bridge.recordings = self.recordings
        self.recording_peers: RecordingPeers | None = None
        if self.recordings is not None and isinstance(self.broker, RedisBroker):
            self.broker.on_remote_frame = self.recordings.note_frame  # events from other nodes
            url = node_url(settings)
            self.recording_peers = RecordingPeers(self.broker.redis, self.node, url)
        self.tokens = ResumeTokens(load_secret(settings.data_dir), limits.resume_token_ttl)
        self.room_opens = AttemptThrottle(limits.rooms_per_address, limits.rooms_per_address_window)
        self.password_throttle = AttemptThrottle(
            limits.max_join_failures, limits.join_attempt_window
        )
        self.connections_by_address: Counter[str] = Counter()
        self._address_buckets: dict[str, TokenBucket] = {}
        self.turn = (
            TurnConfig(settings.turn_secret, settings.turn_urls, settings.turn_ttl)
            if settings.turn_secret
            else None
        )
        self.proxies = TrustedProxies(settings.trusted_proxies)
        self.retention = RetentionSweeper(self.store, settings.history_retention_days)
        self.stopping = False
        self.draining = False
        self.started = time.monotonic()

    # -- lifecycle ----------------------------------------------------------------

    async def start(self) -> None:
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        await self.store.start()
        if self.recordings is not None:
            self.spawn(self.recordings.recover())  # recordings a killed process left open
        self.spawn_forever(self._event_retention(), "event-retention")
        if self.recording_peers is not None:
            self.spawn_forever(self._announce_recordings(), "recording-peers")
        if self.webhooks is not None:
            await self.webhooks.start()
        self.retention.start()
        await self.broker.start(self.hub.deliver)
        if self.replicator is not None:
            await self.replicator.start()
        if self.relay_directory is not None:
            assert self.media is not None and self.media.relay is not None
            await self.media.relay.start()
            self.spawn_forever(self.relay_directory.run(), "media-relay")
        if self.policy is not None:
            policy = self.policy
            self.policy_actions = PolicyActions(self.rooms, self.executor, self.node)
            policy.start(self.policy_actions)
            with contextlib.suppress(NotImplementedError, AttributeError, RuntimeError):
                asyncio.get_running_loop().add_signal_handler(
                    signal.SIGHUP, lambda: policy.reload("SIGHUP")
                )

    async def shutdown(self) -> None:
        """Tell every client the server is going away, with pending writes flushed."""
        self.stopping = True
        await self._close_all(CloseCode.GOING_AWAY, "server shutting down")

    async def _close_all(self, code: int, reason: str) -> None:
        closing = [s.close(code, reason) for s in self.sockets]
        if closing:
            await asyncio.wait_for(asyncio.gather(*closing, return_exceptions=True), timeout=5)

    async def stop(self) -> None:
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)
        if self.replicator is not None:
            await self.replicator.close()
        if self.recordings is not None:
            await self.recordings.close()
        if self.recording_peers is not None:
            await self.recording_peers.close()
        if self.media is not None:
            await self.media.close()
        if self.policy is not None:
            await self.policy.close()
            if self.policy_actions is not None:
                await self.policy_actions.close()
        await self.meetings.close()
        if self.webhooks is not None:
            await self.webhooks.close()
        for task in self._forever:
            task.cancel()
        await asyncio.gather(*self._forever, return_exceptions=True)
        await self.broker.close()
        await self.retention.close()
        await self.store.close()

    def spawn_forever(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        """A task that runs until stop() cancels it."""
        task = asyncio.get_running_loop().create_task(coro, name=f"parley-{name}")
        self._forever.append(task)

    async def _event_retention(self) -> None:
        """Delete logged events older than --event-retention-days, hourly (every node
        does; the deletes are idempotent)."""
        keep_ms = int(self.settings.event_retention_days * 86_400_000)
        while True:
            try:
                gone = await self.store.delete_events_before(self.rooms.now_ms() - keep_ms)
                if gone:
                    log.info("event log: %d events past retention deleted", gone)
            except Exception as exc:
                log.warning("event log retention: %s", exc)
            await asyncio.sleep(min(3600.0, keep_ms / 1000 / 10))

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task failed", exc_info=task.exception())

    async def drain(self) -> None:
        """Stop taking joins and send every client elsewhere (they resume there)."""
        self.draining = True
        await self._close_all(CloseCode.SERVICE_RESTART, "node draining; reconnect")

    # -- rooms in the store and across nodes --------------------------------------------

    def room_guard(self, room: str) -> contextlib.AbstractAsyncContextManager[None]:
        """Admissions to one room one at a time, across nodes when clustered (alone, one
        event loop already serialises them: no lock, and no generator made per join)."""
        if self.replicator is None:
            return _UNGUARDED
        return self.replicator.room_lock(room)

    async def apply(self, effects: list[Effect]) -> None:
        """Carry out the core's effects (see :class:`parley.server.executor.Executor`)."""
        await self.executor.apply(effects)

    async def room_config(self, room: str, now_ms: int, ref: str | None = None) -> StoredRoom:
        """Creation time, stored settings and interrupted meeting of a room (created if new)."""
        known = self.rooms.room(room)
        if known is not None:
            return StoredRoom(known.created_at, known.config)
        try:
            record = await self.store.load_room(room)
            if record is None:
                return StoredRoom(await self.store.ensure_room(room, now_ms))
        except Exception:
            # A full disk or a lost database: say so, rather than "internal error".
            log.exception("room %s could not be loaded or created", room)
            raise ProtocolError(
                ErrorCode.UNAVAILABLE, "the server cannot open this room right now; try later", ref
            ) from None
        return stored_room(record)

    def _meeting_state(self, room: str) -> MeetingState | None:
        record = self.rooms.meeting_record(room)
        if record is None:
            return None
        return MeetingState(dict(record.members), tuple(sorted(record.banned)))

    @property
    def media_mode(self) -> str:
        """Where this server's media goes: "sfu" (through it) or "mesh" (browser to browser)."""
        return "sfu" if self.media is not None else "mesh"

    @staticmethod
    def frame(payload: bytes) -> bytes:
        return text_frame(payload)

    def session_of(self, pid: str) -> Session | None:
        return self.sockets.of(pid)

    def wake(self, room: str, at_ms: int) -> None:
        """Call the core back at ``at_ms`` about the breakouts of ``room`` (a ``Wake``)."""
        pending = self._wakes.get(room)
        if pending is not None and pending[0] <= at_ms:
            return  # an earlier call is armed: it arms the next one (Breakouts.due)
        if pending is not None:
            pending[1].cancel()
        delay = max(0.0, (at_ms - self.rooms.now_ms()) / 1000)
        due = self.rooms.breakouts.due

        def fire() -> None:
            self._wakes.pop(room, None)
            self.spawn(self.apply(due(room)))

        self._wakes[room] = (at_ms, asyncio.get_running_loop().call_later(delay, fire))

    def presence_due(self, room: str, at_ms: int) -> None:
        """Send ``room``'s batched presence at ``at_ms`` (a ``PresenceDue``: the core
        asks only when it opens a batch, so one timer per room is armed at a time)."""
        delay = max(0.0, (at_ms - self.rooms.now_ms()) / 1000)
        flush = self.rooms.presence_due

        def fire() -> None:
            self.spawn(self.apply(flush(room)))

        asyncio.get_running_loop().call_later(delay, fire)

    def expire(self, pid: str) -> None:
        self.spawn(self.apply(self.rooms.expire(pid)))

    async def follow(self, room: str) -> None:
        """Clustered: load a meeting's shared state (its breakouts too) into the mirror."""
        if self.replicator is not None:
            await self.replicator.follow(room)

    # -- per-address limits -------------------------------------------------------------

    def address_allows(self, address: str) -> bool:
        """One message from ``address`` against its shared rate (all its connections)."""
        bucket = self._address_buckets.get(address)
        now = time.monotonic()
        if bucket is None:
            bucket = self._address_buckets[address] = TokenBucket(
                self.settings.limits.address_rate, now
            )
        return bucket.allow(now)

    # -- the WebSocket endpoint ---------------------------------------------------------

    def check_socket(
        self, headers: Mapping[str, str], *, scheme: str, host: str, peer: str | None
    ) -> str | Refusal:
        """The throttle address of a WebSocket handshake we accept, or why we refuse it.

        ``headers`` is looked up by lower-case name.
        """
        if self.stopping or self.draining:
            return Refusal(503, "server shutting down")
        if not origin_allowed(
            headers.get("origin"),
            scheme=scheme,
            host=host,
            forwarded_proto=headers.get("x-forwarded-proto"),
            allowed=self.settings.allowed_origins,
        ):
            return Refusal(403, "origin not allowed")
        remote = self.proxies.client_address(peer, headers.get("x-forwarded-for"))
        address = throttle_key(remote or "?")
        if self.connections_by_address[address] >= self.settings.limits.max_connections_per_address:
            return Refusal(429, "too many connections from your address")
        return address

    def open_session(self, socket: Socket, transport: asyncio.Transport, address: str) -> Session:
        """A WebSocket opened: its connection and session join the server's books."""
        conn = Connection(transport, address)
        session = Session(self, socket, conn, address)
        conn.owner = session  # (no bound method: no object per socket for the collector)
        self.sockets.add(session)
        self.connections_by_address[address] += 1
        return session

    def end_session(self, session: Session) -> None:
        """A WebSocket closed (by either side, or dropped)."""
        address = session.address
        self.sockets.remove(session)
        self.connections_by_address[address] -= 1
        if self.connections_by_address[address] <= 0:
            del self.connections_by_address[address]
            self._address_buckets.pop(address, None)
        session.on_close()

    async def websocket(self, request: web.Request) -> web.StreamResponse:
        """``GET /ws`` through aiohttp: refusals, and upgrades on kept-alive connections."""
        verdict = self.check_socket(
            request.headers, scheme=request.scheme, host=request.host, peer=request.remote
        )
        if isinstance(verdict, Refusal):
            if verdict.status == 403:
                log.warning("refused WebSocket from origin %r", request.headers.get("Origin"))
            return web.Response(status=verdict.status, text=verdict.text)
        limits = self.settings.limits
        ws = web.WebSocketResponse(
            heartbeat=limits.heartbeat,
            # aiohttp refuses frames of max_msg_size bytes and more; ours is inclusive.
            max_msg_size=limits.max_frame_bytes + 1,
            compress=False,
            autoping=False,  # aiohttp_socket.serve answers pings, under control_rate
        )
        ws.headers["X-Parley-Node"] = self.node
        await ws.prepare(request)
        assert request.transport is not None
        session = self.open_session(AiohttpSocket(ws), request.transport, verdict)
        try:
            await aiohttp_socket.serve(session, ws, limits.join_timeout)
        finally:
            self.end_session(session)
        return ws

    # -- the operator's admin API (parley.ops.admin) -----------------------------------

    def admin_rooms(self) -> list[dict[str, Any]]:
        def person(m: Member) -> dict[str, Any]:
            return {"id": m.info.id, "name": m.info.name, "role": m.info.role, "node": m.node}

        return [
            {
                "room": room.name,
                "created_at": room.created_at,
                "participants": [person(m) for m in room.members.values()],
                "lobby": [person(m) for m in room.lobby.values()],
            }
            for room in self.rooms.open_rooms()
        ]

    async def admin_end(self, room: str) -> bool:
        async with self.room_guard(room):
            effects = self.rooms.admin_end(room)
            if effects is None:
                return False
            await self.apply(effects)
        return True

    async def _announce_recordings(self) -> None:
        """Where the other nodes fetch this node's recordings (again after a Redis restart)."""
        assert self.recording_peers is not None
        while True:
            await self.recording_peers.register()
            await asyncio.sleep(10)

    async def _release_media(self, room: str) -> None:
        """The SFU room emptied: let another node take the media, unless it records here
        (a move would end the recording)."""
        if self.recordings is not None and room in self.recordings.active:
            return
        if self.replicator is not None:
            await self.replicator.release_media(room)

    async def admin_record(self, room: str, action: str) -> dict[str, Any] | None:
        """Start or stop recording ``room`` (admin API); None if no meeting is there."""
        async with self.room_guard(room):
            effects = self.rooms.admin_record(room, action)
            if effects is None:
                return None
            await self.apply(effects)
        rec = next((e for e in effects if isinstance(e, StartRecording | StopRecording)), None)
        return {"id": rec.id if rec else None, "recording": action == "start"}

    async def admin_reset(self, room: str) -> bool:
        async with self.room_guard(room):
            effects = self.rooms.admin_end(room)
            if effects is not None:
                await self.apply(effects)
            elif await self.store.room_created_at(room) is None:
                return False
            # Whatever the meeting set, and a managed room's settings too, go.
            await self.store.room_emptied(room, None)
        return True

    async def admin_settings(self, room: str, settings: AdminRoomSettings) -> dict[str, Any]:
        msg = p.RoomSettingsUpdate(
            locked=settings.locked,
            lobby=settings.lobby,
            password=settings.password,
            max_participants=settings.max_participants,
            stage=settings.stage,
            chat=settings.chat,
        )
        try:
            self.rooms.check_settings(msg)
        except ProtocolError as exc:
            raise ValueError(exc.message) from None
        hashed = None
        if msg.password:
            hashed = await asyncio.to_thread(hash_password, msg.password)
        async with self.room_guard(room):
            effects = self.rooms.admin_settings(room, msg, hashed)
            if effects is not None:
                await self.apply(effects)
                opened = self.rooms.room(room)
                assert opened is not None
                config = opened.config
                return settings_dict(self.rooms.settings_for(config))
            # Not open here: the stored row changes, and takes effect at the next join.
            stored = await self.room_config(room, self.rooms.now_ms())
            config = stored.config or RoomConfig()
            config.managed = True
            for field in ("locked", "lobby", "max_participants"):
                value = getattr(msg, field)
                if value is not None:
                    setattr(config, field, value)
            if msg.password is not None:
                config.password_hash = hashed
            stage.apply_settings(config, msg, "")
            await self.store.save_room_settings(room, room_record(stored.created_at, config))
            return settings_dict(self.rooms.settings_for(config))

    async def admin_remove(self, room: str, pid: str) -> bool:
        effects = self.rooms.admin_remove(room, pid)
        if effects is None:
            return False
        await self.apply(effects)
        return True

    async def admin_drain(self) -> None:
        self.spawn(self.drain())

    def ice_servers(self, pid: str) -> list[dict[str, Any]]:
        """What a participant's RTCPeerConnections use: static servers, plus TURN credentials."""
        servers: list[dict[str, Any]] = list(self.settings.ice_servers)
        if self.turn is not None:
            servers.append(self.turn.ice_server(pid))
        return servers

    def stats(self) -> StatsSnapshot:
        """Gauges and counters for /metrics (read only when scraped)."""
        snapshot: StatsSnapshot = {
            "rooms": len(self.rooms.open_rooms()),
            "participants": self.rooms.participants_on(self.node),
            "connections": len(self.hub.connections),
            "draining": int(self.stopping or self.draining),
            "frames_out": self.hub.frames_out,
            "chat_stored": self.executor.chat_stored,
        }
        if self.media is not None:
            snapshot.update(self.media.stats())  # type: ignore[typeddict-item]
        if isinstance(self.broker, RedisBroker):
            snapshot["broker_up"] = int(self.broker.connected)
            snapshot["broker_published"] = self.broker.published
            snapshot["broker_received"] = self.broker.received
        return snapshot

    def health(self) -> dict[str, Any]:
        return {
            "status": "ok" if not self.stopping else "stopping",
            "version": __version__,
            "uptime": round(time.monotonic() - self.started, 3),
            "node": self.node,
        }


def settings_dict(settings: p.RoomSettings) -> dict[str, Any]:
    return {
        "locked": settings.locked,
        "lobby": settings.lobby,
        "has_password": settings.has_password,
        "max_participants": settings.max_participants,
    }


def relay_directory(
    settings: Settings,
    node: str,
    media: MediaRooms | None,
    broker: Broker | None,
    sockets: LocalSessions,
) -> RelayDirectory | None:
    """The media relay (``--relay-port``) on ``media``, and its directory; None when off."""
    if settings.relay_port is None or media is None or not isinstance(broker, RedisBroker):
        return None
    from ..sfu.relay.node import MediaRelay

    assert settings.relay_secret is not None  # the command line checks it
    relay = MediaRelay(node, settings.relay_secret, settings.relay_ip, settings.relay_port)
    directory = RelayDirectory(broker.redis, relay)
    media.relay = relay
    media.relay_opened = directory.wake
    media.tell_local = sockets.tell
    return directory


def stored_room(record: RoomRecord) -> StoredRoom:
    """The core's view of a stored room: settings, and the meeting a restart interrupted."""
    state = record.meeting
    meeting = None if state is None else MeetingRecord(dict(state.members), frozenset(state.banned))
    return StoredRoom(record.created_at, record.config(), meeting)


class NodeBridge:
    """What the replicator may ask of this node (``parley.cluster.replication.NodeSide``):
    the executor, this node's sockets, and the SFU signal routing; not the server."""

    def __init__(self, sockets: LocalSessions, spawn: Spawn) -> None:
        self.sockets = sockets
        self.spawn = spawn
        self.executor: Executor | None = None
        self.sfu_signals: SfuSignals | None = None
        self.recordings: Recordings | None = None

    async def apply(self, effects: list[Effect]) -> None:
        assert self.executor is not None
        await self.executor.apply(effects)

    def tell_local(self, room: str, message: p.ServerMessage) -> None:
        self.sockets.tell(room, message)

    def replace(self, pid: str) -> None:
        self.sockets.replace(pid)

    def disconnect_local(self, pid: str, code: int, reason: str) -> bool:
        return self.sockets.disconnect(pid, code, reason)

    def let_in_local(self, pid: str) -> bool:
        return self.sockets.let_in(pid)

    def to_lobby_local(self, pid: str) -> bool:
        return self.sockets.to_lobby(pid)

    def move_local(self, pid: str, room: str) -> bool:
        return self.sockets.move(pid, room)

    def media_rooms(self) -> list[str]:
        signals = self.sfu_signals
        rooms = list(signals.media.rooms) if signals is not None else []
        if self.recordings is not None:  # a recorded room's media stays here while it records
            rooms += [room for room in self.recordings.active if room not in rooms]
        return rooms

    async def remote_media_signal(
        self, room: str, pid: str, role: str, payload: bytes, ref: str | None
    ) -> None:
        if self.sfu_signals is not None:
            await self.sfu_signals.remote_signal(room, pid, role, payload, ref)


def make_app(server: Server) -> web.Application:
    app = web.Application()
    app.on_response_prepare.append(pages.security_headers)
    app[SERVER_KEY] = server
    app.router.add_get("/ws", server.websocket)
    add_recording_routes(app, server)
    api.add_routes(app, server)
    add_admin_routes(app, server, server.settings.admin_token)
    add_event_routes(app, server.store, server.settings.admin_token)
    add_metrics_route(app, server.metrics, "/metrics", token=server.settings.metrics_token)
    app[pages.MEDIA_MODE_KEY] = server.media_mode
    pages.add_routes(app, Path(__file__).parent.parent / "web")

    async def on_startup(_app: web.Application) -> None:
        await server.start()

    async def on_shutdown(_app: web.Application) -> None:
        await server.shutdown()

    async def on_cleanup(_app: web.Application) -> None:
        await server.stop()

    app.on_startup.append(on_startup)
    app.on_shutdown.append(on_shutdown)
    app.on_cleanup.append(on_cleanup)
    return app
