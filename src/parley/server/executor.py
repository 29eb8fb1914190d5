"""The one effect executor: carries out what the core returns, in order.

Local sessions, the admin API and the replicator (changes other nodes made)
all hand their effects here.  It reaches the rest of the server only through
narrow ports, so what it needs is written down and each side can be replaced
(a test double, another media backend).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Protocol

from ..core import protocol as p
from ..core.effects import (
    Deliver,
    Disconnect,
    Effect,
    Left,
    LetIn,
    MediaEnded,
    Note,
    RecordingFinished,
    RecordingStarted,
    RoleChanged,
    RoomEmptied,
    RoomOpened,
    SaveMeeting,
    SaveSettings,
    StartRecording,
    StopForwarding,
    StopRecording,
    StoreChat,
    Unpublish,
    chat_deliveries,
)
from ..core.protocol import ErrorCode, ProtocolError
from ..core.state import RoomConfig
from ..store import RoomRecord, Store
from .frames import text_frame

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

    def flush(self) -> None:
        """Share what the core journalled (a single node just forgets it)."""

    def disconnect_remote(self, room: str, pid: str, code: int, reason: str) -> None: ...

    def let_in_remote(self, room: str, pid: str) -> None: ...


class MeetingSaver(Protocol):
    async def save(self, room: str) -> None: ...


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

    def flush(self) -> None:
        self._journal.clear()

    def disconnect_remote(self, room: str, pid: str, code: int, reason: str) -> None:
        pass  # nobody else holds sockets: the participant is gone

    def let_in_remote(self, room: str, pid: str) -> None:
        pass


class Executor:
    def __init__(
        self,
        *,
        fanout: Fanout,
        sockets: Sockets,
        store: Store,
        meetings: MeetingSaver,
        cluster: Cluster,
        media: MediaSide | None,
        timings: ChatTimings,
        now_ms: Callable[[], int],
        observer: Observer | None = None,
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
        #: Chat messages (not system lines) stored and acknowledged.
        self.chat_stored = 0
        #: Recordings (set by the server in SFU mode).
        self.recordings: RecordingSide | None = None

    def publish(self, d: Deliver) -> None:
        """Serialise the message once and hand the frame to the broker."""
        self.fanout.publish(d.room, text_frame(p.encode(d.message)), d.to, d.exclude)
        if self.recordings is not None:
            self.recordings.note(d)  # the meeting's events in a recording's manifest

    async def apply(self, effects: list[Effect]) -> None:
        """Carry out the core's effects, in order.

        What the core changed is shared first, so other nodes know the new state
        before any frame mentions it and before anything here awaits the store.
        """
        self.cluster.flush()
        try:
            for effect in effects:
                await self._one(effect)
        finally:
            self.cluster.flush()

    async def _one(self, effect: Effect) -> None:
        media = self.media
        match effect:
            case Deliver():
                self.publish(effect)
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
            case SaveMeeting():
                await self.meetings.save(effect.room)
            case RoomEmptied(room=room, created_at=created_at, keep=keep):
                try:
                    await self.store.room_emptied(
                        room, None if keep is None else room_record(created_at, keep)
                    )
                except Exception:
                    log.exception("could not store that room %s emptied", room)
                if self.observer is not None:
                    self.observer.observe(effect)
            case RoomOpened() | Left():
                if self.observer is not None:
                    self.observer.observe(effect)
            case StartRecording():
                if self.recordings is not None and await self.recordings.start(effect):
                    self.recording_event(RecordingStarted(effect.room, effect.id, effect.by))
            case StopRecording():
                if self.recordings is not None:
                    await self.recordings.stop(effect)
            case RecordingStarted() | RecordingFinished():
                self.recording_event(effect)

    def recording_event(self, event: RecordingStarted | RecordingFinished) -> None:
        """A recording started, or its files are complete: the one place the webhook
        events ``recording.started`` / ``recording.finished`` plug in."""
        log.info("recording event: %s", event)

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
        self.sockets.send(e.sender, p.encode(p.ChatAck(id=record.id, ts=record.ts, ref=e.ref)))
        for d in chat_deliveries(record):
            self.publish(d)
        self.timings.observe_store_write(stored - received)
        self.timings.observe_fanout(time.perf_counter() - received)

    async def _note(self, room: str, text: str) -> None:
        """A system line in the room's chat: stored like any message, then delivered."""
        try:
            record = await self.store.append_chat(
                room, SYSTEM_SENDER, SYSTEM_NAME, text, None, self.now_ms(), system=True
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
    )
