"""Recordings cut short by a dead process, finished when a server starts again.

While a recording runs, its writing process holds an exclusive ``flock`` on the
recording's directory (:func:`lock_directory`); the kernel drops it when that process
exits, however it exits (SIGKILL, a crash, a power cut then a reboot).  So a recording
whose manifest has no ``stopped_at`` and whose directory nobody holds was cut short:
:func:`interrupted` finds those under a recordings root, and :func:`finish` closes one
as the writer would have:

* each track file is remuxed (stream copy, no decoding) into a complete one, with its
  index and duration, from the packets that reached the disk (Matroska is written in
  clusters of at most a second, so at most the last second is lost);
* the manifest's tracks get the ``end``/``duration``/``frames`` of what the files hold
  (the manifest was up to 10 s older than the files);
* ``stopped_at`` is the last moment written (a track's end or an event, whichever is
  later) and ``stop_reason`` is ``"interrupted"``.

A recording another live process still writes (nodes of a cluster sharing one
``--recordings-dir``) is locked, hence left alone.  On a filesystem without ``flock``
(or a platform without ``fcntl``) nothing is ever considered interrupted.
"""

from __future__ import annotations

import contextlib
import logging
import os
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from .manifest import read_manifest, write_manifest
from .storage import ID_PATTERN
from .writer import opus_frames

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Linux
    fcntl = None  # type: ignore[assignment]

__all__ = ["finish", "interrupted", "lock_directory", "unlock"]

log = logging.getLogger(__name__)

REASON = "interrupted"


def lock_directory(directory: Path) -> int | None:
    """Hold ``directory``'s writer lock: a file descriptor to :func:`unlock` later, or
    None if another open description holds it (or locks are unavailable)."""
    if fcntl is None:
        return None
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def unlock(fd: int | None) -> None:
    if fd is not None:
        with contextlib.suppress(OSError):
            os.close(fd)  # closing the only descriptor drops the flock


def interrupted(root: Path) -> list[Path]:
    """Recording directories under ``root`` whose manifest says they run (no
    ``stopped_at``) though no process writes them (see the module docstring)."""
    if not root.is_dir():
        return []
    found = []
    for room_dir in root.iterdir():
        if not room_dir.is_dir():
            continue
        for directory in room_dir.iterdir():
            if not ID_PATTERN.fullmatch(directory.name) or not directory.is_dir():
                continue
            doc = read_manifest(directory)
            if doc is None or doc.get("stopped_at") is not None:
                continue
            fd = lock_directory(directory)
            if fd is not None:
                unlock(fd)
                found.append(directory)
    return sorted(found)


def _remux(path: Path) -> tuple[int, float] | None:
    """Rewrite ``path`` complete (index, duration) from the packets it holds: (packets,
    seconds from the first to the start of the last one); None if it holds none."""
    tmp = path.with_name(path.name + ".tmp")
    packets, last = 0, Fraction(0)
    try:
        with av.open(str(path)) as src:
            if not src.streams:
                return None
            stream = src.streams[0]
            fmt = "webm" if path.suffix == ".webm" else "matroska"
            opus = stream.codec_context.name == "opus"
            with av.open(str(tmp), "w", format=fmt) as out:
                copy = out.add_stream_from_template(stream)
                try:
                    for packet in src.demux(stream):
                        if packet.pts is None or packet.size == 0:
                            continue  # the demuxer's end-of-stream marker
                        start = Fraction(packet.pts * packet.time_base if packet.time_base else 0)
                        if opus:  # the writer's batches: one packet, up to 120 ms of frames
                            n, samples = opus_frames(bytes(packet))
                            packets += n
                            start += Fraction((n - 1) * samples, 48000)
                        else:
                            packets += 1
                        packet.stream = copy
                        out.mux(packet)
                        last = max(last, start)
                except av.FFmpegError:
                    pass  # the cluster being written when the process died: cut there
        if not packets:
            tmp.unlink(missing_ok=True)
            return None
        os.replace(tmp, path)
    except (OSError, av.FFmpegError) as exc:
        log.warning("recording file %s could not be completed: %s", path, exc)
        tmp.unlink(missing_ok=True)
        return None
    return packets, float(last)


def finish(directory: Path) -> dict[str, Any] | None:
    """Close the interrupted recording in ``directory`` (see the module docstring); its
    new manifest, or None if it is not interrupted after all (someone holds it, or it
    finished meanwhile)."""
    fd = lock_directory(directory)
    if fd is None:
        return None
    try:
        doc = read_manifest(directory)
        if doc is None or doc.get("stopped_at") is not None:
            return None
        last = float(doc.get("started_at") or 0.0)
        tracks = [t for t in doc.get("tracks") or [] if isinstance(t, dict)]
        for track in tracks:
            name = str(track.get("file") or "")
            path = directory / name
            if not name or path.parent != directory or not path.is_file():
                continue
            done = _remux(path)
            if done is not None:
                frames, duration = done
                start = float(track.get("start") or 0.0)
                track.update(frames=frames, duration=round(duration, 6),
                             end=round(start + duration, 6), bytes=path.stat().st_size)  # fmt: skip
            last = max(last, float(track.get("end") or 0.0))
        listed = {str(t.get("file")) for t in tracks}
        for path in sorted(directory.iterdir()):  # opened less than 5 s before the end
            if path.suffix in (".webm", ".mkv") and path.name not in listed and path.is_file():
                _remux(path)
        for event in doc.get("events") or []:
            if isinstance(event, dict) and isinstance(event.get("t"), int | float):
                last = max(last, float(event["t"]))
        doc["tracks"] = tracks
        doc["stopped_at"] = round(last, 6)
        doc["stop_reason"] = REASON
        write_manifest(directory, doc)
        return doc
    finally:
        unlock(fd)
