"""Rules of the meeting record: who deletes a message, who sets a room's retention."""

from __future__ import annotations

from typing import Final, Protocol

from . import protocol as p
from .effects import DeleteChat, Effect, Note, SaveRetention
from .protocol import ErrorCode, ProtocolError
from .state import Member


class Rooms(Protocol):
    """What these rules read of ``parley.core.rooms.Rooms``."""

    def member(self, pid: str, ref: str | None = None) -> Member: ...

    def require_host(self, pid: str, ref: str | None = None) -> Member: ...


#: Longest retention a room may ask for (100 years: "keep it").
MAX_RETENTION_DAYS: Final = 36_500


def may_delete(record: p.ChatRecord, pid: str, host: bool) -> bool:
    """Its author may delete a message; a host any public one (a private message is
    only its two participants' business, and the host cannot see it anyway)."""
    if record.sender == pid and not record.system:
        return True
    return host and record.to is None


def visible_to(record: p.ChatRecord, pid: str) -> bool:
    return record.to is None or pid in (record.sender, record.to)


def delete_message(rooms: Rooms, pid: str, msg: p.DeleteMessage) -> list[Effect]:
    member = rooms.member(pid, msg.ref)
    if msg.id <= 0:
        raise ProtocolError(ErrorCode.BAD_MESSAGE, "id must be a message id", msg.ref)
    return [DeleteChat(member.room, msg.id, pid, member.info.role == "host", msg.ref)]


def set_retention(rooms: Rooms, pid: str, msg: p.SetRetention) -> list[Effect]:
    host = rooms.require_host(pid, msg.ref)
    days = msg.days
    if days is not None and not 1 <= days <= MAX_RETENTION_DAYS:
        raise ProtocolError(
            ErrorCode.BAD_MESSAGE,
            f"days must be 1 to {MAX_RETENTION_DAYS}, or null for the server's default",
            msg.ref,
        )
    if days is None:
        text = f"{host.info.name} set the chat history to the server's retention"
    else:
        unit = "day" if days == 1 else "days"
        text = f"{host.info.name} set the chat history to be kept {days} {unit}"
    return [SaveRetention(host.room, days), Note(host.room, text)]
