"""REST under /api/v1 and the health check.  Errors are JSON with a stable code.

Who may read what (docs/security.md, "What the REST API reveals"): a room
anyone may join (no password, lobby or lock, and no ``--require-token``) is
open to read, as joining it would show the same.  A *protected* room's history
and participants need the right to be in it: ``Authorization: Bearer`` with the
resume token of a current member, a join token (JWT) valid for the room, or the
admin token.  Without one, its room info says only what the pre-join page needs.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import msgspec
from aiohttp import web

from ..auth import TokenError
from ..core import protocol as p
from ..core.names import check_room_name
from ..core.protocol import ProtocolError
from ..core.state import RoomConfig
from .record_api import add_record_routes

if TYPE_CHECKING:
    from ..auth import JoinTokenVerifier
    from ..config import Settings
    from ..core.resume_tokens import ResumeTokens
    from ..core.rooms import Rooms
    from ..store import Store


class RoomDirectory(Protocol):
    """Everyone in a room across the cluster (``parley.cluster.Replicator``)."""

    async def members_of(self, room_name: str) -> list[p.Participant]: ...

    async def recording_of(self, room_name: str) -> bool: ...


class ApiHost(Protocol):
    """What the REST API reads from the server (``parley.server.app.Server``)."""

    settings: Settings
    rooms: Rooms
    store: Store
    tokens: ResumeTokens
    join_tokens: JoinTokenVerifier | None
    join_tokens_required: bool

    @property
    def replicator(self) -> RoomDirectory | None: ...

    @property
    def media_mode(self) -> str: ...

    def health(self) -> dict[str, Any]: ...


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


@dataclass(frozen=True, slots=True)
class Access:
    """What a REST caller may see of one room."""

    full: bool
    #: The member reading (their private messages are included), if a member.
    viewer: str | None = None


def _bearer(request: web.Request) -> str | None:
    raw = request.headers.get("Authorization", "")
    if not raw.startswith("Bearer ") or not raw.isascii():
        return None
    return raw[len("Bearer ") :].strip() or None


def _unauthorized(message: str) -> web.Response:
    resp = _error(401, "unauthorized", message)
    resp.headers["WWW-Authenticate"] = 'Bearer realm="parley"'
    return resp


def add_routes(app: web.Application, server: ApiHost) -> None:
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

    async def settings_of(name: str) -> tuple[int, RoomConfig] | None:
        """Creation time and settings of a room that exists (None: it never did)."""
        room = server.rooms.room(name)
        if room is not None:
            return room.created_at, room.config
        record = await server.store.load_room(name)
        if record is None:
            return None
        return record.created_at, record.config()

    def protected(config: RoomConfig) -> bool:
        return bool(
            server.join_tokens_required
            or config.password_hash is not None
            or config.lobby
            or config.locked
        )

    async def access(request: web.Request, name: str, config: RoomConfig) -> Access | None:
        """The caller's right to read this room; None: a credential was given but is no good."""
        token = _bearer(request)
        if token is None:
            return Access(full=not protected(config))
        admin = server.settings.admin_token
        if admin and hmac.compare_digest(token.encode(), admin.encode()):
            return Access(full=True)
        claims = server.tokens.verify(token, time.time())
        if claims is not None:
            if claims.room == name and await is_member(claims.pid, name):
                return Access(full=True, viewer=claims.pid)
            return None
        if server.join_tokens is not None:
            try:
                server.join_tokens.verify(token, name)
            except TokenError:
                return None
            return Access(full=True)
        return None

    async def is_member(pid: str, name: str) -> bool:
        """``pid`` is in the room now (not waiting in its lobby), on any node."""
        if server.rooms.is_known(pid, name):
            return True
        if server.replicator is None:
            return False
        try:
            return any(x.id == pid for x in await server.replicator.members_of(name))
        except Exception:
            return False

    async def room_info(request: web.Request) -> web.Response:
        name = room_name(request)
        found = await settings_of(name)
        if found is None:
            return _error(404, "not_found", f"no room {name!r}")
        created, config = found
        allowed = await access(request, name, config)
        if allowed is None:
            return _unauthorized("that credential does not admit you to this room")
        room = server.rooms.room(name)
        participants = room.participants() if room else []
        if server.replicator is not None:
            # This node may serve nobody there: the cluster's record is the whole room.
            try:
                participants = await server.replicator.members_of(name)
            except Exception:
                log.warning("room %s: cluster record unavailable; local view only", name)
        info: dict[str, Any] = {
            "name": name,
            "participant_count": len(participants),
            "media": server.media_mode,
            # What the pre-join page needs to say before anyone tries to join.
            "protected": protected(config),
            "password": config.password_hash is not None,
            "lobby": config.lobby,
            "locked": config.locked,
            "token_required": server.join_tokens_required,
            # people must know before they join that they would be recorded
            "recording": room is not None and room.recording is not None,
        }
        if server.replicator is not None and room is None:
            with contextlib.suppress(Exception):  # a node serving nobody there: the record
                info["recording"] = await server.replicator.recording_of(name)
        if allowed.full:
            info["created_at"] = created
            info["participants"] = [{"id": x.id, "name": x.name} for x in participants]
        return _json(info)

    async def messages(request: web.Request) -> web.Response:
        name = room_name(request)
        before = _int_param(request, "before")
        limit = _int_param(request, "limit")
        limit = limits.history_page if limit is None else limit
        if limit < 1:
            return _error(400, "bad_request", "limit must be at least 1")
        limit = min(limit, limits.history_page_max)
        allowed = await reader(request, name)
        if not isinstance(allowed, Access):
            return allowed
        page, more = await server.store.history(name, before, limit, allowed.viewer)
        return _json({"messages": page, "more": more})

    async def reader(request: web.Request, name: str) -> Access | web.Response:
        """The right to read a room's history (messages, export, search), or the refusal."""
        found = await settings_of(name)
        if found is None:
            return _error(404, "not_found", f"no room {name!r}")
        allowed = await access(request, name, found[1])
        if allowed is None:
            return _unauthorized("that credential does not admit you to this room")
        if not allowed.full:
            return _unauthorized(
                "this room is protected: its history needs a member's resume token, "
                "a join token for the room, or the admin token"
            )
        return allowed

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/api/v1/rooms/{room}", room_info)
    app.router.add_get("/api/v1/rooms/{room}/messages", messages)
    add_record_routes(app, server.store, room_name, reader, server.settings.history_retention_days)

    async def not_found(_request: web.Request) -> web.Response:
        return _error(404, "not_found", "no such API route")

    app.router.add_route("*", "/api/{tail:.*}", not_found)
