"""The store interface: what the server needs from persistent storage."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ..core.events import LoggedEvent, MeetingEvent
from ..core.protocol import ChatRecord
from ..core.state import RoomConfig


@dataclass(frozen=True, slots=True)
class MeetingState:
    """Who is in a room's running meeting (participant id -> role), who is barred."""

    members: dict[str, str]
    banned: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RoomRecord:
    """A room's stored row: creation time and the settings its hosts chose."""

    created_at: int
    locked: bool = False
    lobby: bool = False
    password_hash: str | None = None
    max_participants: int | None = None
    #: Set by a token-holding host or the operator: outlives the meeting.
    managed: bool = False
    #: The running meeting (None: no meeting was running when last stored).
    meeting: MeetingState | None = None
    #: Stage mode (None: by the room's size) and who may chat (core/stage.py).
    stage: bool | None = None
    chat: str = "everyone"

    def config(self) -> RoomConfig:
        """The settings as the core holds them."""
        return RoomConfig(
            locked=self.locked,
            lobby=self.lobby,
            password_hash=self.password_hash,
            max_participants=self.max_participants,
            managed=self.managed,
            stage=self.stage,
            chat=self.chat,
        )


class Store(Protocol):
    """Chat history and room records.

    ``append_chat`` returns only once the message is durably committed
    (a process crash after it returns loses nothing); implementations batch
    concurrent appends into one transaction (group commit).
    """

    async def start(self) -> None:
        """Connect and apply migrations."""

    async def close(self) -> None:
        """Commit anything pending and disconnect."""

    async def ensure_room(self, room: str, now_ms: int) -> int:
        """Record the room if new; return its creation time (ms since the epoch)."""

    async def room_created_at(self, room: str) -> int | None:
        """Creation time of a known room, or None if it never existed."""

    async def load_room(self, room: str) -> RoomRecord | None:
        """The stored room, or None if it never existed."""

    async def save_room_settings(self, room: str, settings: RoomRecord) -> None:
        """Persist a room's settings (its creation time and meeting are left as they are)."""

    async def save_meetings(
        self, meetings: dict[str, MeetingState | None], logged: Sequence[MeetingEvent] = ()
    ) -> None:
        """Persist the running meetings of several rooms, and log ``logged``, in one
        transaction."""

    async def room_emptied(
        self, room: str, keep: RoomRecord | None, logged: Sequence[MeetingEvent] = ()
    ) -> None:
        """The meeting ended: forget its state; keep only ``keep``'s settings.

        With ``keep`` None the settings go back to the defaults, and a room with no
        history at all is deleted (it left nothing worth a row).  ``logged`` is logged
        in the same transaction.
        """

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
    ) -> ChatRecord:
        """Store one chat message (or a system entry of ``kind``); return it with its id."""

    async def history(
        self,
        room: str,
        before: int | None,
        limit: int,
        viewer: str | None,
        questions: bool = False,
    ) -> tuple[list[ChatRecord], bool]:
        """One page of history, oldest first, and whether older messages exist.

        Only messages with ``id < before`` (all, if None), newest ``limit`` of them.
        Public messages always; private ones only if ``viewer`` sent or received them;
        with ``questions`` (a viewer on stage) the audience's questions too.
        """

    # The event log (webhooks, GET /api/v1/events); chat.message events are logged by
    # append_chat in the chat commit while ``chat_events`` is set.
    chat_events: bool

    async def log_events(self, logged: Sequence[MeetingEvent]) -> None:
        """Log events whose cause is not a store write (a recording's files), committed
        on their own."""

    async def events_after(self, after: int, limit: int) -> list[LoggedEvent]:
        """Up to ``limit`` logged events with ``id > after``, oldest first."""

    async def last_event_id(self) -> int:
        """The newest event's id, 0 if none."""

    async def delete_events_before(self, at_ms: int) -> int:
        """Retention: delete events older than ``at_ms``; how many went."""

    async def claim_receiver(
        self, target: str, holder: str, now_ms: int, lease_ms: int
    ) -> int | None:
        """Take or renew the lease on a webhook receiver: its cursor, or None if
        another node holds it."""

    async def advance_receiver(self, target: str, holder: str, last: int) -> bool:
        """The receiver acknowledged up to ``last``; False if the lease was lost."""

    async def release_receiver(self, target: str, holder: str) -> None:
        """Give the lease up (shutdown), so another node takes over at once."""

    # -- the meeting record (parley.store.record) ------------------------------

    def iter_records(
        self, room: str, viewer: str | None, batch: int = 500
    ) -> AsyncIterator[list[ChatRecord]]:
        """The room's whole record as ``viewer`` may read it, oldest first, in batches."""
        ...

    async def search(
        self,
        room: str,
        words: tuple[str, ...],
        viewer: str | None,
        limit: int,
        before: int | None = None,
    ) -> tuple[list[ChatRecord], bool]:
        """Messages containing all ``words``, newest first, and whether more match."""

    async def message(self, room: str, msg_id: int) -> ChatRecord | None:
        """One stored message of ``room``."""

    async def delete_message(self, room: str, msg_id: int) -> bool:
        """Delete one message from history and the search index."""

    async def set_retention(self, room: str, days: int | None) -> None:
        """A room's own history retention (None: the server's default)."""

    async def retention_of(self, room: str) -> int | None:
        """A room's own history retention, if set."""

    async def purge_expired(self, default_days: int | None, now_ms: int, batch: int = 1000) -> int:
        """Delete messages older than their room's retention; return how many."""
