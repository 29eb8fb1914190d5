"""One room's recording: the tap on the SFU's packet path and the thread that writes.

The forwarder calls :meth:`RoomRecording.rtp` for every RTP packet a publisher sends
(on the event loop, on the hot path): it appends ``(source, packet, time)`` to a
bounded queue and returns; that is all recording costs the forwarding
(``bench/recording.py``).  A thread drains the queue a few times a second and does the
rest: reordering, frames, muxing (:mod:`.track`), the manifest (:mod:`.manifest`), key
frame requests (handed back to the loop, where the forwarder lives).  That thread is the
process's :class:`~.worker.RecordingWorker`, shared by every recording (one round,
:meth:`RoomRecording.step`, per recording per period).  A full queue drops packets
(counted); the tracks see that as loss and wait for a key frame, so the files stay clean.

A recording stops when asked (:meth:`RoomRecording.stop`) or by itself when its disk
runs low (less than ``min_free`` bytes) or a write fails: its files are closed
properly (they play up to there), the manifest says why (``stop_reason``:
``"disk-full"``, ``"write-error"``), and ``on_failed(reason)`` is called on the loop.
"""

from __future__ import annotations

import errno
import logging
import re
import shutil
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from .jitter import Packet
from .manifest import Timeline
from .recovery import lock_directory, unlock
from .track import TrackInfo, TrackRecorder
from .worker import RecordingWorker, shared
from .writer import EXTENSIONS

__all__ = ["RoomRecording", "SourceLike"]

log = logging.getLogger(__name__)

#: Packets waiting for the recording thread, at most (about 10 s of a busy room).
QUEUE_LIMIT = 20_000
#: Seconds between disk space checks, and at least between two manifest rewrites (a
#: rewrite costs ~0.3 ms of CPU, most of it creating and renaming the file; recovery.py
#: brings the tracks of a manifest cut short up to date from the files, so what a crash
#: can lose is this long of events).  A new track's file is written down at once.
MANIFEST_EVERY = 5.0
#: Seconds between two key frame requests for one track.
PLI_EVERY = 0.5
_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


class SourceLike(Protocol):
    """What the recording reads of the forwarder's ``Source`` (a published stream)."""

    pid: str
    track_id: str
    kind: str
    codec: str
    clock_rate: int
    screen: bool
    layer: int
    ssrc: int

    @property
    def main(self) -> Any: ...

    def request_keyframe(self, now: float) -> bool: ...


def _safe(text: str) -> str:
    return _SAFE.sub("_", text)[:64] or "_"


