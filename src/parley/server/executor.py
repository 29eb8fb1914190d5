"""The one effect executor: carries out what the core returns, in order.

Local sessions, the admin API and the replicator (changes other nodes made)
all hand their effects here.  It reaches the rest of the server only through
narrow ports, so what it needs is written down and each side can be replaced
(a test double, another media backend).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from ..core import protocol as p
from ..core.effects import (
    Arrived,
    DeleteChat,
    Deliver,
    Disconnect,
    Effect,
    Left,
    LetIn,
    MediaEnded,
    Moved,
    Note,
    PresenceDue,
    RecordingFinished,
    RecordingStarted,
    RoleChanged,
    RoomEmptied,
    RoomOpened,
    SaveMeeting,
    SaveRetention,
    SaveSettings,
    StartRecording,
    StopForwarding,
    StopRecording,
    StoreChat,
    ToLobby,
    Unpublish,
    Wake,
    chat_deliveries,
)
from ..core.events import (
    DEFAULT_EVENT_TYPES,
    RECORDING_FINISHED,
    RECORDING_STARTED,
    MeetingEvent,
)
from ..core.protocol import ErrorCode, ProtocolError
from ..core.state import RoomConfig
from ..store import RoomRecord
from .frames import text_frame
from .record_effects import delete_chat, left_text, record_attendance
from .store_port import RecordStore

log = logging.getLogger(__name__)

SYSTEM_SENDER = "system"
SYSTEM_NAME = "Parley"


class Fanout(Protocol):
    """The broker: a frame to a room's sockets, wherever they are."""

    def publish(
        self, room: str, frame: bytes, to: tuple[str, ...] | None, exclude: str | None
    ) -> None: ...


class Sockets(Protocol):
    """This node's sockets; each act says whether the participant's socket is here."""

    def send(self, pid: str, payload: bytes) -> bool: ...

    def disconnect(self, pid: str, code: int, reason: str) -> bool: ...

    def let_in(self, pid: str) -> bool: ...

    def to_lobby(self, pid: str) -> bool: ...
    def move(self, pid: str, room: str) -> bool: ...

    def renew_token(self, pid: str, role: str) -> None: ...


class MediaSide(Protocol):
    """The media forwarder (the SFU), if this server has one."""

    async def left(self, room: str, pid: str) -> None: ...

    async def unpublish(self, room: str, pid: str) -> None: ...

    async def ended(self, room: str) -> None: ...


class RecordingSide(Protocol):
    """Recordings (``server.recordings.Recordings``): in SFU mode only."""

    async def start(self, e: StartRecording) -> bool: ...

    async def stop(self, e: StopRecording) -> None: ...

    def note(self, d: Deliver) -> None: ...


class Cluster(Protocol):
    """Other nodes: what the core changed, and acts on sockets they hold."""

    def flush(self) -> bool:
        """Share what the core journalled (a single node just forgets it); True if a
        room's record changed, which other nodes read when they admit someone."""

    async def settle(self) -> None:
        """Wait until what :meth:`flush` shared is where other nodes read it."""

    def disconnect_remote(self, room: str, pid: str, code: int, reason: str) -> None: ...

    def let_in_remote(self, room: str, pid: str) -> None: ...

    def to_lobby_remote(self, room: str, pid: str) -> None: ...

    def move_remote(self, room: str, pid: str) -> None: ...


class MeetingSaver(Protocol):
    async def save(self, room: str, logged: Sequence[MeetingEvent] = ()) -> None: ...


class ChatTimings(Protocol):
    def observe_store_write(self, seconds: float) -> None: ...

    def observe_fanout(self, seconds: float) -> None: ...


class Observer(Protocol):
    """Told of the meeting's events (policy hooks); must not block: it schedules its work."""

    def observe(self, event: RoomOpened | Left | RoomEmptied) -> None: ...


class SingleNode:
    """The :class:`Cluster` of a server that is the whole cluster."""

    def __init__(self, journal: list[tuple[str, str, str | None]]) -> None:
        self._journal = journal

    def flush(self) -> bool:
        self._journal.clear()
        return False

    async def settle(self) -> None:
        pass

    def disconnect_remote(self, room: str, pid: str, code: int, reason: str) -> None:
        pass  # nobody else holds sockets: the participant is gone

    def let_in_remote(self, room: str, pid: str) -> None:
        pass

    def to_lobby_remote(self, room: str, pid: str) -> None:
        pass

    def move_remote(self, room: str, pid: str) -> None:
        pass  # its socket dropped: a resume lands in the room it was moved to


