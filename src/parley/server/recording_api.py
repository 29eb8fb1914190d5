"""REST for recordings (docs/recording.md)::

    POST /api/v1/rooms/{room}/recording      {"action": "start"|"stop"}  -> {"id": ...}
    GET  /api/v1/recordings?room=ROOM                                     -> {"recordings": [...]}
    GET  /api/v1/recordings/{id}/files/{name}                             -> the file

Starting and stopping need the admin token.  Listing and downloading need the admin
token or, for one room's recordings, the resume token of a current *host* of that room
(what the web client holds): nobody else can read a recording.  Errors have the shape
of the rest of ``/api/v1``: ``{"error": {"code": "...", "message": "..."}}``.

File names are checked against a strict pattern and must be files directly inside
the recording's directory (:meth:`parley.recording.storage.RecordingStore.file`):
``..``, ``/`` and symbolic links out of it get 404.
"""

from __future__ import annotations

import hmac
import logging
import re
import time
from typing import TYPE_CHECKING, Any, Protocol

import msgspec
from aiohttp import web

from ..core.names import check_room_name
from ..core.protocol import ErrorCode, ProtocolError
from ..recording.manifest import read_manifest
from .recording_peers import LOCAL_HEADER, RecordingPeers

if TYPE_CHECKING:
    from ..config import Settings
    from ..core.resume_tokens import ResumeTokens
    from ..core.rooms import Rooms
    from .recordings import Recordings

__all__ = ["RecordingHost", "add_recording_routes"]

log = logging.getLogger(__name__)

_CONTENT_TYPES = {".webm": "video/webm", ".mkv": "video/x-matroska", ".json": "application/json"}
_STATUS = {
    ErrorCode.ALREADY_RECORDING: 409,
    ErrorCode.NOT_RECORDING: 409,
    ErrorCode.RECORDING_UNAVAILABLE: 501,
    ErrorCode.FORBIDDEN: 403,
}


class RecordingHost(Protocol):
    """What these routes ask of the server (``parley.server.app.Server``)."""

    settings: Settings
    rooms: Rooms
    tokens: ResumeTokens
    recordings: Recordings | None
    #: The other nodes' recordings (a cluster), or None.
    recording_peers: RecordingPeers | None

    async def admin_record(self, room: str, action: str) -> dict[str, Any] | None: ...


def _error(status: int, code: str, message: str) -> web.Response:
    body = msgspec.json.encode({"error": {"code": code, "message": message}})
    resp = web.Response(body=body, status=status, content_type="application/json")
    if status == 401:
        resp.headers["WWW-Authenticate"] = 'Bearer realm="parley"'
    return resp


class _Action(msgspec.Struct, forbid_unknown_fields=True):
    action: str


#: What may be passed on to another node in a download's path (storage checks it again).
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


async def _from_peer(
    request: web.Request, peers: RecordingPeers, path: str, auth: str
) -> web.StreamResponse:
    """Stream a recording file another node has (it checks the token itself)."""
    async with peers.download(path, auth) as r:
        if r is None:
            return _error(404, "not_found", "no such recording file")
        resp = web.StreamResponse(headers={"Content-Type": r.headers.get("Content-Type", "")})
        if r.content_length is not None:
            resp.content_length = r.content_length
        await resp.prepare(request)
        async for chunk in r.content.iter_chunked(1 << 16):
            await resp.write(chunk)
        await resp.write_eof()
        return resp


def add_recording_routes(app: web.Application, server: RecordingHost) -> None:
    """Add the recording routes (before ``/api``'s catch-all)."""
    limits = server.settings.limits

    def bearer(request: web.Request) -> str | None:
        raw = request.headers.get("Authorization", "")
        if not raw.startswith("Bearer ") or not raw.isascii():
            return None
        return raw[len("Bearer ") :].strip() or None

    def is_admin(token: str | None) -> bool:
        admin = server.settings.admin_token
        return bool(token and admin and hmac.compare_digest(token.encode(), admin.encode()))

    def host_of(token: str | None) -> str | None:
        """The room whose current host holds this resume token, or None."""
        if token is None:
            return None
        claims = server.tokens.verify(token, time.time())
        if claims is None:
            return None
        member = server.rooms.find(claims.pid)
        if member is None or member.room != claims.room or member.info.role != "host":
            return None
        return claims.room

    def refused(token: str | None) -> web.Response:
        if token is None:
            return _error(401, "unauthorized", "a bearer token is required")
        return _error(401, "unauthorized", "that token may not do this")

    async def record(request: web.Request) -> web.Response:
        token = bearer(request)
        if not is_admin(token):
            return refused(token)
        try:
            room = check_room_name(request.match_info["room"], limits)
            action = msgspec.json.decode(await request.read(), type=_Action).action
        except ProtocolError as exc:
            return _error(400, exc.code, exc.message)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            return _error(400, "bad_request", f'expected {{"action": "start"|"stop"}}: {exc}')
        if action not in ("start", "stop"):
            return _error(400, "bad_request", 'action is "start" or "stop"')
        try:
            result = await server.admin_record(room, action)
        except ProtocolError as exc:
            return _error(_STATUS.get(exc.code, 400), exc.code, exc.message)
        if result is None:
            return _error(404, "not_found", f"no meeting in room {room!r} now")
        log.info("admin: recording %s room=%s id=%s", action, room, result.get("id"))
        return web.json_response(result)

    async def listing(request: web.Request) -> web.Response:
        token = bearer(request)
        room = request.query.get("room")
        if room is not None:
            try:
                room = check_room_name(room, limits)
            except ProtocolError as exc:
                return _error(400, exc.code, exc.message)
        if not is_admin(token) and (room is None or host_of(token) != room):
            return refused(token)
        recordings = server.recordings
        found = [] if recordings is None else recordings.store.list(room)
        peers = server.recording_peers
        if peers is not None and token is not None and LOCAL_HEADER not in request.headers:
            # The others' disks too (one shared --recordings-dir: the same ids, once).
            seen = {entry["id"] for entry in found}
            for entry in await peers.listings(request.query_string, "Bearer " + token):
                if entry.get("id") not in seen:
                    seen.add(entry.get("id"))
                    found.append(entry)
            found.sort(key=lambda entry: str(entry.get("id")), reverse=True)  # newest first
        return web.json_response({"recordings": found})

    async def download(request: web.Request) -> web.StreamResponse:
        token = bearer(request)
        admin = is_admin(token)
        host_room = None if admin else host_of(token)
        if not admin and host_room is None:
            return refused(token)
        recordings = server.recordings
        rec_id, name = request.match_info["id"], request.match_info["name"]
        path = None if recordings is None else recordings.store.file(rec_id, name)
        peers = server.recording_peers
        if path is None and peers is not None and token is not None:
            if (
                LOCAL_HEADER not in request.headers
                and _NAME.fullmatch(rec_id)
                and _NAME.fullmatch(name)
            ):
                where = f"/api/v1/recordings/{rec_id}/files/{name}"
                return await _from_peer(request, peers, where, "Bearer " + token)
        if path is None or recordings is None:
            return _error(404, "not_found", "no such recording file")
        if not admin:
            doc = read_manifest(path.parent) or {}
            if doc.get("room") != host_room:
                return _error(404, "not_found", "no such recording file")
        resp = web.FileResponse(path)
        resp.content_type = _CONTENT_TYPES.get(path.suffix, "application/octet-stream")
        return resp

    app.router.add_post("/api/v1/rooms/{room}/recording", record)
    app.router.add_get("/api/v1/recordings", listing)
    app.router.add_get("/api/v1/recordings/{id}/files/{name}", download)
