"""REST under /api/v1 and the health check.  Errors are JSON with a stable code."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import msgspec
from aiohttp import web

from ..protocol import ProtocolError
from ..rooms import check_room_name

if TYPE_CHECKING:
    from .app import Server

log = logging.getLogger(__name__)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=msgspec.json.encode(data), status=status, content_type="application/json"
    )


def _error(status: int, code: str, message: str) -> web.Response:
    return _json({"error": {"code": code, "message": message}}, status)


def _int_param(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
        if not -(2**63) <= value < 2**63:
            raise ValueError(raw)
        return value
    except ValueError:
        raise web.HTTPBadRequest(
            body=msgspec.json.encode(
                {"error": {"code": "bad_request", "message": f"{name} must be an integer"}}
            ),
            content_type="application/json",
        ) from None


def add_routes(app: web.Application, server: Server) -> None:
    limits = server.settings.limits

    def room_name(request: web.Request) -> str:
        try:
            return check_room_name(request.match_info["room"], limits)
        except ProtocolError as exc:
            raise web.HTTPBadRequest(
                body=msgspec.json.encode({"error": {"code": exc.code, "message": exc.message}}),
                content_type="application/json",
            ) from None

    async def healthz(_request: web.Request) -> web.Response:
        return _json(server.health())

    async def room_info(request: web.Request) -> web.Response:
        name = room_name(request)
        room = server.rooms.rooms.get(name)
        created = room.created_at if room else await server.store.room_created_at(name)
        if created is None:
            return _error(404, "not_found", f"no room {name!r}")
        participants = room.participants() if room else []
        if server.replicator is not None:
            # This node may serve nobody there: the cluster's record is the whole room.
            try:
                participants = await server.replicator.members_of(name)
            except Exception:
                log.warning("room %s: cluster record unavailable; local view only", name)
        return _json(
            {
                "name": name,
                "created_at": created,
                "participant_count": len(participants),
                "participants": [{"id": x.id, "name": x.name} for x in participants],
                "media": "sfu" if server.media is not None else "mesh",
            }
        )

    async def messages(request: web.Request) -> web.Response:
        name = room_name(request)
        before = _int_param(request, "before")
        limit = _int_param(request, "limit")
        limit = limits.history_page if limit is None else limit
        if limit < 1:
            return _error(400, "bad_request", "limit must be at least 1")
        limit = min(limit, limits.history_page_max)
        if await server.store.room_created_at(name) is None:
            return _error(404, "not_found", f"no room {name!r}")
        page, more = await server.store.history(name, before, limit, None)
        return _json({"messages": page, "more": more})

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/api/v1/rooms/{room}", room_info)
    app.router.add_get("/api/v1/rooms/{room}/messages", messages)

    async def not_found(_request: web.Request) -> web.Response:
        return _error(404, "not_found", "no such API route")

    app.router.add_route("*", "/api/{tail:.*}", not_found)
