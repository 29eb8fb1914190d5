"""The roster of a big room in pages: the welcome's first page, and ``roster`` requests.

A big room's ``welcome`` does not list everyone (that is N participants for each of N
joins): it carries the people a meeting shows first (hosts, raised hands, people
sharing a screen or on mic, at most ``FEATURED_MAX``) and the earliest
``WELCOME_EARLIEST`` to join, with the cursor of the next page.  Clients page the rest
in join order, optionally searching by name (``roster`` -> ``roster-page``).

Costs: a page request scans the room once (O(N log limit): a name filter and a bounded
heap), which the ``roster`` rate limit keeps affordable.  The welcome's first page is
computed the same way but cached per room and dropped only when something it shows may
have changed (a join while it is not full, a leave of someone on it, any update), so a
flood of joins costs O(page) per welcome, not O(N); its JSON is cached with it (encoded
on the first welcome after a change), so a welcome copies the page's bytes rather than
encoding 100 participants again.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass

import msgspec

from . import protocol as p
from .protocol import ErrorCode, ProtocolError
from .state import Room

#: Participants of a ``roster`` page when the request names no ``limit``.
PAGE_SIZE = 100
#: Participants of the join-order part of a big room's welcome: a panel's first screen.
#: The welcome is written to every newcomer (10,000 of them filling a room of 10,000),
#: and 100 people there made it ~16 KB; the client pages the rest ("Load more").
WELCOME_EARLIEST = 20
#: Largest page a ``roster`` request may ask for.
MAX_PAGE = 200
#: Longest name search (characters); longer is refused (``too_long``).
MAX_QUERY = 64
#: Longest cursor accepted ("<joined_at>.<id>").
MAX_CURSOR = 100
#: Hosts, raised hands and people sharing, on camera or on mic at the top of the first page.
FEATURED_MAX = 50

Key = tuple[int, str]

_json = msgspec.json.Encoder()


def key_of(info: p.Participant) -> Key:
    """Join order: when they joined, ties broken by id (a total, stable order)."""
    return (info.joined_at, info.id)


def cursor_of(info: p.Participant) -> str:
    return f"{info.joined_at}.{info.id}"


def parse_cursor(cursor: str, ref: str | None = None) -> Key:
    """A cursor from a ``roster-page`` (or the welcome), or ``bad_message``."""
    stamp, dot, pid = cursor.partition(".")
    if len(cursor) > MAX_CURSOR or not dot or not stamp.isdigit() or not pid:
        raise ProtocolError(ErrorCode.BAD_MESSAGE, "bad roster cursor: use a page's next", ref)
    return (int(stamp), pid)


def _rank(info: p.Participant) -> tuple[int, int]:
    """Who a meeting shows first: hosts, raised hands (in order), screens, cameras, mics."""
    if info.role == "host":
        return (0, 0)
    if info.hand:
        return (1, info.hand_at or 0)
    if info.screen:
        return (2, 0)
    if info.cam:
        return (3, 0)
    return (4, 0)


def _featured(info: p.Participant) -> bool:
    return info.role == "host" or info.hand or info.screen or info.cam or info.mic


def first_page(room: Room, size: int = WELCOME_EARLIEST) -> tuple[list[p.Participant], str | None]:
    """The featured people, then the earliest ``size`` to join; and the next cursor."""
    infos = [m.info for m in room.members.values()]
    featured = heapq.nsmallest(
        FEATURED_MAX, (i for i in infos if _featured(i)), key=lambda i: (_rank(i), key_of(i))
    )
    earliest = heapq.nsmallest(size + 1, infos, key=key_of)
    more = len(earliest) > size
    earliest = earliest[:size]
    shown = {i.id for i in featured}
    page = featured + [i for i in earliest if i.id not in shown]
    return page, cursor_of(earliest[-1]) if more else None


def page(room: Room, msg: p.Roster) -> p.RosterPage:
    """Answer a ``roster`` request (validated here: every refusal says what was wrong)."""
    limit = PAGE_SIZE if msg.limit is None else msg.limit
    if not 1 <= limit <= MAX_PAGE:
        raise ProtocolError(ErrorCode.BAD_MESSAGE, f"limit must be 1-{MAX_PAGE}", msg.ref)
    query = (msg.q or "").strip()
    if len(query) > MAX_QUERY:
        raise ProtocolError(
            ErrorCode.TOO_LONG, f"a name search is at most {MAX_QUERY} characters", msg.ref
        )
    after = parse_cursor(msg.after, msg.ref) if msg.after is not None else None
    needle = query.casefold()
    infos: Iterable[p.Participant] = (m.info for m in room.members.values())
    if after is not None:
        infos = (i for i in infos if key_of(i) > after)
    if needle:
        infos = (i for i in infos if needle in i.name.casefold())
    found = heapq.nsmallest(limit + 1, infos, key=key_of)
    more = len(found) > limit
    found = found[:limit]
    return p.RosterPage(
        participants=found,
        count=len(room.members),
        next=cursor_of(found[-1]) if more else None,
        q=query or None,
        ref=msg.ref,
    )


@dataclass(slots=True)
class _Page:
    people: list[p.Participant]
    cursor: str | None
    ids: set[str]
    #: The join-order part is full: a newcomer cannot be on it.
    full: bool
    #: ``people`` as a JSON array, made on first use (the page's people never change
    #: without the page being dropped: every change of a participant is ``changed``).
    raw: bytes | None = None


class FirstPages:
    """The welcome's first page of each big room, cached until it may have changed."""

    def __init__(self, size: int = WELCOME_EARLIEST) -> None:
        self.size = size
        self._cache: dict[str, _Page] = {}

    def _page(self, room: Room) -> _Page:
        cached = self._cache.get(room.name)
        if cached is None:
            people, cursor = first_page(room, self.size)
            cached = _Page(people, cursor, {i.id for i in people}, cursor is not None)
            self._cache[room.name] = cached
        return cached

    def get(self, room: Room) -> tuple[list[p.Participant], str | None]:
        cached = self._page(room)
        return cached.people, cached.cursor

    def encoded(self, room: Room, me: p.Participant | None) -> tuple[msgspec.Raw, str | None]:
        """The page as a welcome's ``participants`` JSON, with ``me`` first if not on it."""
        cached = self._page(room)
        raw = cached.raw
        if raw is None:
            raw = cached.raw = _json.encode(cached.people)
        if me is not None and me.id not in cached.ids:
            mine = _json.encode(me)
            rest = memoryview(raw)[1:] if len(raw) > 2 else b"]"
            raw = b"".join((b"[", mine, b"," if len(raw) > 2 else b"", rest))  # (one copy)
        return msgspec.Raw(raw), cached.cursor

    def joined(self, room_name: str) -> None:
        cached = self._cache.get(room_name)
        if cached is not None and not cached.full:
            del self._cache[room_name]  # the page had room for the newcomer

    def left(self, room_name: str, pid: str) -> None:
        cached = self._cache.get(room_name)
        if cached is not None and pid in cached.ids:
            del self._cache[room_name]

    def changed(self, room_name: str) -> None:
        """Anything else (a role, a hand, a device, another node's change)."""
        self._cache.pop(room_name, None)
