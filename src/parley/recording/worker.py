"""One thread that writes every recording of the process, a few times a second.

A recording's packets wait in its queue (:class:`~.session.RoomRecording`); something
must drain them into files.  One thread per recording did it at first, and in real time
it cost more than the work (``bench/recording_rooms.py``, 20 rooms on one core: 19 µs
of CPU a packet against 8.6 µs for the same drain done in one go): 20 threads each
waking 10 times a second, each wake-up finding a few packets, cold caches, and Python's
GIL held by another thread.  :class:`RecordingWorker` drives them all from one thread:
one wake-up per period for every recording, which then drains each queue in turn.
The period is long (:data:`DRAIN_EVERY`) unless a job says it is in a hurry (a loss
waiting to be given up and answered with a key frame request): then
:data:`HURRY_EVERY`.

A job is anything with ``step() -> bool`` (True: finished, drop it; it never raises).
:meth:`RecordingWorker.wake` asks for a round at once (a recording asked to stop
finishes without waiting for the period).  The thread starts with the first job and
ends when the last one finishes.  The cost of sharing: a write that blocks (a slow
disk) holds up every recording for that long; their queues absorb it (each bounded:
``session.QUEUE_LIMIT`` packets, then dropped and counted; the files stay clean).
"""

from __future__ import annotations

import logging
import threading
from typing import Protocol

__all__ = ["Job", "RecordingWorker", "shared"]

log = logging.getLogger(__name__)

#: Seconds between two rounds.  A wake-up costs more than the packets it finds when it
#: finds few (bench/recording_rooms.py: 20 rooms on one core, 13.3 µs a packet at
#: 0.1 s, 12.3 at 0.2), so rounds are as far apart as the reorder buffer's own wait
#: for a late packet (0.3 s), which a loss waits anyway before its key frame request.
DRAIN_EVERY = 0.3
#: Seconds between two rounds while a job is in a hurry (:attr:`Job.hurry`: a hole in a
#: stream waits for its late packet, or a key frame is wanted): a key frame request
#: goes out at most this long after the hole is given up, as when every round was 0.1 s.
HURRY_EVERY = 0.1


class Job(Protocol):
    #: read after each step: True asks for the next round within HURRY_EVERY
    hurry: bool

    def step(self) -> bool: ...


class RecordingWorker:
    """See the module docstring."""

    def __init__(self, period: float | None = None, name: str = "recordings") -> None:
        self.period = period
        self.name = name
        self._lock = threading.Lock()
        self._jobs: list[Job] = []
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.rounds = 0  # rounds run (for benchmarks)

    def add(self, job: Job) -> None:
        """Run ``job`` from the next round on (starts the thread if there is none)."""
        with self._lock:
            self._jobs.append(job)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()

    def wake(self) -> None:
        """A round now, rather than at the end of the period."""
        self._wake.set()

    def __len__(self) -> int:
        return len(self._jobs)

    def _run(self) -> None:
        wake = self._wake
        while True:
            with self._lock:
                jobs = list(self._jobs)
                if not jobs:
                    self._thread = None  # add() starts another one
                    return
            self.rounds += 1
            done = []
            hurry = False
            for job in jobs:
                try:
                    finished = job.step()
                except Exception:  # a bug in one recording must not stop the others
                    log.exception("recording job %r failed", job)
                    finished = True
                if finished:
                    done.append(job)
                elif job.hurry:
                    hurry = True
            if done:
                with self._lock:
                    self._jobs = [j for j in self._jobs if j not in done]
                continue  # at once: the thread ends if nothing is left
            # read at each round: a benchmark or a test may change the module's periods
            if self.period is not None:
                wake.wait(self.period)
            else:
                wake.wait(HURRY_EVERY if hurry else DRAIN_EVERY)
            wake.clear()


_shared: RecordingWorker | None = None
_shared_lock = threading.Lock()


def shared() -> RecordingWorker:
    """The process's worker: every recording that is not given one."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = RecordingWorker()
        return _shared
