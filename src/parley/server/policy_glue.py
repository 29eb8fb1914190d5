"""The policy hooks wired to a server: what they are told, and what they may do."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from ..auth import hash_password
from ..core import protocol as p
from ..core.effects import Effect, Left, Note, RoomEmptied, RoomOpened
from ..core.protocol import ProtocolError
from ..core.rooms import Rooms
from ..policy.api import LeaveInfo, RoomInfo
from ..policy.runner import Policy
from .executor import Executor

log = logging.getLogger(__name__)

Spawn = Callable[[Coroutine[Any, Any, Any]], None]


class PolicyActions:
    """What a policy's timers (and hooks that ask for it) can do in the meeting.

    An action changes the meeting's state at once (the core decides when called: a
    hook's next ``participants()`` sees it) and returns; carrying its effects out
    (store writes, frames) is queued and done in order by one task.  So a hook's
    budget measures the hook, not the store, and a hook cut off at its budget never
    leaves an action half carried out.
    """

    def __init__(self, rooms: Rooms, executor: Executor, node: str) -> None:
        self.core = rooms
        self.executor = executor
        self.node = node
        self._queue: asyncio.Queue[Callable[[], Coroutine[Any, Any, None]]] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None

    def _later(self, job: Callable[[], Coroutine[Any, Any, None]]) -> None:
        if self._worker is None or self._worker.done():
            self._worker = asyncio.get_running_loop().create_task(self._work())
        self._queue.put_nowait(job)

    async def _work(self) -> None:
        while True:
            job = await self._queue.get()
            try:
                await job()
            except Exception:
                log.exception("policy: an action failed")
            finally:
                self._queue.task_done()

    async def close(self) -> None:
        """Carry out what is queued (bounded), then stop."""
        if self._worker is None:
            return
        try:
            await asyncio.wait_for(self._queue.join(), 5)
        except TimeoutError:
            log.warning("policy: %d actions not carried out at shutdown", self._queue.qsize())
        self._worker.cancel()

    def rooms(self) -> list[RoomInfo]:
        """The open rooms this node acts for.  In a cluster every node mirrors the rooms
        it serves; each room's timers act on one node only: the lowest id among the nodes
        of its participants (the same answer everywhere, from the replicated state)."""
        return [
            RoomInfo(r.name, r.opened_at)
            for r in self.core.open_rooms()
            if r.members and min(m.node for m in r.members.values()) == self.node
        ]

    def participants(self, room: str) -> list[tuple[str, str, str]]:
        opened = self.core.room(room)
        if opened is None:
            return []
        return [(m.info.id, m.info.name, m.info.role) for m in opened.members.values()]

    async def _apply(self, effects: list[Effect] | None, what: str) -> None:
        if effects is None:
            log.warning("policy: %s: no such room or participant", what)
            return
        self._later(lambda: self.executor.apply(effects))

    async def say(self, room: str, text: str) -> None:
        if self.core.is_open(room):
            await self._apply([Note(room, text)], f"say in {room}")

    async def mute(self, room: str, pid: str, kind: str = "mic") -> None:
        await self._apply(self.core.admin_mute(room, pid, kind), f"mute {pid} in {room}")

    async def remove(self, room: str, pid: str) -> None:
        await self._apply(self.core.admin_remove(room, pid), f"remove {pid} from {room}")

    async def to_lobby(self, room: str, pid: str) -> None:
        await self._apply(self.core.admin_to_lobby(room, pid), f"send {pid} of {room} to the lobby")

    async def end(self, room: str) -> None:
        await self._apply(self.core.admin_end(room), f"end {room}")

    async def record(self, room: str, action: str = "start") -> None:
        try:
            effects = self.core.admin_record(room, action)
        except ProtocolError as exc:
            log.error("policy: recording %s of %s refused: %s", action, room, exc.message)
            return
        await self._apply(effects, f"record {action} in {room}")

    async def settings(self, room: str, **settings: Any) -> None:
        msg = p.RoomSettingsUpdate(
            locked=settings.get("locked"),
            lobby=settings.get("lobby"),
            password=settings.get("password"),
            max_participants=settings.get("max_participants"),
        )
        try:
            self.core.check_settings(msg)
        except ProtocolError as exc:
            log.error("policy: settings of %s refused: %s", room, exc.message)
            return
        if not msg.password:
            await self._apply(self.core.admin_settings(room, msg, None), f"settings of {room}")
            return

        async def with_password() -> None:
            # Hashing takes a while (Argon2): queued, so that it is not the hook's time.
            hashed = await asyncio.to_thread(hash_password, msg.password or "")
            effects = self.core.admin_settings(room, msg, hashed)
            if effects is None:
                log.warning("policy: settings of %s: no such room", room)
                return
            await self.executor.apply(effects)

        self._later(with_password)


class PolicyObserver:
    """Hands the meeting's events to the policy's hooks, without holding anything up."""

    def __init__(self, policy: Policy, spawn: Spawn) -> None:
        self.policy = policy
        self.spawn = spawn

    def observe(self, event: RoomOpened | Left | RoomEmptied) -> None:
        policy = self.policy
        match event:
            case RoomOpened(room=room, opened_at=opened_at) if policy.has("on_room_open"):
                self.spawn(policy.on_room_open(RoomInfo(room, opened_at)))
            case Left(room=room, pid=pid, name=name, reason=reason) if policy.has("on_leave"):
                self.spawn(policy.on_leave(LeaveInfo(room, pid, name, reason)))
            case RoomEmptied(room=room) if policy.has("on_room_close"):
                self.spawn(policy.on_room_close(RoomInfo(room)))