class Executor:
    def __init__(
        self,
        *,
        fanout: Fanout,
        sockets: Sockets,
        store: RecordStore,
        meetings: MeetingSaver,
        cluster: Cluster,
        media: MediaSide | None,
        timings: ChatTimings,
        now_ms: Callable[[], int],
        observer: Observer | None = None,
        wake: Callable[[str, int], None] | None = None,
        presence_due: Callable[[str, int], None] | None = None,
    ) -> None:
        self.fanout = fanout
        self.sockets = sockets
        self.store = store
        self.meetings = meetings
        self.cluster = cluster
        self.media = media
        self.timings = timings
        self.now_ms = now_ms
        self.observer = observer
        #: Schedules a ``Wake`` (breakout timers); None: they never fire.
        self.wake = wake
        #: Schedules a ``PresenceDue`` (a big room's presence frame); None: never sent.
        self.presence_due = presence_due
        #: Chat messages (not system lines) stored and acknowledged.
        self.chat_stored = 0
        #: The event types the operator logs (``--webhook-events``).
        self.event_types: frozenset[str] = frozenset(DEFAULT_EVENT_TYPES)
        #: Told once an event batch is committed (wakes the webhook delivery).
        self.on_logged: Callable[[], None] | None = None
        self._background: set[asyncio.Task[None]] = set()
        #: Recordings (set by the server in SFU mode).
        self.recordings: RecordingSide | None = None

    def _logged(self, events: Sequence[MeetingEvent]) -> tuple[MeetingEvent, ...]:
        return tuple(e for e in events if e.type in self.event_types)

    def publish(self, d: Deliver) -> None:
        """Serialise the message once and hand the frame to the broker."""
        self.fanout.publish(d.room, text_frame(p.encode(d.message)), d.to, d.exclude)
        if self.recordings is not None:
            self.recordings.note(d)  # the meeting's events in a recording's manifest

    async def apply(self, effects: list[Effect]) -> None:
        """Carry out the core's effects, in order.

        What the core changed is shared first, so other nodes know the new state
        before any frame mentions it and before anything here awaits the store.  A
        room's new record (settings, bans) is in Redis before anyone here hears of it:
        a join on another node that follows it must find it there.
        """
        if self.cluster.flush():
            await self.cluster.settle()
        try:
            for effect in effects:
                # A join's effects first, by type: ``_one``'s match tries its cases in
                # turn (some thirty class checks before ``Arrived``), and each is one
                # more coroutine.
                if isinstance(effect, Deliver):
                    self.publish(effect)
                elif isinstance(effect, SaveMeeting):
                    await self._save_meeting(effect)
                elif isinstance(effect, Arrived):
                    text = f"{effect.name} joined"
                    await self._attendance(effect.room, "joined", (effect.pid, effect.name), text)
                else:
                    await self._one(effect)
        finally:
            self.cluster.flush()

    async def _save_meeting(self, effect: SaveMeeting) -> None:
        logged = self._logged(effect.events)
        await self.meetings.save(effect.room, logged)
        if logged and self.on_logged is not None:
            self.on_logged()

    async def _one(self, effect: Effect) -> None:
        """Every effect but a join's three (``Deliver``, ``SaveMeeting``, ``Arrived``:
        :meth:`apply` carries those out itself)."""
        media = self.media
        match effect:
            case StoreChat():
                await self._store_chat(effect)
            case Note():
                await self._note(effect.room, effect.text)
            case Disconnect(pid=pid, room=room, code=code, reason=reason):
                if not self.sockets.disconnect(pid, code, reason):
                    self.cluster.disconnect_remote(room, pid, code, reason)
            case LetIn(pid=pid, room=room):
                if not self.sockets.let_in(pid):
                    self.cluster.let_in_remote(room, pid)
            case ToLobby(pid=pid, room=room):
                if not self.sockets.to_lobby(pid):
                    self.cluster.to_lobby_remote(room, pid)
            case Moved(pid=pid, room=room):
                if not self.sockets.move(pid, room):
                    self.cluster.move_remote(room, pid)  # its node moves it (a MoveOp)
            case Wake(room=room, at_ms=at_ms):
                if self.wake is not None:
                    self.wake(room, at_ms)
            case PresenceDue(room=room, at_ms=at_ms):
                if self.presence_due is not None:
                    self.presence_due(room, at_ms)
            case RoleChanged(pid=pid, role=role):
                self.sockets.renew_token(pid, role)
            case StopForwarding(room=room, pid=pid):
                if media is not None:
                    await media.left(room, pid)
            case Unpublish(room=room, pid=pid):
                if media is not None:
                    await media.unpublish(room, pid)
            case MediaEnded(room=room):
                if media is not None:
                    await media.ended(room)
            case SaveSettings():
                await self.store.save_room_settings(
                    effect.room, room_record(effect.created_at, effect.config)
                )
            case RoomEmptied(room=room, created_at=created_at, keep=keep):
                try:
                    await self.store.room_emptied(
                        room,
                        None if keep is None else room_record(created_at, keep),
                        self._logged(effect.events),
                    )
                except Exception:
                    log.exception("could not store that room %s emptied", room)
                else:
                    if effect.events and self.on_logged is not None:
                        self.on_logged()
                if self.observer is not None:
                    self.observer.observe(effect)
            case Left(room=room, pid=pid, name=name, reason=reason):
                await self._attendance(room, "left", (pid, name), left_text(name, reason))
                if self.observer is not None:
                    self.observer.observe(effect)
            case RoomOpened():
                if self.observer is not None:
                    self.observer.observe(effect)
            case DeleteChat():
                await delete_chat(self.store, self.publish, effect)
            case SaveRetention(room=room, days=days):
                await self.store.set_retention(room, days)
            case StartRecording():
                if self.recordings is not None and await self.recordings.start(effect):
                    self.recording_event(RecordingStarted(effect.room, effect.id, effect.by))
            case StopRecording():
                if self.recordings is not None:
                    await self.recordings.stop(effect)
            case RecordingStarted() | RecordingFinished():
                self.recording_event(effect)

    async def _attendance(self, room: str, kind: str, who: tuple[str, str], text: str) -> None:
        system = (SYSTEM_SENDER, SYSTEM_NAME)
        await record_attendance(self.store, room, kind, who, text, system, self.now_ms())

    def recording_event(self, event: RecordingStarted | RecordingFinished) -> None:
        """A recording started, or its files are complete: ``recording.started`` /
        ``recording.finished`` in the event log (their cause is files, not a store
        write: they are committed on their own, in the background)."""
        log.info("recording event: %s", event)
        if isinstance(event, RecordingStarted):
            logged = MeetingEvent(
                RECORDING_STARTED, event.room, self.now_ms(), {"id": event.id, "by": event.by}
            )
        else:
            data = {"id": event.id, "reason": event.reason, "files": list(event.files)}
            logged = MeetingEvent(RECORDING_FINISHED, event.room, self.now_ms(), data)
        if logged.type not in self.event_types:
            return
        task = asyncio.get_running_loop().create_task(self._log_alone(logged))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _log_alone(self, logged: MeetingEvent) -> None:
        try:
            await self.store.log_events([logged])
        except Exception:
            log.exception("could not log %s of %s", logged.type, logged.room)
            return
        if self.on_logged is not None:
            self.on_logged()

    async def _store_chat(self, e: StoreChat) -> None:
        """Stored before it is acknowledged, acknowledged before it is delivered."""
        received = time.perf_counter()
        try:
            record = await self.store.append_chat(e.room, e.sender, e.name, e.text, e.to, e.ts)
        except Exception:
            log.exception("could not store a chat message in %s", e.room)
            raise ProtocolError(
                ErrorCode.UNAVAILABLE, "the message could not be saved; try again", e.ref
            ) from None
        stored = time.perf_counter()
        self.chat_stored += 1
        if self.on_logged is not None and self.store.chat_events:
            self.on_logged()
        self.sockets.send(e.sender, p.encode(p.ChatAck(id=record.id, ts=record.ts, ref=e.ref)))
        for d in chat_deliveries(record, e.deliver_to):
            self.publish(d)
        self.timings.observe_store_write(stored - received)
        self.timings.observe_fanout(time.perf_counter() - received)

    async def _note(self, room: str, text: str) -> None:
        """A system line in the room's chat: stored like any message, then delivered."""
        try:
            record = await self.store.append_chat(
                room,
                SYSTEM_SENDER,
                SYSTEM_NAME,
                text,
                None,
                self.now_ms(),
                system=True,
                kind="note",
            )
        except Exception:
            log.exception("could not store a system line in %s", room)
            return
        for d in chat_deliveries(record):
            self.publish(d)


def room_record(created_at: int, config: RoomConfig) -> RoomRecord:
    """The store's row for a room's settings."""
    return RoomRecord(
        created_at,
        config.locked,
        config.lobby,
        config.password_hash,
        config.max_participants,
        config.managed,
        stage=config.stage,
        chat=config.chat,
    )
