"""The timeline manifest (``manifest.json``) written beside a recording's track files.

It says where everything belongs, on one wall clock (Unix seconds; tracks aligned
through RTCP sender reports, see :mod:`.track`)::

    {"version": 1, "id": "20261207T051000Z-3f9a1c", "room": "team",
     "started_at": 1796620200.0, "stopped_at": 1796620800.0,
     "started_by": {"id": "p_…", "name": "Ada"}, "stop_reason": "stopped",
     "participants": {"p_…": "Ada"},
     "tracks": [{"file": "p_…-camera-1.webm", "participant": "p_…", "track": "camera",
                 "kind": "video", "codec": "VP8", "start": …, "end": …, "duration": …,
                 "clock": "rtcp-sr", "frames": …, "sizes": [{"t": 0.0, "width": 640,
                 "height": 360}], …}],
     "events": [{"t": …, "type": "join", "participant": "p_…", "name": "Ada"},
                {"t": …, "type": "media", "participant": "p_…", "mic": true, "cam": true,
                 "screen": false},
                {"t": …, "type": "rename", "participant": "p_…", "name": "Ada L."},
                {"t": …, "type": "speaker", "participant": "p_…"},
                {"t": …, "type": "chat", "participant": "p_…", "name": "Ada", "text": "hi"},
                {"t": …, "type": "leave", "participant": "p_…"}]}

It is rewritten (atomically: a temporary file, then a rename) while the recording runs,
when something in it changed and at most every few seconds (at once when a track's file
starts), and once at its end, so that a recording cut short still has one.  Compact
JSON: a reader that wants it indented runs ``python -m json.tool manifest.json``.
Events are capped at :data:`MAX_EVENTS` (a meeting cannot grow it without bound).
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import msgspec

__all__ = ["MANIFEST", "MAX_EVENTS", "Timeline", "read_manifest", "write_manifest"]

MANIFEST = "manifest.json"
MAX_EVENTS = 100_000


class Timeline:
    """The manifest's contents: the recording's facts and the meeting's events."""

    def __init__(self, rec_id: str, room: str, started_at: float, started_by: dict[str, str]):
        self.meta: dict[str, Any] = {
            "version": 1,
            "id": rec_id,
            "room": room,
            "started_at": round(started_at, 6),
            "stopped_at": None,
            "started_by": started_by,
            "stop_reason": None,
        }
        self.participants: dict[str, str] = {}
        self.events: list[dict[str, Any]] = []
        self.events_dropped = 0
        #: bumped by every change to the above (the recording rewrites the manifest
        #: only when something in it changed)
        self.version = 0
        self._lock = threading.Lock()

    def event(self, t: float, kind: str, **fields: Any) -> None:
        """Note an event at Unix time ``t`` (any thread)."""
        with self._lock:
            self.version += 1
            if kind in ("join", "rename") and "participant" in fields:
                self.participants[fields["participant"]] = fields.get("name", "")
            if len(self.events) >= MAX_EVENTS:
                self.events_dropped += 1
                return
            self.events.append({"t": round(t, 6), "type": kind, **fields})

    def document(self, tracks: list[dict[str, Any]]) -> dict[str, Any]:
        with self._lock:
            doc = dict(self.meta)
            doc["participants"] = dict(self.participants)
            doc["tracks"] = tracks
            doc["events"] = list(self.events)
            if self.events_dropped:
                doc["events_dropped"] = self.events_dropped
        return doc

    def write(self, directory: Path, tracks: list[dict[str, Any]]) -> None:
        """Write ``manifest.json`` atomically (raises OSError, e.g. on a full disk)."""
        write_manifest(directory, self.document(tracks))


def write_manifest(directory: Path, doc: dict[str, Any]) -> None:
    """Write ``doc`` as ``directory``'s manifest, atomically (a temporary file, then a
    rename: a reader never sees half of one).  Raises OSError (e.g. on a full disk).
    Compact JSON by msgspec (UTF-8, like ``ensure_ascii=False``): ``json.dumps`` with an
    indent encodes in pure Python, a quarter of a rewrite's CPU (bench/recording_rooms.py)."""
    data = msgspec.json.encode(doc)
    tmp = directory / (MANIFEST + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, directory / MANIFEST)


def read_manifest(directory: Path) -> dict[str, Any] | None:
    """A recording's manifest, or None if it has none (yet) or it is unreadable."""
    try:
        doc = json.loads((directory / MANIFEST).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None
