"""``GET /api/v1/events``: the event log, for receivers that catch up and for polling.

::

    GET /api/v1/events?after=N&limit=M      (Authorization: Bearer <admin token>)
    -> {"events": [{"id", "type", "room", "at", "data"}, ...], "next": <last id or N>}

Events with ``id > after`` (0 if absent), oldest first, at most ``limit`` (default 100,
at most ``MAX_LIMIT``).  The log may reveal every room's participants and, with
``chat.message`` on, what they wrote: it needs the admin token, and without one
configured it does not exist (404), like the rest of the admin API.
"""

from __future__ import annotations

from typing import Protocol

from aiohttp import web

from ..core.events import LoggedEvent
from .admin import _error, _json, admin_guard

PATH = "/api/v1/events"
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


class EventLog(Protocol):
    async def events_after(self, after: int, limit: int) -> list[LoggedEvent]: ...


def _int(request: web.Request, name: str, default: int, low: int, high: int) -> int | str:
    raw = request.query.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or len(raw) > 19 or not low <= int(raw) <= high:
        return f"{name} must be a whole number from {low} to {high}"
    return int(raw)


def add_event_routes(app: web.Application, log: EventLog, token: str | None) -> None:
    async def absent(_request: web.Request) -> web.Response:
        return _error(404, "not_found", "the event log API needs --admin-token")

    async def events(request: web.Request) -> web.Response:
        after = _int(request, "after", 0, 0, 2**63 - 1)
        limit = _int(request, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
        for value in (after, limit):
            if isinstance(value, str):
                return _error(400, "bad_request", value)
        assert isinstance(after, int) and isinstance(limit, int)
        found = await log.events_after(after, limit)
        return _json(
            {
                "events": [
                    {"id": e.id, "type": e.type, "room": e.room, "at": e.at, "data": e.data}
                    for e in found
                ],
                "next": found[-1].id if found else after,
            }
        )

    app.router.add_get(PATH, admin_guard(token)(events) if token else absent)
