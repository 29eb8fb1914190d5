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
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Protocol, cast

from ..auth import TokenError, hash_password, verify_password
from ..core import protocol as p
from ..core import stage
from ..core.admission import Enter, JoinRequest, NeedPassword, Refuse
from ..core.breakouts import main_of
from ..core.effects import lobby_key
from ..core.names import check_display_name
from ..core.protocol import CloseCode, ErrorCode, ProtocolError
from ..core.ratelimit import TokenBucket
from ..policy.api import ChatInfo, JoinInfo, RenameInfo
from .hub import Connection
from .media import SFU_ID

if TYPE_CHECKING:
    import contextlib
    from collections.abc import Coroutine

    from ..auth import AttemptThrottle, JoinTokenVerifier
    from ..config import Settings
    from ..core.effects import Effect
    from ..core.resume_tokens import ResumeTokens
    from ..core.rooms import Rooms
    from ..core.state import StoredRoom
    from ..ops.metrics import Metrics
    from ..policy.runner import Policy
    from ..store import Store
    from .hub import Hub
    from .sfu_signals import SfuSignals

log = logging.getLogger(__name__)

#: Window over which refused messages are counted for ``Limits.max_errors``.
ERROR_WINDOW = 10.0

#: Per-connection rate limits: the ``Limits`` field of each class, and the class of
#: each message type (every other type after a join shares the last one).
RATE_LIMITS = ("chat_rate", "signal_rate", "reaction_rate", "roster_rate", "other_rate")
RATE_CLASS: dict[type, int] = {p.Chat: 0, p.Signal: 1, p.Reaction: 2, p.Roster: 3}
OTHER = 4

#: Messages waiting behind the one being handled before the socket stops reading.
MAX_BACKLOG = 32

#: Chat messages in the welcome of a big room (core/presence.py ``is_big``), if the
#: configured history page is longer: that welcome goes to every newcomer of thousands,
#: and the client fetches earlier messages with ``history`` when they are scrolled to.
BIG_ROOM_WELCOME_HISTORY = 20


class Socket(Protocol):
    """What a session needs from its WebSocket (Parley's own, or aiohttp's)."""

    @property
    def timed_out(self) -> bool:
        """The peer stopped answering pings (rather than closing or dropping)."""
        ...

    async def close(self, code: int, reason: str) -> None: ...

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...


class Replacer(Protocol):
    def replace(self, pid: str) -> None:
        """A resume took over ``pid``: retire its older socket (``LocalSessions``)."""


class SessionHost(Protocol):
    """What a session needs from the server it runs in (``parley.server.app.Server``)."""

    settings: Settings
    rooms: Rooms
    hub: Hub
    store: Store
    tokens: ResumeTokens
    metrics: Metrics
    join_tokens: JoinTokenVerifier | None
    join_tokens_required: bool
    password_throttle: AttemptThrottle
    room_opens: AttemptThrottle
    stopping: bool

    @property
    def sockets(self) -> Replacer: ...

    @property
    def sfu_signals(self) -> SfuSignals | None: ...

    @property
    def policy(self) -> Policy | None: ...

    async def apply(self, effects: list[Effect]) -> None: ...

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None: ...

    def frame(self, payload: bytes) -> bytes: ...

    def address_allows(self, address: str) -> bool: ...

    def expire(self, pid: str) -> None: ...

    def ice_servers(self, pid: str) -> list[dict[str, Any]]: ...

    def room_guard(self, room: str) -> contextlib.AbstractAsyncContextManager[None]: ...

    async def follow(self, room: str) -> None:
        """Clustered: load the meeting's shared state (breakouts included) here."""

    async def room_config(self, room: str, now_ms: int, ref: str | None = None) -> StoredRoom: ...


