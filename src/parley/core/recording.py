"""The rules of recording a room: who may, when, and what everyone is told.

Plain functions on a :class:`~parley.core.state.Room`, returning effects; the media
side (the SFU) writes the files (:mod:`parley.recording`).  Only hosts (or the
operator, through the admin API) start and stop a recording; only a server whose
media goes through the SFU can record (``recordable``).  Everyone is told: the
room's ``recording`` flag in ``room-updated`` (and in ``welcome.room``) and a line
in the chat saying who started or stopped it.  A recording ends with the meeting.
"""

from __future__ import annotations

import secrets
import time

from . import protocol as p
from .effects import Deliver, Effect, Note, StartRecording, StopRecording
from .protocol import ErrorCode, ProtocolError
from .state import Recording, Room

__all__ = [
    "MAX_RECORDINGS",
    "failed",
    "new_recording_id",
    "replicated",
    "start",
    "stop",
    "with_meeting",
]

#: Rooms one server records at once (each one is a writing thread and disk bandwidth).
MAX_RECORDINGS = 100


def new_recording_id(now: float) -> str:
    """``YYYYMMDDTHHMMSSZ-`` + 6 random hex digits: sorts by start time."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now)) + "-" + secrets.token_hex(3)


def start(
    room: Room,
    settings: p.RoomSettings,
    *,
    by: str,
    by_name: str,
    now: float,
    recordable: bool,
    recording_now: int = 0,
    ref: str | None = None,
) -> list[Effect]:
    """``recording_now``: how many rooms the server records already."""
    if not recordable:
        raise ProtocolError(
            ErrorCode.RECORDING_UNAVAILABLE,
            "this server sends media browser to browser (--media mesh): only an SFU server"
            " can record",
            ref,
        )
    if room.recording is not None:
        raise ProtocolError(ErrorCode.ALREADY_RECORDING, "the room is already recording", ref)
    if recording_now >= MAX_RECORDINGS:
        raise ProtocolError(
            ErrorCode.TOO_MANY, f"the server records {MAX_RECORDINGS} rooms already", ref
        )
    rec = Recording(new_recording_id(now), by, by_name, int(now * 1000))
    room.recording = rec
    return [
        StartRecording(room.name, rec.id, by, by_name),
        Deliver(room.name, p.RoomUpdated(settings=settings, recording=True)),
        Note(room.name, f"{by_name} started recording the meeting"),
    ]


def stop(
    room: Room, settings: p.RoomSettings, *, by_name: str, ref: str | None = None
) -> list[Effect]:
    rec = room.recording
    if rec is None:
        raise ProtocolError(ErrorCode.NOT_RECORDING, "the room is not recording", ref)
    room.recording = None
    return [
        StopRecording(room.name, rec.id, "stopped"),
        Deliver(room.name, p.RoomUpdated(settings=settings, recording=False)),
        Note(room.name, f"{by_name} stopped recording the meeting"),
    ]


#: What the chat says when a recording stopped by itself.
FAILURES = {
    "disk-full": "Recording stopped: the server's disk is full (what was recorded is kept)",
    "write-error": "Recording stopped: the server could not write it (what was recorded is kept)",
    "media-moved": "Recording stopped: the server recording it went away (what it wrote is kept)",
}


def failed(room: Room, settings: p.RoomSettings, rec_id: str, reason: str) -> list[Effect]:
    """The media side stopped recording ``rec_id`` by itself (a full disk): tell everyone.
    Nothing if the room has moved on (another recording, or none)."""
    if room.recording is None or room.recording.id != rec_id:
        return []
    room.recording = None
    return [
        Deliver(room.name, p.RoomUpdated(settings=settings, recording=False)),
        Note(room.name, FAILURES.get(reason, "Recording stopped")),
    ]


def with_meeting(room: Room) -> list[Effect]:
    """The meeting ends (last one out, or ended): so does its recording."""
    rec, room.recording = room.recording, None
    return [] if rec is None else [StopRecording(room.name, rec.id, "meeting-ended")]


def replicated(room: Room, rec: Recording | None) -> list[Effect]:
    """Another node's view of the room's recording (a cluster): a recording that began
    there starts here too, one that ended there stops here.  Each node's media side
    decides whether it writes the files (only the room's media owner does), so these
    effects tell nobody anything: the node that changed the state did.
    """
    old, room.recording = room.recording, rec
    if old is not None and (rec is None or rec.id != old.id):
        # Stopped there (or a new one replaced it): "stopped", as the node that did it said.
        effects: list[Effect] = [StopRecording(room.name, old.id, "stopped")]
    else:
        effects = []
    if rec is not None and (old is None or old.id != rec.id):
        effects.append(StartRecording(room.name, rec.id, rec.by, rec.by_name))
    return effects
