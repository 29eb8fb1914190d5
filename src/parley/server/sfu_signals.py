"""Where a ``signal`` to ``"sfu"`` goes: this node's SFU, or the room's media owner's."""

from __future__ import annotations

from typing import Protocol

import msgspec

from ..core import protocol as p
from ..core.effects import Deliver
from ..core.protocol import ProtocolError
from ..core.rooms import Rooms
from .executor import Executor
from .media import SFU_ID, MediaRooms


def _is_status_question(payload: bytes) -> bool:
    try:
        decoded = msgspec.json.decode(payload)
    except msgspec.DecodeError:
        return False
    return isinstance(decoded, dict) and decoded.get("sfu") == "status"


class MediaOwners(Protocol):
    """What routing needs from the cluster (see ``parley.cluster.Replicator``)."""

    async def media_owner(self, room: str, *, claim: bool = True) -> str | None: ...

    def sfu_signal(
        self, room: str, owner: str, pid: str, role: str, payload: bytes, ref: str | None
    ) -> None: ...


class SfuSignals:
    def __init__(
        self,
        media: MediaRooms,
        rooms: Rooms,
        executor: Executor,
        node: str,
        owners: MediaOwners | None,
    ) -> None:
        self.media = media
        self.rooms = rooms
        self.executor = executor
        self.node = node
        self.owners = owners

    async def signal(self, pid: str, room: str, role: str, msg: p.Signal) -> None:
        """A local participant's ``signal`` to ``"sfu"``."""
        if self.owners is not None:
            # A status question (after a reconnect) must not make this node the owner.
            claim = not _is_status_question(msg.payload)
            owner = await self.owners.media_owner(room, claim=claim)
            if owner is not None and owner != self.node:
                self.owners.sfu_signal(room, owner, pid, role, bytes(msg.payload), msg.ref)
                return
        await self.media.signal(pid, room, role, msg)

    async def remote_signal(
        self, room: str, pid: str, role: str, payload: bytes, ref: str | None
    ) -> None:
        """Another node's participant signals our SFU; a refusal goes back to them."""
        member = self.rooms.find(pid)
        if member is None or member.room != room:
            return
        msg = p.Signal(to=SFU_ID, payload=msgspec.Raw(payload), ref=ref)
        try:
            await self.media.signal(pid, room, role, msg)
        except ProtocolError as exc:
            error = p.Error(code=exc.code, message=exc.message, ref=exc.ref)
            self.executor.publish(Deliver(room, error, to=(pid,)))