class RoomRecording:
    """See the module docstring."""

    def __init__(
        self,
        directory: Path,
        rec_id: str,
        room: str,
        *,
        started_by: dict[str, str],
        call_soon: Callable[[Callable[[], None]], object] | None = None,
        on_failed: Callable[[str], None] | None = None,
        min_free: int = 200 * 1024 * 1024,
        queue_limit: int = QUEUE_LIMIT,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        worker: RecordingWorker | None = None,
    ) -> None:
        self.directory = directory
        self.id = rec_id
        self.room = room
        self.call_soon = call_soon  # runs a function on the event loop (thread-safe)
        self.on_failed = on_failed
        self.min_free = min_free
        self.queue_limit = queue_limit
        self._mono = monotonic
        self.wall_offset = wall() - monotonic()
        self.timeline = Timeline(rec_id, room, wall(), started_by)
        self._queue: deque[tuple[Any, bytes, float]] = deque()
        self._srs: deque[tuple[Any, int, int]] = deque(maxlen=1000)
        #: SSRC -> (NTP, RTP ts) of its latest sender report, shared by every track (a
        #: report may come before the recording has seen the stream's first packet)
        self.sender_reports: dict[int, tuple[int, int]] = {}
        self.queue_dropped = 0
        self.tracks: dict[Any, TrackRecorder] = {}  # by the track's main Source
        self.finished: list[TrackRecorder] = []
        self._files = 0
        self._pli_at: dict[Any, float] = {}
        self._stop = threading.Event()
        self._done = threading.Event()  # finished: files closed, manifest written
        self._worker = worker  # None: the process's (worker.shared())
        self._started = False
        self._last_manifest = 0.0
        self.stop_reason: str | None = None
        self.failure: str | None = None
        self._lock: int | None = None  # the directory's writer lock (recovery.py)
        self._described = 0  # tracks in the manifest last written
        self._written: tuple[int, int] = (-1, -1)  # what it said: (events version, frames)
        #: after a step: a track waits for a late packet or wants a key frame, so the
        #: worker's next round comes sooner (worker.HURRY_EVERY)
        self.hurry = False

    # -- the packet path (event loop) ------------------------------------------------
    def rtp(self, src: SourceLike, data: bytes, now: float) -> None:
        """A publisher's RTP packet (plaintext, RTX unwrapped): queued, nothing more."""
        q = self._queue
        if len(q) < self.queue_limit:
            q.append((src, data, now))
        else:
            self.queue_dropped += 1

    def sr(self, src: SourceLike, ntp: int, rtp_ts: int, now: float) -> None:
        """A sender report of one of the publisher's streams (NTP <-> RTP time)."""
        self._srs.append((src, ntp, rtp_ts))

    def ended(self, src: SourceLike) -> None:
        """A published track went away: its file is finished."""
        self._queue.append((src, b"", -1.0))

    # -- control ---------------------------------------------------------------------
    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        # held until the end: a server started after this process died finishes it
        self._lock = lock_directory(self.directory)
        try:
            self.timeline.write(self.directory, [])
        except OSError:
            unlock(self._lock)
            raise
        self._last_manifest = self._mono()
        self._started = True
        if self._worker is None:
            self._worker = shared()
        self._worker.add(self)

    def stop(self, reason: str = "stopped") -> None:
        """Ask the worker to finish it (returns at once; :meth:`join` waits)."""
        if self.stop_reason is None:
            self.stop_reason = reason
        self._stop.set()
        if self._worker is not None:
            self._worker.wake()

    def join(self, timeout: float | None = None) -> None:
        """Wait until it is finished (files closed, manifest written)."""
        if self._started:
            self._done.wait(timeout)

    @property
    def running(self) -> bool:
        return self._started and not self._done.is_set()

    def event(self, kind: str, **fields: Any) -> None:
        """A meeting event for the manifest, now (any thread)."""
        self.timeline.event(self._mono() + self.wall_offset, kind, **fields)

    def manifest(self) -> dict[str, Any]:
        return self.timeline.document(self._describe())

    # -- the recording thread ----------------------------------------------------------
    def step(self) -> bool:
        """One round on the worker's thread: drain the queue, write, request key frames,
        rewrite the manifest when due.  True when the recording is finished (stopped, or
        failed: then its files are closed and its manifest final).  Never raises."""
        try:
            stopping = self._stop.is_set()
            self._drain()
            now = self._mono()
            hurry = False
            for track in self.tracks.values():
                track.tick(now)
                self._keyframes(track, now)
                if track.wants_key or track.waiting:
                    hurry = True
            self.hurry = hurry
            # also at once when a track's file starts: a process killed before the
            # next rewrite leaves a manifest that knows every file (recovery.py)
            new_files = self._new_files()
            due = now - self._last_manifest >= MANIFEST_EVERY
            if new_files or due:
                self._last_manifest = now
                self._write_manifest(force=new_files)
            if due and shutil.disk_usage(self.directory).free < self.min_free:
                self._fail("disk-full")
                stopping = True
        except OSError as exc:
            log.warning("recording %s: %s", self.id, exc)
            self._fail("disk-full" if exc.errno == errno.ENOSPC else "write-error")
            stopping = True
        except Exception:
            log.exception("recording %s failed", self.id)
            self._fail("write-error")
            stopping = True
        if not stopping:
            return False
        try:
            self._finish()
        except Exception:  # the files are as closed as they can be: it is over
            log.exception("recording %s: finishing failed", self.id)
        finally:
            self._done.set()
        return True

    def _write_manifest(self, force: bool) -> None:
        """Rewrite the manifest if anything in it changed since the last time (a room
        whose tracks are paused and that has no events costs no rewrite)."""
        frames = sum(t.writer.frames for t in self.tracks.values())
        state = (self.timeline.version, frames)
        if force or state != self._written:
            self.timeline.write(self.directory, self._describe())
            self._written = state

    def _new_files(self) -> bool:
        n = len(self.finished) + sum(1 for t in self.tracks.values() if t.writer.frames)
        changed, self._described = n != self._described, n
        return changed

    def _fail(self, reason: str) -> None:
        self.failure = reason
        self.stop_reason = reason
        self._stop.set()
        if self.on_failed is not None and self.call_soon is not None:
            on_failed = self.on_failed
            self.call_soon(lambda: on_failed(reason))

    def _finish(self) -> None:
        for track in list(self.tracks.values()):
            self._close(track)
        self.tracks.clear()
        self.timeline.meta["stopped_at"] = round(self._mono() + self.wall_offset, 6)
        self.timeline.meta["stop_reason"] = self.stop_reason or "stopped"
        if self.queue_dropped:
            self.timeline.meta["packets_dropped"] = self.queue_dropped
        try:
            self.timeline.write(self.directory, self._describe())
        except OSError as exc:
            log.warning("recording %s: manifest not written: %s", self.id, exc)
        unlock(self._lock)
        self._lock = None

    def _close(self, track: TrackRecorder) -> None:
        try:
            track.finish()
        except Exception as exc:  # a full disk while closing: the file plays up to there
            log.warning("recording %s: closing %s: %s", self.id, track.writer.path.name, exc)
            track.ended = True
        if track.writer.frames:
            self.finished.append(track)

    def _describe(self) -> list[dict[str, Any]]:
        live = [t for t in self.tracks.values() if t.writer.frames]
        return [t.describe() for t in self.finished + live]

    def _drain(self) -> None:
        if self.failure is not None:
            self._queue.clear()
            return
        srs = self._srs
        reports = self.sender_reports
        while srs:
            src, ntp, rtp_ts = srs.popleft()
            if len(reports) < 4096 or src.ssrc in reports:  # bounded: SSRCs are untrusted
                reports[src.ssrc] = (ntp, rtp_ts)
        # a round's packets grouped by track (in arrival order within each): a track
        # takes them in one call (TrackRecorder.packets), not one call chain a packet
        q = self._queue
        popleft = q.popleft
        groups: dict[Any, list[Packet]] = {}
        for _ in range(len(q)):
            item = popleft()
            main = item[0].main
            if not item[1]:  # the track ended: its packets first, then its file closes
                pending = groups.pop(main, None)
                if pending:
                    self._track(main, pending[0][0]).packets(pending)
                track = self.tracks.pop(main, None)
                if track is not None:
                    self._close(track)
                continue
            group = groups.get(main)
            if group is None:
                groups[main] = [item]
            else:
                group.append(item)
        for main, group in groups.items():
            self._track(main, group[0][0]).packets(group)

    def _track(self, main: Any, src: SourceLike) -> TrackRecorder:
        track = self.tracks.get(main)
        if track is None:
            track = self.tracks[main] = self._new_track(src)
        return track

    def _new_track(self, src: SourceLike) -> TrackRecorder:
        self._files += 1
        codec = src.codec.upper()
        name = f"{_safe(src.pid)}-{_safe(src.track_id)}-{self._files}{EXTENSIONS.get(codec, '')}"
        info = TrackInfo(src.pid, src.track_id, src.kind, codec, src.clock_rate, src.screen)
        track = TrackRecorder(info, self.directory / name, self.wall_offset)
        track.sr = self.sender_reports
        return track

    def _keyframes(self, track: TrackRecorder, now: float) -> None:
        ssrc = track.wants_key
        if not ssrc or self.call_soon is None:
            return
        if now - self._pli_at.get(track, float("-inf")) < PLI_EVERY:
            return
        src = self._layer(track, ssrc)
        if src is None:
            return
        track.wants_key = 0
        track.keyframes_requested += 1
        self._pli_at[track] = now
        mono = self._mono
        self.call_soon(lambda: src.request_keyframe(mono()))

    def _layer(self, track: TrackRecorder, ssrc: int) -> Any:
        """The forwarder's Source of stream ``ssrc`` of ``track``."""
        main = next((m for m, t in self.tracks.items() if t is track), None)
        if main is None:
            return None
        streams = main.layers if getattr(main, "layers", None) is not None else [main]
        return next((s for s in streams if s.ssrc == ssrc), None)
