"""The narrow port through which the executor writes to the store.

The executor needs seven of the store's methods; typing it against this ``Protocol``
(which every ``parley.store.Store`` satisfies) keeps it from reaching for more, and
lets a test hand it anything that writes those.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from ..core import protocol as p
from ..core.events import MeetingEvent
from ..store import RoomRecord


class RecordStore(Protocol):
    """What the executor writes to the store (a ``parley.store.Store`` is one): chat and
    system lines, room settings, the event log, deletions and retention."""

    chat_events: bool

    async def append_chat(
        self,
        room: str,
        sender: str,
        name: str,
        text: str,
        to: str | None,
        ts: int,
        system: bool = False,
        kind: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> p.ChatRecord: ...

    async def save_room_settings(self, room: str, settings: RoomRecord) -> None: ...

    async def room_emptied(
        self, room: str, keep: RoomRecord | None, logged: Sequence[MeetingEvent] = ()
    ) -> None: ...

    async def log_events(self, logged: Sequence[MeetingEvent]) -> None: ...

    async def message(self, room: str, msg_id: int) -> p.ChatRecord | None: ...

    async def delete_message(self, room: str, msg_id: int) -> bool: ...

    async def set_retention(self, room: str, days: int | None) -> None: ...
