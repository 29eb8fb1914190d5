"""A sync hook run in place, on the event loop's thread, within its time budget.

A pass-through ``on_chat`` runs for every chat message, so a call must cost next to
nothing: it notes its start time, makes sure a timer is pending, and runs the hook; no
system call.  (Arming and disarming an interval timer around each call, and the
bookkeeping with it, cost 17 µs a call, several percent of a saturated chat fan-out.)

The budget is kept by one interval timer (``ITIMER_REAL``, ``SIGALRM``) for all calls.  A
call arms it when none is pending (so at most once per budget while hooks are being
called, and never on an idle server).  When it fires, its handler looks at the call
running at that moment, if any:

- none: nothing; the timer stays off until the next call;
- one still within its budget: the timer is armed again for what is left of it;
- one past its budget: first a probe of ``PROBE`` seconds (the thread's CPU time and
  voluntary waits noted), then :class:`HookOverrun` is raised inside the hook.  The probe
  tells a hook that computed or blocked (``own``: the caller moves it to a worker thread)
  from a server that the machine paused (it does not).  A hook that returns during the
  probe still ran past its budget: :meth:`InPlace.call` raises ``HookOverrun`` then too,
  with ``own`` false (too short to tell).

The handler runs in the main thread between two bytecodes, wherever the interpreter is;
it raises only inside the hook (never in ``call``'s own frame, never when no hook runs).
"""

from __future__ import annotations

import resource
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

try:  # the C function: signal.getsignal wraps it in an enum lookup that costs ~7 µs
    from _signal import getsignal as _getsignal
except ImportError:  # pragma: no cover - not CPython
    _getsignal = signal.getsignal

#: Seconds a hook past its budget is watched before it is interrupted (see the docstring).
PROBE = 0.001


class HookOverrun(BaseException):  # noqa: N818 - not an error of the caller's making
    """Raised inside a sync hook that ran past its budget (a BaseException, so that a
    hook's ``except Exception`` does not swallow it)."""


def usage() -> tuple[float, int]:
    """This thread's CPU seconds and voluntary context switches (it blocked) so far.

    The CPU time from ``thread_time`` (exact); getrusage's counts only at scheduler ticks.
    """
    try:
        waits = resource.getrusage(resource.RUSAGE_THREAD).ru_nvcsw
    except (AttributeError, OSError):  # not Linux: no evidence of blocking
        waits = 0
    return time.thread_time(), waits


def its_own(before: tuple[float, int], cpu: float) -> bool:
    """Since ``before``: did the hook compute (``cpu`` seconds on the CPU) or block (a
    voluntary wait), rather than the machine pausing the server?"""
    now, waits = usage()
    return now - before[0] > cpu or waits > before[1]


class InPlace:
    """Runs sync hooks in place under the shared budget timer (one per process)."""

    def __init__(self) -> None:
        self._handler = self._fire  # one bound method: compared by identity
        self._main = threading.main_thread().ident
        self._has_timer = hasattr(signal, "setitimer")
        #: The running call: its start (perf_counter) and budget; None: no hook runs.
        self.started: float | None = None
        self.limit = 0.0
        #: The running call went past its budget: when it was first seen so, and usage().
        self.probe: tuple[float, tuple[float, int]] | None = None
        #: The last HookOverrun: was it the hook's doing (see the module docstring)?
        self.own = False
        #: A timer is pending, due at this perf_counter time.
        self.pending = False
        self.due = 0.0

    def usable(self) -> bool:
        """In the main thread, with SIGALRM ours (taken now if nobody has it)."""
        if threading.get_ident() != self._main or not self._has_timer:
            return False
        current = _getsignal(signal.SIGALRM)
        if current is self._handler:
            return True
        if current not in (signal.SIG_DFL, None):
            return False  # someone else's SIGALRM: do not take it over
        signal.signal(signal.SIGALRM, self._handler)
        return True

    def _arm(self, seconds: float, now: float) -> None:
        self.pending, self.due = True, now + seconds
        signal.setitimer(signal.ITIMER_REAL, max(seconds, 1e-6))

    def _fire(self, _signum: int, frame: FrameType | None) -> None:
        self.pending = False
        started = self.started
        if started is None:
            return  # no hook runs: the timer stays off until the next call
        now = time.perf_counter()
        left = started + self.limit - now
        if left > 0:
            self._arm(left, now)
            return
        if frame is not None and frame.f_code is _CALL_CODE:
            # Between the hook's return and the end of call(): not inside the hook.
            self._arm(PROBE, now)
            return
        probe = self.probe
        if probe is None:
            self.probe = (now, usage())
            self._arm(PROBE, now)
            return
        # A tenth of the probe's time on the CPU: a hook that computes gets more, even on
        # a crowded machine; one the machine paused gets microseconds.
        self.own = its_own(probe[1], (now - probe[0]) / 10)
        self._arm(self.limit, now)  # again, should the hook catch this one
        raise HookOverrun

    def call(self, fn: Callable[..., Any], args: tuple[Any, ...], budget: float) -> Any:
        """``fn(*args)``, or :class:`HookOverrun` past ``budget`` seconds."""
        now = time.perf_counter()
        self.probe = None
        self.limit = budget
        # Running before the timer is checked: a handler that runs in between sees the
        # call and arms the timer for it.
        self.started = now
        try:
            if not self.pending or self.due > now + budget:
                self._arm(budget, now)
            result = fn(*args)
        except HookOverrun:
            self._stop()
            raise
        finally:
            self.started = None
        if self.probe is not None:  # it returned, but past its budget
            self.own = False
            self._stop()
            raise HookOverrun
        return result

    def _stop(self) -> None:
        """After an overrun (rare): no timer left armed for a call that is over."""
        self.started = None
        self.pending = False
        signal.setitimer(signal.ITIMER_REAL, 0)


_CALL_CODE = InPlace.call.__code__
