"""The admin REST API under ``/api/v1/admin/``, guarded by a bearer token.

::

    GET    /api/v1/admin/rooms                            rooms and their participants
    POST   /api/v1/admin/rooms/{room}/end                 end the meeting (everyone leaves)
    POST   /api/v1/admin/rooms/{room}/reset               end it and forget its settings
    PUT    /api/v1/admin/rooms/{room}/settings            managed settings (outlive meetings)
    DELETE /api/v1/admin/rooms/{room}/participants/{pid}  remove one participant
    POST   /api/v1/admin/drain                            drain this node

Every request needs ``Authorization: Bearer <token>`` (compared in constant
time); a missing or wrong one gets ``401`` with a JSON error.  With no token
configured the whole prefix answers ``404``: the API does not exist.
Errors have the shape of the rest of ``/api/v1``:
``{"error": {"code": "...", "message": "..."}}``.

The HTTP layer is here; the actions are the server's, through :class:`AdminTarget`.
"""

from __future__ import annotations

import hmac
import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Literal, Protocol

import msgspec
from aiohttp import web

__all__ = [
    "PREFIX",
    "AdminRoomSettings",
    "AdminTarget",
    "add_admin_routes",
    "admin_guard",
    "describe_rooms",
]

log = logging.getLogger(__name__)

PREFIX = "/api/v1/admin"
#: Room names and participant ids as the protocol allows them (checked before any lookup).
_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
#: Shorter tokens are accepted but logged as weak.
MIN_TOKEN_LENGTH = 16

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class AdminTarget(Protocol):
    """What the admin API asks of the server."""

    def admin_rooms(self) -> list[dict[str, Any]]:
        """Rooms with their participants, e.g. (see :func:`describe_rooms`)::

        [{"room": "team", "created_at": 1714557600000,
          "participants": [{"id": "p_…", "name": "Ada", "role": "host", "node": "n1"}],
          "lobby": [...]}]
        """
        ...

    async def admin_end(self, room: str) -> bool:
        """End the meeting in ``room`` (as a host's ``end`` would); False if no such room."""
        ...

    async def admin_reset(self, room: str) -> bool:
        """End any meeting in ``room`` and forget its stored settings; False if unknown."""
        ...

    async def admin_settings(self, room: str, settings: AdminRoomSettings) -> dict[str, Any]:
        """Set ``room``'s settings as *managed* (they outlive its meetings); the new
        settings as ``room-updated`` shows them.  Raises ValueError for a bad value."""
        ...

    async def admin_remove(self, room: str, pid: str) -> bool:
        """Remove participant ``pid`` from ``room`` (close 4001); False if not there."""
        ...

    async def admin_drain(self) -> None:
        """Stop accepting joins and ask this node's clients to reconnect elsewhere.

        Returns once draining has *started*; it may go on in the background.
        """
        ...


class AdminRoomSettings(msgspec.Struct, forbid_unknown_fields=True):
    """The body of ``PUT .../settings``: each field optional, as in ``room-settings``."""

    locked: bool | None = None
    lobby: bool | None = None
    #: "" clears the password.
    password: str | None = None
    max_participants: int | None = None
    #: Stage mode and who may chat (core/stage.py).
    stage: bool | Literal["auto"] | None = None
    chat: Literal["everyone", "stage", "questions"] | None = None


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=msgspec.json.encode(data), status=status, content_type="application/json"
    )


def _error(status: int, code: str, message: str) -> web.Response:
    return _json({"error": {"code": code, "message": message}}, status)


def describe_rooms(rooms: Iterable[Any], node: str | None = None) -> list[dict[str, Any]]:
    """``admin_rooms()`` from the core's rooms (``server.rooms.open_rooms()``).

    Reads ``room.name``, ``room.created_at``, ``room.members``/``room.lobby``
    (pid -> Member with ``.info.id/.name/.role/.joined_at``, ``.connected``,
    ``.node``).  A member's ``node`` of ``"local"`` is reported as ``node``.
    """

    def member(m: Any) -> dict[str, Any]:
        where = getattr(m, "node", None)
        if where == "local" and node is not None:
            where = node
        out: dict[str, Any] = {
            "id": m.info.id,
            "name": m.info.name,
            "role": m.info.role,
            "joined_at": m.info.joined_at,
            "connected": getattr(m, "connected", True),
        }
        if where is not None:
            out["node"] = where
        return out

    return [
        {
            "room": room.name,
            "created_at": room.created_at,
            "participants": [member(m) for m in room.members.values()],
            "lobby": [member(m) for m in getattr(room, "lobby", {}).values()],
        }
        for room in sorted(rooms, key=lambda r: r.name)
    ]