class Session:
    """Drives one connection through the protocol."""

    __slots__ = (
        "server",
        "conn",
        "address",
        "pid",
        "room",
        "final",
        "buckets",
        "errors",
        "socket",
        "busy",
        "backlog",
        "token_role",
        "gone",
    )

    def __init__(self, server: SessionHost, socket: Socket, conn: Connection, address: str) -> None:
        self.server = server
        self.socket = socket
        self.conn = conn
        self.address = address
        self.pid: str | None = None
        self.room: str | None = None
        #: The socket's end needs no resume: left, removed, replaced, meeting ended.
        self.final = False
        #: Rate-limit buckets by class (RATE_CLASS), each made on first use: an idle
        #: participant carries none.  None when rate limits are off.
        self.buckets: list[TokenBucket | None] | None = (
            [None] * len(RATE_LIMITS) if server.settings.limits.rate_limits else None
        )
        #: Times of recent refusals (created on the first one: most clients have none).
        self.errors: deque[float] | None = None
        #: A message is being handled; those that arrive meanwhile wait in the backlog.
        self.busy = False
        self.backlog: deque[str] | None = None
        #: The role named by the resume token this client holds (see ``renew_token``).
        self.token_role = ""
        #: The socket has closed (``on_close`` ran, or waits for the message in hand).
        self.gone = False

    # -- incoming messages ------------------------------------------------------------

    def received(self, text: str) -> None:
        """A text message from the socket: handled in arrival order, one at a time.

        No task waits on an idle connection: one is started when a message
        arrives and ends when the backlog is empty.  Past ``MAX_BACKLOG``
        waiting messages the socket stops reading until the backlog drains.
        """
        if self.busy:
            backlog = self.backlog
            if backlog is None:
                backlog = self.backlog = deque()
            backlog.append(text)
            if len(backlog) == MAX_BACKLOG:
                self.socket.pause_reading()
            return
        self.busy = True
        self.server.hub.note_read()  # a pending flush waits for this message's frames
        self.server.spawn(self._handle(text))

    async def _handle(self, text: str) -> None:
        try:
            await self.on_message(text)
            backlog = self.backlog
            while backlog and not self.conn.closed:
                if len(backlog) == MAX_BACKLOG:
                    self.socket.resume_reading()
                await self.on_message(backlog.popleft())
        finally:
            self.busy = False
            self.backlog = None
            if self.gone:  # the socket closed meanwhile: finish what on_close put off
                self.on_close()

    async def on_message(self, data: str) -> None:
        message: p.ClientMessage | None = None
        try:
            if self.buckets is not None and not self.server.address_allows(self.address):
                raise ProtocolError(
                    ErrorCode.RATE_LIMITED, "too many messages from your address; slow down"
                )
            message = p.decode(data)
            self.server.metrics.message_in(message.__struct_config__.tag)  # type: ignore[arg-type]
            if self.pid is None:
                if isinstance(message, p.Join):
                    await self.on_join(message)
                elif isinstance(message, p.Ping):
                    self.send(p.encode(p.Pong(ref=message.ref)))
                else:
                    raise ProtocolError(ErrorCode.NOT_JOINED, "join a room first", message.ref)
                return
            buckets = self.buckets
            if buckets is not None and type(message) is not p.Leave:
                now = time.monotonic()
                index = RATE_CLASS.get(type(message), OTHER)
                bucket = buckets[index]
                if bucket is None:
                    limit = getattr(self.server.settings.limits, RATE_LIMITS[index])
                    bucket = buckets[index] = TokenBucket(limit, now)
                if not bucket.allow(now):
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
            log.exception("internal error handling a message from %s", self.pid or self.address)
            ref = message.ref if message is not None else None
            self.refuse(ProtocolError(ErrorCode.INTERNAL, "internal server error", ref))

    async def dispatch(self, message: p.ClientMessage) -> None:
        """A joined participant's message: the transport's own cases, else the rules'."""
        pid = self.pid
        assert pid is not None
        rooms = self.server.rooms
        match message:
            case p.Signal() if message.to == SFU_ID and self.server.sfu_signals is not None:
                member = rooms.member(pid)
                await self.server.sfu_signals.signal(pid, member.room, member.info.role, message)
            case p.History():
                await self.on_history(message)
            case p.Ping():
                self.send(p.encode(p.Pong(ref=message.ref)))
            case p.Leave():
                self.final = True
                self.server.hub.detach(self.conn)
                await self.server.apply(rooms.leave(pid))
                await self.close(CloseCode.NORMAL, "left")
            case p.Join():
                raise ProtocolError(ErrorCode.ALREADY_JOINED, "already in a room", message.ref)
            case p.RoomSettingsUpdate():
                await self.on_settings(message)
            case p.Chat():
                await self.chat(pid, message)
            case p.Rename() if (policy := self.server.policy) and policy.has("on_rename"):
                await self.rename(pid, message, policy)
            case _:
                await self.server.apply(rooms.handle(pid, message))

    # -- requests ------------------------------------------------------------------

    async def on_join(self, msg: p.Join) -> None:
        """Gather what the transport can verify, then let the core decide (one decision,
        asked again only once the password is checked), then carry it out."""
        server = self.server
        rooms = server.rooms
        room_name, display_name = rooms.validate_join(msg)
        role, subject, claims = None, None, dict[str, Any]()
        if msg.token is not None or server.join_tokens_required:
            role, subject, display_name, claims = self.check_join_token(
                msg, room_name, display_name
            )
        resume_id = None
        if msg.resume is not None:
            resume = server.tokens.verify(msg.resume, time.time())
            if resume is None or resume.room != room_name:
                raise ProtocolError(
                    ErrorCode.BAD_RESUME, "resume token invalid or expired; join afresh", msg.ref
                )
            # Only who the holder was: the role is whatever the server still holds
            # for that identity (Rooms.decide), never the token's say-so.
            resume_id = resume.pid
            # Moved into a breakout of this meeting: the resume lands back there.
            moved = rooms.find(resume_id)
            if moved is None:  # clustered, through another node: the meeting's state
                await server.follow(room_name)
                moved = rooms.find(resume_id)
            if moved is not None and main_of(moved.room) == room_name:
                room_name = moved.room
        req = JoinRequest(
            room_name,
            display_name,
            msg.ref,
            role=role,
            subject=subject,
            claims=claims,
            address=self.address,
            resume_id=resume_id,
        )
        async with server.room_guard(room_name):
            if not rooms.is_open(room_name):
                self.check_room_opening(msg.ref)
            making_room = rooms.make_room_for(room_name, msg.ref)
            if making_room:  # (usually nothing: no executor pass for it)
                await server.apply(making_room)
            stored = await server.room_config(room_name, rooms.now_ms(), msg.ref)
            decision = rooms.decide(req, stored)
            if isinstance(decision, NeedPassword):
                await self.check_password(msg, decision.password_hash)
                req = replace(req, password_verified=True)
                decision = rooms.decide(req, stored)
            if isinstance(decision, Refuse):
                raise ProtocolError(decision.code, decision.message, msg.ref)
            if not isinstance(decision, Enter):  # a password asked for twice: a bug
                raise ProtocolError(ErrorCode.INTERNAL, "internal server error", msg.ref)
            policy = server.policy
            if policy is not None and not decision.restore and policy.has("on_join"):
                # The room's answer, which the policy may replace (docs/hooks.md).
                decision = await policy.on_join(self.join_info(req, decision), decision)
                if isinstance(decision, Refuse):
                    raise ProtocolError(decision.code, decision.message, msg.ref)
                assert isinstance(decision, Enter)
            joined = rooms.enter(req, decision, stored)
            pid = joined.member.info.id
            if joined.resumed:
                server.sockets.replace(pid)
            self.pid, self.room = pid, room_name
            if joined.waiting:
                server.hub.attach(self.conn, lobby_key(room_name), pid)
                server.hub.release(self.conn, server.frame(p.encode(p.LobbyWait(room=room_name))))
                await server.apply(joined.effects)
                log.info("%s waits in the lobby of %s", pid, room_name)
                return
            server.hub.attach(self.conn, room_name, pid)
            # Announce before fetching history so nothing sent meanwhile is lost; the
            # connection holds frames until its welcome is queued first.
            await server.apply(joined.effects)
        await self.welcome(resumed=joined.resumed)
        log.info("%s joined %s (resumed=%s)", pid, room_name, joined.resumed)

    def join_info(self, req: JoinRequest, decision: Enter) -> JoinInfo:
        room = self.server.rooms.room(req.room)
        names = tuple(m.info.name for m in room.members.values()) if room is not None else ()
        return JoinInfo(req.room, req.name, req.claims, req.address, names, decision.role)

    async def chat(self, pid: str, msg: p.Chat) -> None:
        """A chat message, through the policy's on_chat if there is one."""
        server = self.server
        rooms = server.rooms
        policy = server.policy
        if policy is not None and policy.has("on_chat"):
            member, text, to = rooms.check_chat(pid, msg)
            info = ChatInfo(member.room, pid, member.info.name, text, to)
            out = await policy.on_chat(info)
            if out is None:
                raise ProtocolError(
                    ErrorCode.FORBIDDEN, "this message was blocked by the room's policy", msg.ref
                )
            if out != text:
                msg = p.Chat(text=out, to=msg.to, ref=msg.ref)
        await server.apply(rooms.chat(pid, msg))

    async def rename(self, pid: str, msg: p.Rename, policy: Policy) -> None:
        """A change of display name, through the policy's on_rename (given a valid name)."""
        member = self.server.rooms.member(pid, msg.ref)
        try:
            asked = check_display_name(msg.name, self.server.settings.limits)
        except ProtocolError as exc:
            exc.ref = msg.ref
            raise
        info = RenameInfo(member.room, pid, member.info.name, asked)
        name = await policy.on_rename(info)
        if name is None:
            raise ProtocolError(
                ErrorCode.FORBIDDEN, "this name change was refused by the room's policy", msg.ref
            )
        await self.server.apply(self.server.rooms.rename(pid, p.Rename(name=name, ref=msg.ref)))

    def check_room_opening(self, ref: str | None) -> None:
        """One address may open only so many rooms a minute (each costs a row and memory)."""
        server = self.server
        if not server.settings.limits.rate_limits:
            return
        now = time.monotonic()
        wait = server.room_opens.check(self.address, now)
        if wait > 0:
            raise ProtocolError(
                ErrorCode.RATE_LIMITED,
                f"too many new rooms from your address; retry in {wait:.0f} s",
                ref,
            )
        server.room_opens.failure(self.address, now)  # counted: an opening, not a failure

    def check_join_token(
        self, msg: p.Join, room_name: str, display_name: str
    ) -> tuple[str, str | None, str, dict[str, Any]]:
        """Role, subject, display name (the token's wins, checked like any name) and the
        claims of the join token."""
        verifier = self.server.join_tokens
        if msg.token is None or verifier is None:
            if verifier is None:
                raise ProtocolError(
                    ErrorCode.BAD_TOKEN, "this server does not accept join tokens", msg.ref
                )
            raise ProtocolError(
                ErrorCode.TOKEN_REQUIRED, "this server admits only invited participants", msg.ref
            )
        try:
            claims = verifier.verify(msg.token, room_name)
        except TokenError as exc:
            raise ProtocolError(ErrorCode.BAD_TOKEN, str(exc), msg.ref) from None
        name = display_name
        if claims.name:
            try:
                name = check_display_name(claims.name, self.server.settings.limits)
            except ProtocolError as exc:
                exc.ref = msg.ref
                raise
        return claims.role, claims.subject, name, dict(claims.raw)

    async def check_password(self, msg: p.Join, needed: str | None) -> bool:
        """Check ``msg.password`` against the hash a joiner must match (None: no check)."""
        server = self.server
        if needed is None:
            return False
        if msg.password is None:
            raise ProtocolError(ErrorCode.PASSWORD_REQUIRED, "this room needs a password", msg.ref)
        now = time.monotonic()
        wait = server.password_throttle.check(self.address, now)
        if wait > 0:
            raise ProtocolError(
                ErrorCode.RATE_LIMITED, f"too many wrong passwords; retry in {wait:.0f} s", msg.ref
            )
        # Counted as a failure before the (slow) check, so that guesses sent at once on
        # many connections cannot all slip in under the throttle; a right one clears it.
        server.password_throttle.failure(self.address, now)
        # Argon2 is deliberately slow: keep it off the event loop.
        if not await asyncio.to_thread(verify_password, needed, msg.password):
            raise ProtocolError(ErrorCode.BAD_PASSWORD, "wrong room password", msg.ref)
        server.password_throttle.success(self.address)
        return True

    async def welcome(self, resumed: bool) -> None:
        """Queue the welcome first on this connection (history fetched now)."""
        server = self.server
        pid, room_name = self.pid, self.room
        assert pid is not None and room_name is not None
        limits = server.settings.limits
        page = limits.history_page
        room = server.rooms.room(room_name)
        if room is not None and server.rooms.presence.is_big(room):
            page = min(page, BIG_ROOM_WELCOME_HISTORY)
        try:
            history, more = await server.store.history(
                room_name, None, page, pid, questions=self._on_stage()
            )
        except Exception:
            log.exception("history unavailable for %s", room_name)
            history, more = [], False
        room = server.rooms.room(room_name)
        member = server.rooms.find(pid)
        if room is None or member is None:  # gone while the history loaded
            return
        people, count, roster_next = server.rooms.welcome_roster_json(room, pid)
        # A big room's page comes as its JSON (msgspec.Raw), which encodes as is.
        participants = cast("list[p.Participant]", people)
        welcome = p.Welcome(
            v=p.PROTOCOL_VERSION,
            id=pid,
            # For the meeting's main room: the page rejoins by it, from any breakout.
            resume=server.tokens.issue(
                pid, main_of(room_name), member.info.name, time.time(), member.info.role
            ),
            resumed=resumed,
            room=p.RoomInfo(
                name=room_name,
                media="sfu" if server.sfu_signals is not None else "mesh",
                created_at=room.created_at,
                max_participants=server.rooms.capacity(room),
                settings=server.rooms.settings_of(room),
                recording=room.recording is not None,
            ),
            participants=participants,
            participant_count=count,
            roster_next=roster_next,
            history=history,
            history_more=more,
            ice_servers=server.ice_servers(pid),
            limits={
                "chat_max_chars": limits.chat_max_chars,
                "display_name_max": limits.display_name_max,
                "max_frame_bytes": limits.max_frame_bytes,
                "max_participants": server.rooms.capacity(room),
            },
            breakout=server.rooms.breakouts.here(room_name),
        )
        self.token_role = member.info.role
        server.hub.release(self.conn, server.frame(p.encode(welcome)))
        if member.info.role == "host" and room.lobby:
            await server.apply([server.rooms.lobby_state(room_name, to=(pid,))])
        host = member.info.role == "host"
        late = server.rooms.polls.state_for(room_name, pid, host=host)
        late += server.rooms.breakouts.state_for(room_name, pid)
        if late:
            await server.apply(late)

    async def on_history(self, msg: p.History) -> None:
        assert self.pid is not None
        server = self.server
        limits = server.settings.limits
        room = server.rooms.member(self.pid, msg.ref).room
        if msg.room is not None and msg.room != room:
            # From a breakout, the main room's chat stays readable; no other room's is.
            if msg.room != main_of(room):
                raise ProtocolError(ErrorCode.FORBIDDEN, "not a room you are in", msg.ref)
            room = msg.room
        limit = limits.history_page if msg.limit is None else msg.limit
        limit = max(1, min(limit, limits.history_page_max))
        messages, more = await server.store.history(
            room, msg.before, limit, self.pid, questions=self._on_stage()
        )
        out = p.HistoryOut(messages=messages, more=more, ref=msg.ref, room=msg.room)
        self.send(p.encode(out))

    def _on_stage(self) -> bool:
        """The audience's questions are the stage's to read (core/stage.py)."""
        member = self.server.rooms.find(self.pid) if self.pid is not None else None
        return member is not None and stage.on_stage(member)

    async def on_settings(self, msg: p.RoomSettingsUpdate) -> None:
        assert self.pid is not None
        rooms = self.server.rooms
        rooms.require_host(self.pid, msg.ref)  # before spending Argon2 time on a non-host
        rooms.check_settings(msg)
        hashed = None
        if msg.password:
            hashed = await asyncio.to_thread(hash_password, msg.password)
        await self.server.apply(rooms.update_settings(self.pid, msg, hashed))

    # -- output ----------------------------------------------------------------------

    def send(self, payload: bytes) -> None:
        conn = self.conn
        frame = self.server.frame(payload)
        if conn.ready:
            self.server.hub.send(conn, frame)
            return
        conn.outbox.append(frame)
        if self.pid is None:
            # Not joined: nothing else is queued, so write it now.  (Between join and
            # welcome it waits, so that the welcome goes first.)
            self.server.hub.flush_one(conn)

    def too_slow(self, conn: Connection) -> None:
        """The hub dropped this socket: it did not read what it was sent."""
        self.server.spawn(self.close(CloseCode.POLICY, "too slow"))

    def renew_token(self, role: str) -> None:
        """The participant's role changed: give it a resume token that says so."""
        if self.pid is None or self.room is None or role == self.token_role:
            return
        member = self.server.rooms.find(self.pid)
        if member is None:
            return
        self.token_role = role
        main = main_of(self.room)
        token = self.server.tokens.issue(self.pid, main, member.info.name, time.time(), role)
        self.send(p.encode(p.ResumeToken(token=token)))

    def refuse(self, exc: ProtocolError) -> None:
        """Answer a refused request; too many refusals in a window close the socket."""
        self.server.metrics.error(exc.code)
        if exc.code == ErrorCode.FORBIDDEN:  # beyond the sender's rights: worth a trace
            log.info("refused %s in %s: %s", self.pid or self.address, self.room, exc.message)
        self.send(p.error(exc))
        now = time.monotonic()
        errors = self.errors
        if errors is None:
            errors = self.errors = deque()
        errors.append(now)
        while errors and errors[0] < now - ERROR_WINDOW:
            errors.popleft()
        if len(errors) > self.server.settings.limits.max_errors:
            self.server.spawn(self.close(CloseCode.POLICY, "too many refused messages"))

    async def close(self, code: int, reason: str) -> None:
        conn = self.conn
        self.server.hub.flush_one(conn)
        conn.closed = True
        await self.socket.close(code, reason)

    # -- end -------------------------------------------------------------------------

    def on_close(self) -> None:
        """The socket is gone: hold the identity for a resume, or announce a timeout.

        While a message is still being handled (a join waiting for the store or a
        password check), the rest waits for it: the join may yet make this socket a
        participant, who must then be held for a resume or announced as gone too.
        """
        server = self.server
        server.hub.detach(self.conn)
        self.conn.closed = True
        self.gone = True
        if self.busy:
            return
        pid = self.pid
        if pid is None or self.final or server.stopping:
            return
        if self.socket.timed_out:
            # No pong: the peer is dead, not reconnecting; tell the others now.
            server.spawn(server.apply(server.rooms.leave(pid, reason="timeout")))
            return
        deadline = server.rooms.disconnected(pid)
        if deadline is None:  # was waiting in the lobby
            server.spawn(server.apply(server.rooms.leave(pid)))
            return
        delay = max(0.0, deadline - time.monotonic()) + 0.05
        asyncio.get_running_loop().call_later(delay, server.expire, pid)
