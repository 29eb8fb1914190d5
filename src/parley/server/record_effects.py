"""The executor's part of the meeting record: attendance entries, deleting a message."""

from __future__ import annotations

import logging
from collections.abc import Callable

from ..core import protocol as p
from ..core.effects import DeleteChat, Deliver
from ..core.protocol import ErrorCode, ProtocolError
from ..core.record_rules import may_delete, visible_to
from .store_port import RecordStore

log = logging.getLogger(__name__)


async def record_attendance(
    store: RecordStore,
    room: str,
    kind: str,
    who: tuple[str, str],
    text: str,
    system: tuple[str, str],
    now_ms: int,
) -> None:
    """An attendance entry (``joined`` / ``left``) of ``who`` (id, name) in the room's
    record: exports and search show it, the chat's history pages do not (participants
    see joins live).  ``system``: the sender id and name of system entries."""
    data = {"id": who[0], "name": who[1]}
    try:
        await store.append_chat(
            room, system[0], system[1], text, None, now_ms, system=True, kind=kind, data=data
        )
    except Exception:
        log.exception("could not record attendance in %s", room)


def left_text(name: str, reason: str) -> str:
    return f"{name} left" if reason == "left" else f"{name} left ({reason})"


async def delete_chat(
    store: RecordStore, publish: Callable[[Deliver], None], e: DeleteChat
) -> None:
    """Delete the message if ``e.by`` may, then tell everyone who could see it.

    A message the requester cannot see is answered as one that does not exist, so
    deleting reveals nothing about private messages.  The frame goes through the
    broker: every node's clients get it.
    """
    try:
        record = await store.message(e.room, e.msg_id)
        if record is None or not visible_to(record, e.by):
            raise ProtocolError(ErrorCode.NO_SUCH_MESSAGE, "no such message here", e.ref)
        if not may_delete(record, e.by, e.host):
            raise ProtocolError(
                ErrorCode.FORBIDDEN, "only its author or a host may delete a message", e.ref
            )
        deleted = await store.delete_message(e.room, e.msg_id)
    except ProtocolError:
        raise
    except Exception:
        log.exception("could not delete message %d in %s", e.msg_id, e.room)
        raise ProtocolError(
            ErrorCode.UNAVAILABLE, "the message could not be deleted; try again", e.ref
        ) from None
    if not deleted:  # someone else deleted it meanwhile: they told everyone
        return
    out = p.MessageDeleted(id=e.msg_id, room=e.room, by=e.by)
    if record.to is None:
        publish(Deliver(e.room, out))
    else:
        to = (record.sender,) if record.to == record.sender else (record.sender, record.to)
        publish(Deliver(e.room, out, to=to))
