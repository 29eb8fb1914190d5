"""Loading a policy module and calling its hooks safely.

Safety rules (docs/hooks.md): every call has a time budget; past it, or on an
exception, or on a return of the wrong type, the configured default applies and
a log line says why (with the traceback for an exception); nothing reaches a
client and the server goes on.

How the budget is kept: async hooks are awaited with a timeout.  Sync hooks run
in place, on the event loop's thread, under one shared interval timer that interrupts
a hook past its budget (``in_place.py``): a hop to a worker thread and back cost more
than the hook itself (a pass-through ``on_chat`` halved the chat fan-out that way).  A
sync hook holds the loop while it runs, so one that takes more than ``IN_PLACE_MAX`` in
``IN_PLACE_STRIKES`` calls in a row, or is interrupted at its budget, because of its own
work or waits, is moved to the worker threads for good (until the file is reloaded),
with a log line.  Where the timer cannot be used (not the main thread, no
``setitimer``, or the process already handles SIGALRM), and for timers (whose budget is
10 s), sync functions run in a worker thread.  The file is reloaded when it changes or
on SIGHUP; a file that no longer loads keeps the previous policy.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib.util
import inspect
import itertools
import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..core.admission import Decision, Enter, Refuse
from ..core.protocol import ErrorCode
from . import api
from .api import (
    Actions,
    Allow,
    ChatInfo,
    Deny,
    JoinInfo,
    LeaveInfo,
    Lobby,
    RenameInfo,
    RoomInfo,
    Timer,
)
from .in_place import HookOverrun, InPlace, its_own, usage

log = logging.getLogger(__name__)

HOOKS = ("on_join", "on_chat", "on_rename", "on_leave", "on_room_open", "on_room_close")
ROLES = ("host", "participant", "observer")
_count = itertools.count(1)
#: Seconds a timer's function may take (it acts on meetings; hooks only decide).
TIMER_BUDGET = 10.0
#: A sync hook that holds the event loop longer than this in ``IN_PLACE_STRIKES`` calls in
#: a row (or runs past its budget once) is moved to a worker thread.  In a row: a busy
#: machine may pause any one call that long; a hook that waits for I/O is slow every time.
IN_PLACE_MAX = 0.002
IN_PLACE_STRIKES = 5


class PolicyError(Exception):
    """A policy file that cannot be used; ``str()`` is the one line to print."""


@dataclass(frozen=True)
class Loaded:
    path: Path
    mtime: float
    hooks: dict[str, Callable[..., Any]]
    #: Hooks that also take the Actions context as a second argument.
    with_actions: frozenset[str]
    timers: tuple[Timer, ...]
    #: The hooks that are coroutine functions (awaited on the loop, with a timeout).
    coroutines: frozenset[str] = frozenset()


def load(path: Path) -> Loaded:
    """Import a policy file and check its hooks; :class:`PolicyError` if it is no good."""
    try:
        mtime = path.stat().st_mtime
    except OSError as exc:
        raise PolicyError(f"{path}: {exc.strerror or exc}") from None
    spec = importlib.util.spec_from_file_location(f"parley_policy_{next(_count)}", path)
    if spec is None or spec.loader is None:
        raise PolicyError(f"{path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    api._declared.clear()
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        api._declared.clear()
        where = ""
        tb = exc.__traceback__
        while tb is not None:
            if tb.tb_frame.f_code.co_filename == str(path):
                where = f" (line {tb.tb_lineno})"
            tb = tb.tb_next
        if isinstance(exc, SyntaxError) and exc.lineno:
            where = f" (line {exc.lineno})"
        raise PolicyError(f"{path}{where}: {type(exc).__name__}: {exc}") from None
    timers = tuple(api._declared)
    api._declared.clear()
    hooks: dict[str, Callable[..., Any]] = {}
    with_actions: set[str] = set()
    for name in HOOKS:
        fn = getattr(module, name, None)
        if fn is None:
            continue
        if not callable(fn):
            raise PolicyError(f"{path}: {name} is not a function")
        params = [
            q
            for q in inspect.signature(fn).parameters.values()
            if q.kind in (q.POSITIONAL_ONLY, q.POSITIONAL_OR_KEYWORD)
        ]
        if not 1 <= len(params) <= 2:
            raise PolicyError(f"{path}: {name} must take 1 argument (or 2, with actions)")
        if len(params) == 2:
            with_actions.add(name)
        hooks[name] = fn
    for timer in timers:
        if len([q for q in inspect.signature(timer.fn).parameters.values()]) != 1:
            raise PolicyError(f"{path}: timer {timer.name} must take 1 argument (actions)")
    coroutines = frozenset(n for n, fn in hooks.items() if inspect.iscoroutinefunction(fn))
    return Loaded(path, mtime, hooks, frozenset(with_actions), timers, coroutines)


_FAILED = object()
#: Results that are surely not awaitable (checked first: ``inspect.isawaitable`` is slow).
_PLAIN = frozenset({type(None), object, str, ChatInfo, RenameInfo, Allow, Deny, Lobby, bool, int})


_in_place = InPlace()


@dataclass
class Policy:
    """The loaded policy of a server, reloaded when its file changes."""

    path: Path
    #: Seconds a hook may take before the default applies.
    budget: float = 0.05
    #: on_join's default when a hook fails or is too slow: "allow" or "deny".
    default_join: str = "allow"
    loaded: Loaded = field(init=False)
    actions: Actions | None = None
    #: Sync hooks run in place under SIGALRM where possible (see the module docstring);
    #: False: always in a worker thread.
    in_place: bool = True
    _pool: ThreadPoolExecutor = field(init=False, repr=False)
    #: Sync hooks found too slow to run in place (see IN_PLACE_MAX), and how many slow
    #: calls in a row each has had.
    _threaded: set[Callable[..., Any]] = field(default_factory=set, repr=False)
    _strikes: dict[Callable[..., Any], int] = field(default_factory=dict, repr=False)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        self.loaded = load(self.path)
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="parley-policy")

    def has(self, hook: str) -> bool:
        return hook in self.loaded.hooks

    # -- calling hooks ---------------------------------------------------------------------

    async def _call(self, hook: str, arg: Any) -> Any:
        loaded = self.loaded
        fn = loaded.hooks.get(hook)
        if fn is None:
            return _FAILED
        args = (arg, self.actions) if hook in loaded.with_actions else (arg,)
        if (
            self.in_place
            and hook not in loaded.coroutines
            and fn not in self._threaded
            and _in_place.usable()
        ):
            result = self._run_in_place(hook, fn, args)
            if type(result) in _PLAIN or not inspect.isawaitable(result):
                return result
            return await self._settle(hook, result)  # a sync hook that returned a coroutine
        return await self._run(hook, fn, args)

    def _run_in_place(self, what: str, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        """A sync hook on the loop's thread (``in_place.py``): its result, or _FAILED."""
        budget = self.budget
        # A hook seen slow is watched (two system calls a call): was it its own doing?
        before = usage() if fn in self._strikes else None
        started = time.perf_counter()
        result: Any = _FAILED
        try:
            result = _in_place.call(fn, args, budget)
        except HookOverrun:
            if _in_place.own:
                self._to_thread(fn, what, time.perf_counter() - started)
            self._overran(what, budget)
        except Exception:
            self._raised(what, started)
        held = time.perf_counter() - started
        if held > IN_PLACE_MAX or before is not None:
            self._held(fn, what, held, before)
        return result

    def _held(
        self, fn: Callable[..., Any], what: str, held: float, before: tuple[float, int] | None
    ) -> None:
        """Count slow calls in a row; ``IN_PLACE_STRIKES`` move the hook to a thread.  The
        first is taken on trust (calls are not watched until then); the next ones count
        only if the hook computed or blocked, not if the machine paused the server."""
        if fn in self._threaded:
            return
        if held <= IN_PLACE_MAX or (before is not None and not its_own(before, IN_PLACE_MAX / 2)):
            self._strikes.pop(fn, None)
            return
        strikes = self._strikes.get(fn, 0) + 1
        if strikes >= IN_PLACE_STRIKES:
            self._to_thread(fn, what, held)
        else:
            self._strikes[fn] = strikes

    async def _run(
        self,
        what: str,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        budget: float | None = None,
    ) -> Any:
        """An async hook awaited with a timeout, or a sync one in a worker thread."""
        budget = self.budget if budget is None else budget
        started = time.perf_counter()
        try:
            if inspect.iscoroutinefunction(fn):
                return await asyncio.wait_for(fn(*args), budget)
            loop = asyncio.get_running_loop()
            result = await asyncio.wait_for(
                loop.run_in_executor(self._pool, lambda: fn(*args)), budget
            )
            if inspect.isawaitable(result):
                return await asyncio.wait_for(result, budget)
            return result
        except TimeoutError:
            self._overran(what, budget)
        except Exception:
            self._raised(what, started)
        return _FAILED

    async def _settle(self, what: str, awaitable: Any) -> Any:
        started = time.perf_counter()
        try:
            return await asyncio.wait_for(awaitable, self.budget)
        except TimeoutError:
            self._overran(what, self.budget)
        except Exception:
            self._raised(what, started)
        return _FAILED

    def _overran(self, what: str, budget: float) -> None:
        log.warning(
            "policy %s took more than %.0f ms: the default applies",
            what,
            budget * 1000,
            extra={"policy": what},
        )

    def _raised(self, what: str, started: float) -> None:
        log.exception(
            "policy %s raised after %.1f ms: the default applies",
            what,
            (time.perf_counter() - started) * 1000,
            extra={"policy": what},
        )

    def _to_thread(self, fn: Callable[..., Any], what: str, held: float) -> None:
        self._threaded.add(fn)
        self._strikes.pop(fn, None)
        log.info(
            "policy %s held the server for %.1f ms: it runs in a worker thread from now "
            "on (make it async if it waits for I/O)",
            what,
            held * 1000,
            extra={"policy": what},
        )

    async def on_join(self, info: JoinInfo, decision: Enter) -> Decision:
        """The room's decision, as the policy changes it."""
        verdict = await self._call("on_join", info)
        if verdict is _FAILED:
            if not self.has("on_join"):
                return decision
            verdict = Allow() if self.default_join == "allow" else Deny()
        elif verdict is None:
            verdict = Allow()
        if isinstance(verdict, Deny):
            return Refuse(ErrorCode.FORBIDDEN, verdict.reason or "not allowed in this room")
        if isinstance(verdict, Lobby):
            return replace(decision, lobby=True)
        if isinstance(verdict, Allow):
            if verdict.role is None:
                return decision
            if verdict.role not in ROLES:
                log.error("policy on_join: unknown role %r; the room's rules apply", verdict.role)
                return decision
            lobby = decision.lobby and verdict.role != "host"
            return replace(decision, role=verdict.role, lobby=lobby)
        log.error(
            "policy on_join returned %s, not allow()/deny()/lobby(): the default applies",
            type(verdict).__name__,
        )
        if self.default_join == "allow":
            return decision
        return Refuse(ErrorCode.FORBIDDEN, "not allowed in this room")

    async def on_chat(self, info: ChatInfo) -> str | None:
        """The text to store (maybe replaced), or None to drop the message."""
        original = info.text
        result = await self._call("on_chat", info)
        if result is _FAILED:
            return original
        if result is None:
            return None
        if isinstance(result, str):
            return result
        if isinstance(result, ChatInfo):
            return result.text if isinstance(result.text, str) else original
        log.error(
            "policy on_chat returned %s, not None, a str or the message: it passes unchanged",
            type(result).__name__,
        )
        return original

    async def on_rename(self, info: RenameInfo) -> str | None:
        """The name to take (maybe replaced), or None to refuse the change."""
        result = await self._call("on_rename", info)
        if result is None or isinstance(result, str):
            return result
        if result is not _FAILED and not isinstance(result, RenameInfo):
            log.error(
                "policy on_rename returned %s, not None, a str or the rename: it passes",
                type(result).__name__,
            )
        return info.new_name

    async def on_leave(self, info: LeaveInfo) -> None:
        await self._call("on_leave", info)

    async def on_room_open(self, info: RoomInfo) -> None:
        await self._call("on_room_open", info)

    async def on_room_close(self, info: RoomInfo) -> None:
        await self._call("on_room_close", info)

    # -- reloading and timers -----------------------------------------------------------------

    def reload(self, reason: str = "changed") -> bool:
        """Load the file again; on failure keep the policy in force (logged)."""
        try:
            fresh = load(self.path)
        except PolicyError as exc:
            log.error("policy not reloaded (%s): %s; the previous one stays", reason, exc)
            return False
        self.loaded = fresh
        log.info("policy %s reloaded (%s)", self.path, reason)
        self._restart_timers()
        return True

    def start(self, actions: Actions, *, watch_every: float = 1.0) -> None:
        self.actions = actions
        self._tasks.append(asyncio.get_running_loop().create_task(self._watch(watch_every)))
        self._restart_timers()

    def _restart_timers(self) -> None:
        for task in self._tasks[1:]:
            task.cancel()
        del self._tasks[1:]
        if self.actions is None:
            return
        loop = asyncio.get_running_loop()
        for timer in self.loaded.timers:
            self._tasks.append(loop.create_task(self._timer(timer)))

    async def _timer(self, timer: Timer) -> None:
        assert self.actions is not None
        if timer.at is not None:
            when = timer.at if timer.at.tzinfo else timer.at.astimezone()
            delay = (when - dt.datetime.now(dt.UTC)).total_seconds()
            if delay < 0:
                return
            await asyncio.sleep(delay)
            await self._run(f"timer {timer.name}", timer.fn, (self.actions,), TIMER_BUDGET)
            return
        assert timer.every is not None
        while True:
            await asyncio.sleep(timer.every)
            # A timer acts (ends meetings, says things, each a store write): a hook's
            # 50 ms would cut an action off halfway on a busy server.
            await self._run(f"timer {timer.name}", timer.fn, (self.actions,), TIMER_BUDGET)

    async def _watch(self, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            try:
                mtime = os.stat(self.path).st_mtime
            except OSError:
                continue
            if mtime != self.loaded.mtime:
                self.reload("the file changed")

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        self._pool.shutdown(wait=False, cancel_futures=True)
