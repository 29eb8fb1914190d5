"""Where recordings live on disk, and reading them back safely.

Layout: ``<root>/<room>/<recording id>/`` holding the track files and
``manifest.json``; ``<root>`` is ``<data-dir>/recordings`` or ``--recordings-dir``.
Recording ids (:func:`new_id`) are ``YYYYMMDDTHHMMSSZ-`` and 6 random hex digits: they
sort by start time, and are checked against :data:`ID_PATTERN` before any path is
built from one.  A file name asked for is checked against :data:`FILE_PATTERN` and
must be a file directly inside its recording's directory (no ``..``, no ``/``, no
symbolic link out of it).
"""

from __future__ import annotations

import builtins
import os
import re
import secrets
import shutil
import time
from pathlib import Path
from typing import Any

from .manifest import read_manifest

__all__ = ["FILE_PATTERN", "ID_PATTERN", "RecordingStore", "new_id"]

ID_PATTERN = re.compile(r"[0-9]{8}T[0-9]{6}Z-[0-9a-f]{6}")
FILE_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


def new_id(now: float | None = None) -> str:
    """A new recording id: its UTC start time and 24 random bits."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if now is None else now))
    return f"{stamp}-{secrets.token_hex(3)}"


def _room_dir(room: str) -> str:
    # room names are [A-Za-z0-9_.-]; "." and ".." would name no directory of their own
    return room if room.strip(".") else "_" + room


class RecordingStore:
    """The recordings under one root directory."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def directory(self, room: str, rec_id: str) -> Path:
        """Where a new recording of ``room`` goes."""
        if not ID_PATTERN.fullmatch(rec_id):
            raise ValueError("bad recording id")
        return self.root / _room_dir(room) / rec_id

    def find(self, rec_id: str) -> Path | None:
        """The directory of recording ``rec_id``, or None."""
        if not ID_PATTERN.fullmatch(rec_id) or not self.root.is_dir():
            return None
        for room in self.root.iterdir():
            candidate = room / rec_id
            if candidate.is_dir():
                return candidate
        return None

    def file(self, rec_id: str, name: str) -> Path | None:
        """A file of a recording, or None (unknown, or a name that tries to leave it)."""
        if not FILE_PATTERN.fullmatch(name) or name.endswith(".tmp"):
            return None
        directory = self.find(rec_id)
        if directory is None:
            return None
        path = directory / name
        try:
            resolved = path.resolve(strict=True)
        except OSError:
            return None
        if resolved.parent != directory.resolve() or not resolved.is_file():
            return None
        return resolved

    def describe(self, directory: Path) -> dict[str, Any]:
        """One recording for listings: id, room, times, files with sizes and durations."""
        doc = read_manifest(directory) or {}
        tracks = {t.get("file"): t for t in doc.get("tracks", []) if isinstance(t, dict)}
        files = []
        for path in sorted(directory.iterdir()):
            if not path.is_file() or path.name.endswith(".tmp"):
                continue
            entry: dict[str, Any] = {"name": path.name, "size": path.stat().st_size}
            track = tracks.get(path.name)
            if track is not None:
                entry.update(
                    participant=track.get("participant"),
                    track=track.get("track"),
                    kind=track.get("kind"),
                    codec=track.get("codec"),
                    duration=track.get("duration"),
                )
            files.append(entry)
        return {
            "id": directory.name,
            "room": doc.get("room", directory.parent.name),
            "started_at": doc.get("started_at"),
            "stopped_at": doc.get("stopped_at"),
            "stop_reason": doc.get("stop_reason"),
            "files": files,
        }

    def list(self, room: str | None = None) -> builtins.list[dict[str, Any]]:
        """Recordings (of ``room``, or all), newest first."""
        if not self.root.is_dir():
            return []
        rooms = [self.root / _room_dir(room)] if room is not None else list(self.root.iterdir())
        out = []
        for room_dir in rooms:
            if not room_dir.is_dir():
                continue
            for directory in room_dir.iterdir():
                if directory.is_dir() and ID_PATTERN.fullmatch(directory.name):
                    out.append(self.describe(directory))
        out.sort(key=lambda r: r["id"], reverse=True)
        return out

    def purge(self, older_than: float, now: float | None = None) -> builtins.list[str]:
        """Delete finished recordings whose manifest says they stopped more than
        ``older_than`` seconds ago (retention); returns the ids deleted."""
        now = time.time() if now is None else now
        gone: builtins.list[str] = []
        if not self.root.is_dir():
            return gone
        for room_dir in self.root.iterdir():
            if not room_dir.is_dir():
                continue
            for directory in room_dir.iterdir():
                if not ID_PATTERN.fullmatch(directory.name) or not directory.is_dir():
                    continue
                doc = read_manifest(directory)
                stopped = doc.get("stopped_at") if doc else None
                if isinstance(stopped, int | float) and now - stopped > older_than:
                    shutil.rmtree(directory, ignore_errors=True)
                    gone.append(directory.name)
            try:
                os.rmdir(room_dir)  # only if now empty
            except OSError:
                pass
        return gone
