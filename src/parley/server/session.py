"""One WebSocket client from open to close: the classic broadcast server's hooks.

``open`` attaches the socket, ``message`` decodes, checks and applies one
request through the sans-I/O core, ``close`` detaches (holding the identity
for a resume), and an error in one client's handling answers that client
only.  Everything a request changes goes out through the broker.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import TYPE_CHECKING

from aiohttp import WSMsgType, web

from .. import protocol as p
from ..protocol import CloseCode, ErrorCode, ProtocolError
from ..ratelimit import TokenBucket
from ..rooms import Deliver
from .hub import Connection

if TYPE_CHECKING:
    from .app import Server

log = logging.getLogger(__name__)

#: Window over which refused messages are counted for ``Limits.max_errors``.
ERROR_WINDOW = 10.0


class Session:
    """Drives one connection through the protocol."""

    def __init__(self, server: Server, ws: web.WebSocketResponse, conn: Connection) -> None:
        self.server = server
        self.ws = ws
        self.conn = conn
        self.pid: str | None = None
        self.left = False
        self.replaced = False
        limits = server.settings.limits
        now = time.monotonic()
        self.buckets: dict[type, TokenBucket] | None = None
        if limits.rate_limits:
            other = TokenBucket(limits.other_rate, now)
            self.buckets = {
                p.Chat: TokenBucket(limits.chat_rate, now),
                p.Signal: TokenBucket(limits.signal_rate, now),
                p.Reaction: TokenBucket(limits.reaction_rate, now),
                p.Media: other,
                p.Hand: other,
                p.Rename: other,
                p.History: other,
                p.Ping: other,
            }
        self.errors: deque[float] = deque()

    # -- the loop ----------------------------------------------------------------

    async def run(self) -> None:
        limits = self.server.settings.limits
        ws = self.ws
        try:
            msg = await ws.receive(timeout=limits.join_timeout)
        except TimeoutError:
            await self.close(CloseCode.POLICY, "join timeout")
            return
        while True:
            if msg.type == WSMsgType.TEXT:
                await self.on_message(msg.data)
                if self.conn.closed:
                    break
            elif msg.type == WSMsgType.BINARY:
                await self.close(CloseCode.UNSUPPORTED_DATA, "binary frames are not supported")
                break
            elif msg.type == WSMsgType.ERROR:
                # aiohttp has already closed the socket (1009 for a frame over the limit).
                log.info("connection %s error: %s", self.conn.peer, ws.exception())
                break
            else:  # CLOSE, CLOSING, CLOSED
                break
            msg = await ws.receive()

    async def on_message(self, data: str) -> None:
        try:
            message = p.decode(data)
            if self.pid is None:
                if isinstance(message, p.Join):
                    await self.on_join(message)
                elif isinstance(message, p.Ping):
                    self.send(p.encode(p.Pong(ref=message.ref)))
                else:
                    raise ProtocolError(ErrorCode.NOT_JOINED, "join a room first", message.ref)
                return
            if self.buckets is not None:
                bucket = self.buckets.get(type(message))
                if bucket is not None and not bucket.allow(time.monotonic()):
                    raise ProtocolError(
                        ErrorCode.RATE_LIMITED,
                        f"too many {message.__struct_config__.tag} messages; "
                        f"retry in {bucket.retry_after():.1f} s",
                        message.ref,
                    )
            await self.dispatch(message)
        except ProtocolError as exc:
            self.refuse(exc)
        except Exception:
            log.exception("internal error handling a message from %s", self.pid or self.conn.peer)
            self.refuse(ProtocolError(ErrorCode.INTERNAL, "internal server error"))

    async def dispatch(self, message: p.ClientMessage) -> None:
        pid = self.pid
        assert pid is not None
        rooms = self.server.rooms
        match message:
            case p.Chat():
                await self.on_chat(message)
            case p.Signal():
                self.publish(rooms.signal(pid, message))
            case p.Media():
                self.publish(rooms.media(pid, message))
            case p.Hand():
                self.publish(rooms.hand(pid, message))
            case p.Rename():
                self.publish(rooms.rename(pid, message))
            case p.Reaction():
                self.publish(rooms.reaction(pid, message))
            case p.History():
                await self.on_history(message)
            case p.Ping():
                self.send(p.encode(p.Pong(ref=message.ref)))
            case p.Leave():
                self.left = True
                self.server.forget(self.conn)
                self.publish(rooms.leave(pid))
                await self.close(CloseCode.NORMAL, "left")
            case p.Join():
                raise ProtocolError(ErrorCode.ALREADY_JOINED, "already in a room", message.ref)

    # -- requests ------------------------------------------------------------------

    async def on_join(self, msg: p.Join) -> None:
        server = self.server
        rooms = server.rooms
        room_name, display_name = rooms.validate_join(msg)
        resume_id = None
        if msg.resume is not None:
            claims = server.tokens.verify(msg.resume, time.time())
            if claims is None or claims.room != room_name:
                raise ProtocolError(
                    ErrorCode.BAD_RESUME, "resume token invalid or expired; join afresh", msg.ref
                )
            resume_id = claims.pid
        created_at = await server.store.ensure_room(room_name, rooms.now_ms())
        joined = rooms.join(room_name, display_name, created_at, resume_id=resume_id, ref=msg.ref)
        pid = joined.member.info.id
        if resume_id is not None:
            server.replace(pid)
        self.pid = pid
        server.hub.attach(self.conn, room_name, pid)
        # Announce before fetching history so nothing sent meanwhile is lost; the
        # connection holds frames until its welcome is queued first.
        self.publish(joined.deliveries)
        try:
            history, more = await server.store.history(
                room_name, None, server.settings.limits.history_page, pid
            )
        except Exception:
            log.exception("history unavailable for %s", room_name)
            history, more = [], False
        room = rooms.rooms[room_name]
        limits = server.settings.limits
        welcome = p.Welcome(
            v=p.PROTOCOL_VERSION,
            id=pid,
            resume=server.tokens.issue(pid, room_name, joined.member.info.name, time.time()),
            resumed=joined.resumed,
            room=p.RoomInfo(
                name=room_name,
                created_at=room.created_at,
                max_participants=limits.max_participants,
            ),
            participants=room.participants(),
            history=history,
            history_more=more,
            ice_servers=list(server.settings.ice_servers),
            limits={
                "chat_max_chars": limits.chat_max_chars,
                "display_name_max": limits.display_name_max,
                "max_frame_bytes": limits.max_frame_bytes,
                "max_participants": limits.max_participants,
            },
        )
        server.hub.release(self.conn, server.frame(p.encode(welcome)))
        log.info("%s joined %s as %r (resumed=%s)", pid, room_name, display_name, joined.resumed)

    async def on_chat(self, msg: p.Chat) -> None:
        assert self.pid is not None
        server = self.server
        member, text, to = server.rooms.check_chat(self.pid, msg)
        try:
            record = await server.store.append_chat(
                member.room, self.pid, member.info.name, text, to, server.rooms.now_ms()
            )
        except Exception:
            log.exception("could not store a chat message in %s", member.room)
            raise ProtocolError(
                ErrorCode.UNAVAILABLE, "the message could not be saved; try again", msg.ref
            ) from None
        server.messages_stored += 1
        self.send(p.encode(p.ChatAck(id=record.id, ts=record.ts, ref=msg.ref)))
        self.publish(server.rooms.chat_stored(record))

    async def on_history(self, msg: p.History) -> None:
        assert self.pid is not None
        server = self.server
        limits = server.settings.limits
        room = server.rooms.member(self.pid).room
        limit = limits.history_page if msg.limit is None else msg.limit
        limit = max(1, min(limit, limits.history_page_max))
        messages, more = await server.store.history(room, msg.before, limit, self.pid)
        self.send(p.encode(p.HistoryOut(messages=messages, more=more, ref=msg.ref)))

    # -- output ----------------------------------------------------------------------

    def send(self, payload: bytes) -> None:
        self.server.hub.send(self.conn, self.server.frame(payload))

    def publish(self, deliveries: list[Deliver]) -> None:
        self.server.publish(deliveries)

    def refuse(self, exc: ProtocolError) -> None:
        """Answer a refused request; too many refusals in a window close the socket."""
        if self.conn.ready or self.pid is None:
            frame = self.server.frame(p.error(exc))
            if self.conn.ready:
                self.server.hub.send(self.conn, frame)
            else:
                # Not joined yet: nothing else is queued, write it straight away.
                self.conn.outbox.append(frame)
                self.server.hub.flush_one(self.conn)
        now = time.monotonic()
        errors = self.errors
        errors.append(now)
        while errors and errors[0] < now - ERROR_WINDOW:
            errors.popleft()
        if len(errors) > self.server.settings.limits.max_errors:
            self.server.spawn(self.close(CloseCode.POLICY, "too many refused messages"))

    async def close(self, code: int, reason: str) -> None:
        conn = self.conn
        self.server.hub.flush_one(conn)
        conn.closed = True
        await self.ws.close(code=code, message=reason.encode())

    # -- end -------------------------------------------------------------------------

    def on_close(self) -> None:
        """The socket is gone: hold the identity for a resume, or announce a timeout."""
        server = self.server
        server.hub.detach(self.conn)
        self.conn.closed = True
        pid = self.pid
        if pid is None or self.left or self.replaced or server.stopping:
            return
        if isinstance(self.ws.exception(), asyncio.TimeoutError):
            # No pong: the peer is dead, not reconnecting; tell the others now.
            self.publish(server.rooms.leave(pid, reason="timeout"))
            return
        deadline = server.rooms.disconnected(pid)
        if deadline is not None:
            delay = max(0.0, deadline - time.monotonic()) + 0.05
            asyncio.get_running_loop().call_later(delay, server.expire, pid)