def admin_guard(token: str) -> Callable[[Handler], Handler]:
    """Wraps a handler so that it runs only for ``Authorization: Bearer <token>``
    (compared in constant time); anything else gets 401, logged."""
    expected = f"Bearer {token}".encode()

    def guarded(handler: Handler) -> Handler:
        async def check(request: web.Request) -> web.StreamResponse:
            got = request.headers.get("Authorization", "").encode("utf-8", "replace")
            if not hmac.compare_digest(got, expected):
                log.warning(
                    "admin: refused %s %s from %s",
                    request.method,
                    request.path,
                    request.remote,
                    extra={"admin": "refused", "remote": request.remote},
                )
                resp = _error(401, "unauthorized", "a valid admin bearer token is required")
                resp.headers["WWW-Authenticate"] = 'Bearer realm="parley-admin"'
                return resp
            return await handler(request)

        return check

    return guarded


def add_admin_routes(app: web.Application, server: AdminTarget, token: str | None) -> None:
    """Add the admin API to ``app`` (before it starts).  ``token`` None/empty: all 404."""
    if not token:

        async def absent(_request: web.Request) -> web.Response:
            return _error(404, "not_found", "the admin API is not enabled on this server")

        app.router.add_route("*", PREFIX + "{tail:(?:/.*)?}", absent)
        return

    if len(token) < MIN_TOKEN_LENGTH:
        log.warning("the admin token is short (%d characters): use a long random one", len(token))
    guarded = admin_guard(token)

    def names(request: web.Request, *keys: str) -> list[str] | web.Response:
        values = []
        for key in keys:
            value = request.match_info[key]
            if not _NAME.fullmatch(value):
                return _error(400, "bad_request", f"{key} is not a valid name")
            values.append(value)
        return values

    def audit(request: web.Request, action: str, **fields: Any) -> None:
        log.info(
            "admin: %s %s",
            action,
            " ".join(f"{k}={v}" for k, v in fields.items()),
            extra={"admin": action, "remote": request.remote, **fields},
        )

    async def list_rooms(_request: web.Request) -> web.Response:
        return _json({"rooms": server.admin_rooms()})

    async def end_room(request: web.Request) -> web.Response:
        parsed = names(request, "room")
        if isinstance(parsed, web.Response):
            return parsed
        (room,) = parsed
        audit(request, "end", room=room)
        if not await server.admin_end(room):
            return _error(404, "no_such_room", f"no meeting in room {room}")
        return _json({"ended": room})

    async def reset_room(request: web.Request) -> web.Response:
        parsed = names(request, "room")
        if isinstance(parsed, web.Response):
            return parsed
        (room,) = parsed
        audit(request, "reset", room=room)
        if not await server.admin_reset(room):
            return _error(404, "no_such_room", f"no room {room}")
        return _json({"reset": room})

    async def room_settings(request: web.Request) -> web.Response:
        parsed = names(request, "room")
        if isinstance(parsed, web.Response):
            return parsed
        (room,) = parsed
        body = await request.content.read(8192 + 1)
        if len(body) > 8192:
            return _error(413, "too_large", "the settings body is at most 8 KiB")
        try:
            settings = msgspec.json.decode(body, type=AdminRoomSettings)
        except msgspec.DecodeError as exc:
            return _error(400, "bad_request", f"bad settings: {exc}")
        audit(request, "settings", room=room)
        try:
            result = await server.admin_settings(room, settings)
        except ValueError as exc:
            return _error(400, "bad_request", str(exc))
        return _json({"room": room, "settings": result})

    async def remove_participant(request: web.Request) -> web.Response:
        parsed = names(request, "room", "pid")
        if isinstance(parsed, web.Response):
            return parsed
        room, pid = parsed
        audit(request, "remove", room=room, pid=pid)
        if not await server.admin_remove(room, pid):
            return _error(404, "no_such_participant", f"no participant {pid} in room {room}")
        return _json({"removed": pid, "room": room})

    async def drain(request: web.Request) -> web.Response:
        audit(request, "drain")
        await server.admin_drain()
        return _json({"draining": True}, status=202)

    router = app.router
    router.add_get(PREFIX + "/rooms", guarded(list_rooms))
    router.add_post(PREFIX + "/rooms/{room}/end", guarded(end_room))
    router.add_post(PREFIX + "/rooms/{room}/reset", guarded(reset_room))
    router.add_put(PREFIX + "/rooms/{room}/settings", guarded(room_settings))
    router.add_delete(PREFIX + "/rooms/{room}/participants/{pid}", guarded(remove_participant))
    router.add_post(PREFIX + "/drain", guarded(drain))

    # Anything else under the prefix: 401 without the token (no route discovery), else 404.
    async def unknown(_request: web.Request) -> web.Response:
        return _error(404, "not_found", "no such admin endpoint")

    router.add_route("*", PREFIX + "{tail:(?:/.*)?}", guarded(unknown))
