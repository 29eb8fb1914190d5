"""The recording glue: carries out ``StartRecording``/``StopRecording`` with the SFU.

:class:`Recordings` owns this node's running recordings (one
:class:`parley.recording.session.RoomRecording` per room), puts them on the SFU
room's packet path (``SfuRoom.record``, also when the SFU room is created after the
recording started), writes the meeting's events into their manifests (from what the
executor publishes: joins, leaves, renames, microphone/camera/screen changes, the
active speaker, the public chat), and reports back: a recording that stopped by
itself (a full disk) goes to the core (``Rooms.recording_failed``), and every finished
recording is an event (``RecordingFinished``) for the executor's ``recording_event``.

In a cluster every node's core holds the room's recording (replicated with the room's
state), and every node is handed ``StartRecording``/``StopRecording``, but only the
room's media owner writes the files: the node whose SFU forwards the room, or, before
anyone publishes, the first node whose SFU does (``_attach``).  The writer names itself
in the state (``Recording.node``).  When the media moves to another node while a
recording runs (its owner died, or let the media go), the new owner does not write on:
it marks the recording finished (``"media-moved"``); what the old owner wrote stays
playable (Matroska is written as it goes; the manifest every 5 s).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from ..core import protocol as p
from ..core.effects import (
    Deliver,
    Effect,
    RecordingFinished,
    RecordingStarted,
    StartRecording,
    StopRecording,
)
from ..core.presence import as_events
from ..recording.recovery import finish, interrupted
from ..recording.session import RoomRecording
from ..recording.storage import RecordingStore
from .frames import frame_payload

if TYPE_CHECKING:
    from ..config import Settings
    from ..core.rooms import Rooms
    from ..sfu.peer import SfuRoom
    from .media import MediaRooms
    from .sfu_signals import MediaOwners

log = logging.getLogger(__name__)

__all__ = ["Recordings", "recordings_root"]

_decode_server = msgspec.json.Decoder(p.ServerMessage).decode


def recordings_root(settings: Settings) -> Path:
    """``--recordings-dir``, or ``<data-dir>/recordings``."""
    return settings.recordings_dir or settings.data_dir / "recordings"


class Recordings:
    """This node's recordings (see the module docstring)."""

    def __init__(
        self,
        settings: Settings,
        rooms: Rooms,
        media: MediaRooms,
        apply: Callable[[list[Effect]], Awaitable[None]],
        spawn: Callable[[Coroutine[Any, Any, Any]], None],
        on_event: Callable[[RecordingStarted | RecordingFinished], None],
        *,
        node: str = "local",
        owners: MediaOwners | None = None,
    ) -> None:
        self.settings = settings
        self.store = RecordingStore(recordings_root(settings))
        self.core = rooms
        self.media = media
        self.apply = apply
        self.spawn = spawn
        self.on_event = on_event
        self.node = node
        #: The cluster's media owners (None on a single server: it records everything).
        self.owners = owners
        self.active: dict[str, RoomRecording] = {}
        self._people: dict[str, dict[str, p.Participant]] = {}
        self._finishing: set[asyncio.Future[Any]] = set()
        media.on_sfu_room = self._attach

    # -- effects --------------------------------------------------------------------
    async def start(self, e: StartRecording) -> bool:
        """Start recording; False if another node writes it (a cluster) or if it cannot
        (and then the core is told it stopped)."""
        if e.room in self.active:
            return False  # already (the state came back through another node)
        if self.owners is not None and not await self._mine(e):
            return False
        if e.room in self.active:
            return False  # started meanwhile (the SFU room appeared while we asked Redis)
        loop = asyncio.get_running_loop()
        rec = RoomRecording(
            self.store.directory(e.room, e.id),
            e.id,
            e.room,
            started_by={"id": e.by, "name": e.by_name},
            call_soon=loop.call_soon_threadsafe,
            on_failed=lambda reason: self.spawn(self._failed(e.room, e.id, reason)),
            min_free=self.settings.recording_min_free,
        )
        try:
            rec.start()
        except OSError as exc:
            log.warning("recording %s of %s could not start: %s", e.id, e.room, exc)
            self.spawn(self._failed(e.room, e.id, "write-error", started=False))
            return False
        self.active[e.room] = rec
        room = self.core.room(e.room)
        people = self._people[e.room] = {}
        if room is not None:
            for info in room.participants():
                people[info.id] = msgspec.structs.replace(info)  # the core changes its own
                rec.event("join", participant=info.id, name=info.name, role=info.role)
                rec.event("media", participant=info.id, mic=info.mic, cam=info.cam,
                          screen=info.screen)  # fmt: skip
        sfu = self.media.rooms.get(e.room)
        if sfu is not None:
            sfu.record(rec)
        log.info("recording %s of %s started by %s", e.id, e.room, e.by)
        if self.owners is not None:
            self.core.recording_here(e.room, e.id)  # every node learns who writes it
            await self.apply([])
        return True

    async def _mine(self, e: StartRecording) -> bool:
        """A cluster: whether this node writes recording ``e`` (see the module docstring)."""
        room = self.core.room(e.room)
        rec = room.recording if room is not None else None
        if rec is None or rec.id != e.id:
            return False  # stopped meanwhile
        if e.room not in self.media.rooms:
            owner = await self.owners.media_owner(e.room, claim=False) if self.owners else None
            if owner != self.node:
                return False  # another node forwards the media, or nobody yet (_attach)
        if rec.node not in ("", self.node):
            # The media came here from the node that wrote it: that recording is over.
            log.info("recording %s of %s: its media moved from %s", e.id, e.room, rec.node)
            self.on_event(RecordingFinished(e.room, e.id, "media-moved"))
            await self.apply(self.core.recording_failed(e.room, e.id, "media-moved"))
            return False
        return True

    async def stop(self, e: StopRecording) -> None:
        rec = self.active.get(e.room)
        if rec is None or rec.id != e.id:
            return
        await self._finish(e.room, rec, e.reason)

    async def _failed(self, room: str, rec_id: str, reason: str, started: bool = True) -> None:
        """The recording stopped by itself (or never started): the core, then the event."""
        rec = self.active.get(room)
        if started and rec is not None and rec.id == rec_id:
            await self._finish(room, rec, reason)
        elif not started:
            self.on_event(RecordingFinished(room, rec_id, reason))
        await self.apply(self.core.recording_failed(room, rec_id, reason))

    async def _finish(self, room: str, rec: RoomRecording, reason: str) -> None:
        del self.active[room]
        self._people.pop(room, None)
        sfu = self.media.rooms.get(room)
        if sfu is not None:
            sfu.record(None)
        rec.stop(reason)
        await asyncio.to_thread(rec.join)
        files = tuple(sorted(path.name for path in rec.directory.iterdir()))
        log.info("recording %s of %s finished (%s)", rec.id, room, rec.stop_reason)
        self.on_event(RecordingFinished(room, rec.id, rec.stop_reason or reason, files))
        retention = self.settings.recording_retention_days
        if retention is not None:
            await asyncio.to_thread(self.store.purge, retention * 86400.0)

    def _attach(self, room: str, sfu: SfuRoom) -> None:
        """A new SFU room: a running recording of it gets its packets."""
        rec = self.active.get(room)
        if rec is not None:
            sfu.record(rec)
            return
        state = self.core.room(room)
        wanted = state.recording if state is not None else None
        if self.owners is not None and wanted is not None:
            # This node now forwards a recorded room's media: it writes the recording.
            e = StartRecording(room, wanted.id, wanted.by, wanted.by_name)
            self.spawn(self._begin(e))

    async def _begin(self, e: StartRecording) -> None:
        if await self.start(e):
            self.on_event(RecordingStarted(e.room, e.id, e.by))

    # -- the meeting's events, from what the executor publishes ------------------------
    def note(self, d: Deliver) -> None:
        rec = self.active.get(d.room)
        if rec is None:
            return
        m = d.message
        if isinstance(m, p.PresenceOut):  # a big room's batch: its events one by one
            for one in as_events(m):
                self.note(Deliver(d.room, one))
            return
        people = self._people.setdefault(d.room, {})
        if isinstance(m, p.ParticipantJoined):
            info = m.participant
            people[info.id] = msgspec.structs.replace(info)
            rec.event("join", participant=info.id, name=info.name, role=info.role)
            rec.event("media", participant=info.id, mic=info.mic, cam=info.cam, screen=info.screen)
        elif isinstance(m, p.ParticipantLeft):
            people.pop(m.id, None)
            rec.event("leave", participant=m.id, reason=m.reason)
        elif isinstance(m, p.ParticipantUpdated):
            info = m.participant
            old = people.get(info.id)
            people[info.id] = msgspec.structs.replace(info)
            if old is None or old.name != info.name:
                rec.event("rename", participant=info.id, name=info.name)
            if old is None or (old.mic, old.cam, old.screen) != (info.mic, info.cam, info.screen):
                rec.event("media", participant=info.id, mic=info.mic, cam=info.cam,
                          screen=info.screen)  # fmt: skip
        elif isinstance(m, p.ActiveSpeaker):
            rec.event("speaker", participant=m.id)
        elif isinstance(m, p.ChatOut) and m.message.to is None and d.to is None:
            msg = m.message
            rec.event("chat", participant=msg.sender, name=msg.name, text=msg.text,
                      system=msg.system)  # fmt: skip

    def note_frame(self, room: str, frame: bytes, to: tuple[str, ...] | None) -> None:
        """A frame another node published (a cluster): its events go in our manifest."""
        if room not in self.active or to is not None:
            return  # decoded only for the rooms recorded here; private messages never
        try:
            message = _decode_server(frame_payload(frame))  # the broker carries WS frames
        except (msgspec.DecodeError, msgspec.ValidationError):
            return
        self.note(Deliver(room, message))

    async def recover(self) -> None:
        """At start-up: finish the recordings a dead process left running (their
        manifest says so, nobody holds them: ``parley.recording.recovery``), each then a
        ``RecordingFinished`` with reason ``"interrupted"``."""
        for directory in await asyncio.to_thread(interrupted, self.store.root):
            doc = await asyncio.to_thread(finish, directory)
            if doc is None:
                continue
            room = str(doc.get("room") or directory.parent.name)
            files = tuple(sorted(p.name for p in directory.iterdir() if p.suffix != ".tmp"))
            log.warning("recording %s of %s was cut short: finished now", directory.name, room)
            self.on_event(RecordingFinished(room, directory.name, "interrupted", files))

    async def close(self) -> None:
        """The server stops: every recording is finished properly."""
        for room, rec in list(self.active.items()):
            await self._finish(room, rec, "server-stopped")
