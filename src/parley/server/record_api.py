"""REST for the meeting record: export a room's history, search it.

``GET /api/v1/rooms/{room}/export?format=md|json|html``,
``GET /api/v1/rooms/{room}/messages/search?q=...`` and
``GET /api/v1/rooms/{room}/retention``: the same right to read as ``/messages``
(``reader``, docs/security.md "REST access"); a private message only for its two
participants.  The export is streamed a batch at a time.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol

import msgspec
from aiohttp import web

from ..core.protocol import ProtocolError
from ..core.search_query import query_words
from .export import CONTENT_TYPES, FORMATS, HTML_CSP, Exporter, filename

if TYPE_CHECKING:
    from ..store import Store

#: Search results per page: default and most.
SEARCH_PAGE = 20
SEARCH_PAGE_MAX = 50
#: Exports streaming at once in this process; one more is answered 429 (an export of a
#: big room reads the whole of it, so many at once would hold the store).
EXPORTS_AT_ONCE = 4


class Readable(Protocol):
    """A caller's right to read a room (``parley.server.api.Access``)."""

    @property
    def viewer(self) -> str | None:
        """The member reading (their private messages are included), if a member."""


ReaderFn = Callable[[web.Request, str], Awaitable["Readable | web.Response"]]


def _bad(code: str, message: str) -> web.Response:
    return web.Response(
        body=msgspec.json.encode({"error": {"code": code, "message": message}}),
        status=400,
        content_type="application/json",
    )


def _int(request: web.Request, name: str, default: int | None) -> int | None:
    raw = request.query.get(name, "")
    if raw == "":
        return default
    if not raw.isascii() or not raw.lstrip("-").isdigit() or len(raw) > 19:
        raise ValueError(f"{name} must be an integer")
    return int(raw)


def add_record_routes(
    app: web.Application,
    store: Store,
    room_name: Callable[[web.Request], str],
    reader: ReaderFn,
    default_retention_days: int = 0,
) -> None:
    """``default_retention_days``: the server's ``--history-retention-days`` (0: keep)."""
    running = 0

    async def export(request: web.Request) -> web.StreamResponse:
        nonlocal running
        if running >= EXPORTS_AT_ONCE:
            resp = web.Response(
                body=msgspec.json.encode(
                    {"error": {"code": "busy", "message": "too many exports at once; retry soon"}}
                ),
                status=429,
                content_type="application/json",
            )
            resp.headers["Retry-After"] = "5"
            return resp
        running += 1
        try:
            return await stream_export(request)
        finally:
            running -= 1

    async def stream_export(request: web.Request) -> web.StreamResponse:
        name = room_name(request)
        fmt = request.query.get("format", "md")
        if fmt not in FORMATS:
            return _bad("bad_request", f"format must be one of {', '.join(FORMATS)}")
        allowed = await reader(request, name)
        if isinstance(allowed, web.Response):
            return allowed
        out = Exporter(fmt, name)
        resp = web.StreamResponse(
            headers={
                "Content-Type": CONTENT_TYPES[fmt],
                "Content-Disposition": f'attachment; filename="{filename(name, fmt)}"',
                "X-Content-Type-Options": "nosniff",
                "Cache-Control": "no-store",
                "Content-Security-Policy": HTML_CSP,
            }
        )
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        await resp.write(out.header())
        async for batch in store.iter_records(name, allowed.viewer):
            # write() waits while the client is slow to read: memory stays one batch.
            await resp.write(out.entries(batch))
        await resp.write(out.footer())
        await resp.write_eof()
        return resp

    async def search(request: web.Request) -> web.Response:
        name = room_name(request)
        try:
            words = query_words(request.query.get("q", ""))
        except ProtocolError as exc:
            return _bad(exc.code, exc.message)
        try:
            limit = _int(request, "limit", SEARCH_PAGE)
            before = _int(request, "before", None)
        except ValueError as exc:
            return _bad("bad_request", str(exc))
        assert limit is not None
        if limit < 1:
            return _bad("bad_request", "limit must be at least 1")
        allowed = await reader(request, name)
        if isinstance(allowed, web.Response):
            return allowed
        found, more = await store.search(
            name, words, allowed.viewer, min(limit, SEARCH_PAGE_MAX), before
        )
        return web.Response(
            body=msgspec.json.encode({"messages": found, "more": more, "words": words}),
            content_type="application/json",
        )

    async def retention(request: web.Request) -> web.Response:
        """How long this room's history is kept: its own setting (``set-retention``;
        null: none) and the server's default, for the settings dialog to show."""
        name = room_name(request)
        allowed = await reader(request, name)
        if isinstance(allowed, web.Response):
            return allowed
        days = await store.retention_of(name)
        return web.Response(
            body=msgspec.json.encode({"days": days, "default_days": default_retention_days}),
            content_type="application/json",
            headers={"Cache-Control": "no-store"},
        )

    app.router.add_get("/api/v1/rooms/{room}/export", export)
    app.router.add_get("/api/v1/rooms/{room}/retention", retention)
    app.router.add_get("/api/v1/rooms/{room}/messages/search", search)
