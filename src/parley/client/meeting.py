"""One participant's connection to a Parley room: :func:`connect` and :class:`Meeting`.

The meeting speaks the WebSocket protocol of docs/protocol.md: it joins (waiting in the
lobby if the room has one), keeps ``participants``, ``history`` and the room's settings
current from what the server sends, answers requests (``say`` waits for the ``chat-ack``;
other requests are followed by a ``ping`` with the same ``ref``, so the ``pong`` says the
server handled them and an ``error`` with that ``ref`` says it refused them), and queues
every other server message as an event for ``async for event in meeting``.

When the connection drops without the server ending the meeting for this client (close
codes 4000-4003, or 1000 after ``leave``), the meeting reconnects by itself with its
resume token, for up to ``reconnect_for`` seconds.  A participant the server still held
comes back unannounced (``welcome.resumed``); one it no longer held joins again as
someone new and the :class:`~parley.client.events.Rejoined` event says so.  Either way,
what was missed meanwhile is replayed as events: people who came or went (from the
welcome's participant list) and chat messages (from the welcome's history page).
Requests in flight when the connection dropped are sent again on the new one, except a
chat message the welcome's history shows was already stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import re
import ssl as ssl_module
from collections import deque
from collections.abc import Generator
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Literal
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import msgspec

from ..core import protocol as p
from . import events as ev
from .errors import (
    ConnectionLost,
    Forbidden,
    IncompatibleServer,
    JoinRefused,
    MediaError,
    MeetingClosed,
    ParleyError,
    RequestRefused,
    join_refused,
)

if TYPE_CHECKING:
    from aiortc import MediaStreamTrack

    from .media import ParticipantMedia, SfuMedia

log = logging.getLogger("parley.client")

#: The protocol version this client speaks (``join.v``).
PROTOCOL_VERSION: int = p.PROTOCOL_VERSION
#: Chat messages kept in ``Meeting.history`` (older ones: ``fetch_history``).
HISTORY_KEPT: Final = 1000
#: Events queued for ``async for``; past it the oldest are dropped (``dropped_events``).
EVENT_BUFFER: Final = 10_000
#: WebSocket ping interval: a server that stops answering is noticed within 1.5 x this.
HEARTBEAT: Final = 20.0
#: Time to open the WebSocket (TCP, TLS, upgrade).
OPEN_TIMEOUT: Final = 15.0
#: Close codes after which the client must not reconnect (docs/protocol.md).
FINAL_CLOSES: Final = {
    p.CloseCode.NORMAL: "left",
    p.CloseCode.REPLACED: "replaced by a newer connection of the same participant",
    p.CloseCode.REMOVED: "removed by a host",
    p.CloseCode.ENDED: "the meeting ended",
    p.CloseCode.DENIED: "a host declined the lobby request",
}
_SPEAKS: Final = re.compile(r"server speaks (\d+)")


def websocket_url(url: str) -> str:
    """``http(s)://HOST[:PORT][/PREFIX]`` -> ``ws(s)://HOST[:PORT][/PREFIX]/ws``;
    ``ws(s)://`` URLs are used as they are."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https", "ws", "wss") or not parts.netloc:
        raise ValueError(f"not a Parley server URL: {url!r} (use http(s):// or ws(s)://)")
    if scheme in ("ws", "wss"):
        return urlunsplit((scheme, parts.netloc, parts.path or "/ws", parts.query, ""))
    ws_scheme = "wss" if scheme == "https" else "ws"
    return urlunsplit((ws_scheme, parts.netloc, parts.path.rstrip("/") + "/ws", "", ""))


class _Dropped(Exception):
    """The socket closed (or could not open) before the join was answered."""

    def __init__(self, code: int | None) -> None:
        super().__init__(f"connection closed ({code})")
        self.code = code


class _BadResume(Exception):
    """The server refused the resume token (it was replaced, or the token expired)."""


@dataclass(eq=False)
class _Pending:
    """A request waiting for its answer (``chat-ack``, ``history``, or the ``pong``)."""

    ref: str
    kind: str  # "chat" | "barrier" | "history" | "delete"
    message: dict[str, Any]
    future: asyncio.Future[Any]
    #: The newest chat id seen when it was sent (for finding it in a later history page).
    watermark: int = 0
    #: The connection it was last sent on (None: not yet).
    sent_on: int | None = None
    sender: str = ""
    #: Sent again after a reconnect (a "delete" that then finds nothing already happened).
    resent: bool = False


@dataclass
class _Backoff:
    """Waits between reconnection attempts: 0.2 s, doubling up to 5 s."""

    delay: float = 0.2

    def next(self) -> float:
        now = self.delay
        self.delay = min(5.0, self.delay * 2)
        return now


class Meeting:
    """This client's place in a room (see the module docstring).

    State kept current from the server's messages:

    * ``id``: this participant's id (changes only with a :class:`~.events.Rejoined`);
    * ``name``, ``role``: this participant's display name and role;
    * ``participants``: everyone in the room, self included, by id
      (:class:`~parley.core.protocol.Participant`);
    * ``history``: the chat so far, oldest first (the latest ``HISTORY_KEPT``
      :class:`~parley.core.protocol.ChatRecord`; older pages: :meth:`fetch_history`);
    * ``settings`` (:class:`~parley.core.protocol.RoomSettings`), ``media_mode``
      (``"sfu"`` or ``"mesh"``), ``lobby`` (who waits, for hosts), ``speaker``;
    * ``closed`` and ``close_reason`` once the meeting is over for this client.
    """

    def __init__(
        self,
        url: str,
        room: str,
        name: str,
        *,
        token: str | None = None,
        password: str | None = None,
        role: str | None = None,
        ssl: ssl_module.SSLContext | bool = True,
        reconnect_for: float = 120.0,
    ) -> None:
        self.url = url
        self.ws_url = websocket_url(url)
        self.room = room
        self.name = name
        self.id = ""
        self.role = ""
        self.participants: dict[str, p.Participant] = {}
        self.history: list[p.ChatRecord] = []
        self.history_more = False
        self.settings = p.RoomSettings()
        self.media_mode = "sfu"
        self.lobby: list[p.LobbyEntry] = []
        #: Sent back to the lobby during the meeting (a ``lobby-wait`` event); a host's
        #: admit brings a ``welcome`` event and the room back.
        self.waiting = False
        self.speaker: str | None = None
        self.ice_servers: list[dict[str, object]] = []
        self.limits: dict[str, int] = {}
        self.closed = False
        self.close_reason: str | None = None
        #: Events dropped because nobody read them (past ``EVENT_BUFFER`` queued).
        self.dropped_events = 0
        #: Seconds to keep trying to reconnect after a drop before giving up.
        self.reconnect_for = reconnect_for
        self._join_name = name
        self._token = token
        self._password = password
        self._want_role = role
        self._ssl = ssl
        self._resume: str | None = None
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._generation = 0
        self._send_lock = asyncio.Lock()
        self._connected = asyncio.Event()
        self._events: deque[ev.Event] = deque()
        self._wake = asyncio.Event()
        self._failure: ParleyError | None = None
        self._refs = itertools.count(1)
        self._pending: dict[str, _Pending] = {}
        self._reader: asyncio.Task[None] | None = None
        self._last_chat_id = 0
        self._chat_ids: set[int] = set()
        self._media: SfuMedia | None = None
        self._left = False

    def __repr__(self) -> str:
        return f"<Meeting {self.room!r} as {self.name!r} ({self.id or 'not joined'})>"

    # -- lifecycle -------------------------------------------------------------------

    async def _start(self) -> None:
        self._session = aiohttp.ClientSession()
        try:
            ws, welcome = await self._establish(first=True)
            self._ws = ws
            self._adopt(welcome, first=True)
            if self._want_role is not None and self.role != self._want_role:
                raise Forbidden(
                    "forbidden",
                    f"joined as {self.role}, not {self._want_role} (the bot role comes only"
                    " with a join token: parley token --role bot)",
                )
            self._connected.set()
            self._reader = asyncio.get_running_loop().create_task(self._read_loop())
        except BaseException:
            self.closed = True
            await self._close_transport(leave=True)
            raise

    async def leave(self) -> None:
        """Leave the room (the others see ``participant-left``) and close the connection.

        The event iteration ends at once (events not yet read are dropped).  Calling it
        again does nothing."""
        if self._left:
            return
        self._left = True
        if self._media is not None:
            with contextlib.suppress(Exception):
                await self._media.close(tell_server=not self.closed)
        await self._close_transport(leave=not self.closed)
        self._finish(None, "left")
        self._events.clear()  # left on purpose: the iteration ends now

    async def _close_transport(self, *, leave: bool) -> None:
        ws = self._ws
        if leave and ws is not None and not ws.closed:
            with contextlib.suppress(Exception):
                await ws.send_str('{"type":"leave"}')
            # the server closes with 1000 once everyone was told
            reader = self._reader
            if reader is not None and not reader.done():
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(asyncio.shield(reader), 5.0)
        if self._reader is not None and self._reader is not asyncio.current_task():
            self._reader.cancel()
            with contextlib.suppress(BaseException):
                await self._reader
        if ws is not None:
            with contextlib.suppress(Exception):
                await ws.close()
        if self._session is not None:
            await self._session.close()

    def _finish(self, failure: ParleyError | None, reason: str) -> None:
        """The meeting is over for this client: wake the iteration, fail the requests."""
        if self.closed and self.close_reason is not None:
            return
        self.closed = True
        self.close_reason = reason
        self._failure = failure
        self._connected.set()  # senders waiting for a connection see it is over
        for pending in list(self._pending.values()):
            if not pending.future.done():
                pending.future.set_exception(failure or MeetingClosed(f"meeting over: {reason}"))
        self._wake.set()
        media = self._media
        if media is not None and not self._left:
            task = asyncio.get_running_loop().create_task(media.close(tell_server=False))
            task.add_done_callback(lambda t: t.cancelled() or t.exception())

    # -- events ----------------------------------------------------------------------

    def __aiter__(self) -> Meeting:
        return self

    async def __anext__(self) -> ev.Event:
        """The next event; the iteration ends when the meeting is over for this client
        (left, removed, ended) and raises the error when it was lost
        (:class:`ConnectionLost`, or the :class:`JoinRefused` of a refused rejoin)."""
        while not self._events:
            if self.closed:
                if self._failure is not None:
                    raise self._failure
                raise StopAsyncIteration
            self._wake.clear()
            await self._wake.wait()
        return self._events.popleft()

    def _emit(self, event: ev.Event) -> None:
        if len(self._events) >= EVENT_BUFFER:
            self._events.popleft()
            self.dropped_events += 1
        self._events.append(event)
        self._wake.set()

    # -- connecting and joining --------------------------------------------------------

    async def _open(self) -> aiohttp.ClientWebSocketResponse:
        assert self._session is not None
        try:
            async with asyncio.timeout(OPEN_TIMEOUT):
                return await self._session.ws_connect(
                    self.ws_url, heartbeat=HEARTBEAT, ssl=self._ssl, autoclose=True
                )
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise _Dropped(None) from exc

    async def _establish(
        self, *, first: bool
    ) -> tuple[aiohttp.ClientWebSocketResponse, ev.Welcome]:
        """Open a socket and join (again); the first time, any failure is raised at once."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.reconnect_for
        backoff = _Backoff()
        resume = None if first else self._resume
        while True:
            ws: aiohttp.ClientWebSocketResponse | None = None
            try:
                ws = await self._open()
                try:
                    return ws, await self._join(ws, resume)
                except _BadResume:
                    # the server cannot read the token (it was replaced, or the token
                    # expired): join afresh on the same socket
                    resume = None
                    return ws, await self._join(ws, None)
            except _Dropped as exc:
                if ws is not None:
                    await ws.close()
                if first:
                    why = exc.__cause__ or exc
                    raise ConnectionLost(f"cannot reach {self.ws_url}: {why}") from None
                if loop.time() > deadline:
                    raise ConnectionLost(
                        f"lost the connection to {self.ws_url} and could not restore it"
                        f" within {self.reconnect_for:g} s"
                    ) from None
                await asyncio.sleep(backoff.next())
            except BaseException:
                if ws is not None:
                    await ws.close()
                raise

    async def _join(self, ws: aiohttp.ClientWebSocketResponse, resume: str | None) -> ev.Welcome:
        """Send ``join``; wait for ``welcome`` (through the lobby if there is one)."""
        join: dict[str, Any] = {
            "type": "join",
            "room": self.room,
            "name": self._join_name,
            "v": PROTOCOL_VERSION,
            "ref": "join",
        }
        for key, value in (("resume", resume), ("password", self._password)):
            if value is not None:
                join[key] = value
        if self._token is not None:
            join["token"] = self._token
        try:
            await ws.send_str(msgspec.json.encode(join).decode())
        except (aiohttp.ClientError, OSError, RuntimeError) as exc:
            raise _Dropped(ws.close_code) from exc
        while True:
            msg = await ws.receive()
            if msg.type != aiohttp.WSMsgType.TEXT:
                if msg.type in (aiohttp.WSMsgType.BINARY, aiohttp.WSMsgType.PING):
                    continue
                raise _Dropped(ws.close_code)
            try:
                frame = ev.decode(msg.data)
            except (msgspec.DecodeError, msgspec.ValidationError):
                continue
            if isinstance(frame, ev.Welcome):
                return frame
            if isinstance(frame, ev.LobbyWait):
                log.info("waiting in the lobby of %s for a host to admit %s", self.room, self.name)
                continue
            if isinstance(frame, ev.Error):
                # nothing but the join is outstanding: any error refuses it (an
                # address-wide rate limit answers without the join's ref)
                if frame.code == p.ErrorCode.BAD_VERSION:
                    match = _SPEAKS.search(frame.message)
                    server = int(match.group(1)) if match else None
                    raise IncompatibleServer(self.url, PROTOCOL_VERSION, server)
                if frame.code == p.ErrorCode.BAD_RESUME and resume is not None:
                    raise _BadResume(frame.message)
                raise join_refused(frame.code, frame.message)

    def _adopt(self, welcome: ev.Welcome, *, first: bool) -> None:
        """Take the room's state from a ``welcome``; after a reconnect, replay what changed
        meanwhile as events."""
        if welcome.v != PROTOCOL_VERSION:
            raise IncompatibleServer(self.url, PROTOCOL_VERSION, welcome.v)
        old_id, old_people = self.id, self.participants
        self.id = welcome.id
        self._resume = welcome.resume
        self.media_mode = welcome.room.media
        self.settings = welcome.room.settings
        self.ice_servers = welcome.ice_servers
        self.limits = welcome.limits
        self.participants = {person.id: person for person in welcome.participants}
        me = self.participants.get(self.id)
        if me is not None:
            self.role, self.name = me.role, me.name
        if first:
            self.history, self._chat_ids = [], set()
            for record in welcome.history:
                self._add_chat(record)
            self.history_more = welcome.history_more
            return
        if not welcome.resumed and welcome.id != old_id:
            log.warning("the server no longer held %s: joined again as %s", old_id, self.id)
            self._emit(
                ev.Rejoined(
                    old_id=old_id,
                    new_id=self.id,
                    reason="the server no longer held this participant; joined as someone new",
                )
            )
        for pid, person in self.participants.items():
            if pid in (self.id, old_id):
                continue
            before = old_people.get(pid)
            if before is None:
                self._emit(ev.ParticipantJoined(participant=person))
            elif before != person:
                self._emit(ev.ParticipantUpdated(participant=person))
        if welcome.participant_count is not None:
            # A big room's welcome lists a first page, not everyone: absence means nothing.
            self.participants = {**old_people, **self.participants}
            self.participants.pop(old_id, None)
        for pid in old_people:
            if pid not in self.participants and pid not in (self.id, old_id):
                self._emit(ev.ParticipantLeft(id=pid, reason="left"))
                if self._media is not None:
                    self._media.participant_absent(pid)  # after a restart: maybe not back yet
        # chat missed meanwhile: in the latest page, newer than what history starts with
        floor = self.history[0].id if self.history else 0
        for record in welcome.history:
            if record.id not in self._chat_ids and record.id > floor:
                self._add_chat(record)
                self._emit(ev.Chat(message=record))

    def _add_chat(self, record: p.ChatRecord) -> bool:
        """Keep a chat message in ``history``; False if it is already there."""
        if record.id in self._chat_ids:
            return False
        self.history.append(record)
        self._chat_ids.add(record.id)
        if len(self.history) > HISTORY_KEPT:
            for old in self.history[: len(self.history) - HISTORY_KEPT]:
                self._chat_ids.discard(old.id)
            del self.history[: len(self.history) - HISTORY_KEPT]
            self.history_more = True
        self._last_chat_id = max(self._last_chat_id, record.id)
        return True

    def _forget_chat(self, message_id: int) -> None:
        """A deleted message leaves ``history`` (the store no longer has it either, so
        no later welcome brings it back)."""
        self._chat_ids.discard(message_id)
        for i, record in enumerate(self.history):
            if record.id == message_id:
                del self.history[i]
                break

    # -- the connection's life -----------------------------------------------------------

    async def _read_loop(self) -> None:
        try:
            while True:
                ws = self._ws
                assert ws is not None
                async for msg in ws:
                    if msg.type == aiohttp.WSMsgType.TEXT:
                        self._on_text(msg.data)
                    elif msg.type == aiohttp.WSMsgType.ERROR:
                        break
                code = ws.close_code
                self._connected.clear()
                if self._left or code in FINAL_CLOSES:
                    reason = "left" if self._left else FINAL_CLOSES[code or 1000]
                    self._finish(None, reason)
                    return
                log.info("connection to %s dropped (%s): reconnecting", self.ws_url, code)
                with contextlib.suppress(Exception):
                    await ws.close()
                try:
                    ws, welcome = await self._establish(first=False)
                    self._ws = ws
                    self._generation += 1
                    old_id = self.id
                    self._adopt(welcome, first=False)
                except ParleyError as exc:
                    log.error("the meeting in %s is lost: %s", self.room, exc)
                    self._finish(exc, str(exc))
                    return
                await self._resend(welcome, old_id)
                self._connected.set()
                log.info("back in %s as %s (resumed=%s)", self.room, self.id, welcome.resumed)
                if self._media is not None:
                    self._media.reconnected(resumed=welcome.resumed)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug here must not leave the iteration hanging
            log.exception("parley client: reading from %s failed", self.ws_url)
            self._finish(ConnectionLost(f"reading from the server failed: {exc!r}"), "failed")

    async def _resend(self, welcome: ev.Welcome, old_id: str) -> None:
        """Requests sent on the lost connection go again, unless already stored."""
        for pending in list(self._pending.values()):
            if pending.sent_on is None or pending.sent_on == self._generation:
                continue
            if pending.kind == "chat":
                stored = next(
                    (
                        m
                        for m in welcome.history
                        if m.sender == old_id
                        and m.id > pending.watermark
                        and m.text == pending.message.get("text")
                        and m.to == pending.message.get("to")
                    ),
                    None,
                )
                if stored is not None:
                    if not pending.future.done():
                        pending.future.set_result(stored.id)
                    continue
            pending.resent = True
            await self._transmit(pending)

    def _on_text(self, data: str) -> None:
        try:
            frame = ev.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            # a message type a newer server added: skipped
            log.debug("skipped a server message this client does not know: %s", exc)
            return
        self._dispatch(frame)

    def _dispatch(self, frame: ev.ServerFrame) -> None:
        match frame:
            case ev.ChatAck() | ev.Pong() | ev.History():
                pending = self._pending.get(frame.ref or "")
                if pending is not None and not pending.future.done():
                    pending.future.set_result(frame.id if isinstance(frame, ev.ChatAck) else frame)
            case ev.Error():
                pending = self._pending.get(frame.ref or "")
                if pending is not None:
                    if pending.future.done():
                        pass
                    elif (
                        pending.kind == "delete"
                        and pending.resent
                        and frame.code == "no_such_message"
                    ):
                        # The first send, on the lost connection, deleted it.
                        pending.future.set_result(None)
                    else:
                        pending.future.set_exception(RequestRefused(frame.code, frame.message))
                else:
                    self._emit(frame)
            case ev.Chat():
                # ids grow, but two messages stored together may arrive in either order:
                # only an id already kept is a duplicate (a replay after a reconnect)
                if self._add_chat(frame.message):
                    self._emit(frame)
            case ev.MessageDeleted():
                self._forget_chat(frame.id)
                for pending in self._pending.values():
                    if (
                        pending.kind == "delete"
                        and pending.message.get("id") == frame.id
                        and not pending.future.done()
                    ):
                        pending.future.set_result(None)
                self._emit(frame)
            case ev.ParticipantJoined() | ev.ParticipantUpdated():
                person = frame.participant
                self.participants[person.id] = person
                if self._media is not None:
                    self._media.participant_back(person.id)
                if person.id == self.id:
                    self.role, self.name = person.role, person.name
                self._emit(frame)
            case ev.ParticipantLeft():
                self.participants.pop(frame.id, None)
                if self._media is not None:
                    self._media.participant_left(frame.id)
                self._emit(frame)
            case ev.Presence():
                for gone in frame.left:
                    self.participants.pop(gone.id, None)
                    if self._media is not None:
                        self._media.participant_left(gone.id)
                for person in (*frame.joined, *frame.updated):
                    self.participants[person.id] = person
                    if self._media is not None:
                        self._media.participant_back(person.id)
                    if person.id == self.id:
                        self.role, self.name = person.role, person.name
                self._emit(frame)
            case ev.Signal():
                if frame.sender == "sfu":
                    if self._media is not None:
                        try:
                            payload = msgspec.json.decode(frame.payload)
                        except msgspec.DecodeError:
                            return
                        self._media.on_signal(payload)
                else:
                    self._emit(frame)
            case ev.RoomUpdated():
                self.settings = frame.settings
                self._emit(frame)
            case ev.Lobby():
                self.lobby = frame.waiting
                self._emit(frame)
            case ev.Muted():
                if self._media is not None:
                    self._media.muted(frame.kind)
                self._emit(frame)
            case ev.Speaker():
                self.speaker = frame.id
                self._emit(frame)
            case ev.ResumeToken():
                self._resume = frame.token
            case ev.LobbyWait():
                # The room's policy sent us back to the lobby: nobody else is visible
                # until a host lets us in again (a new welcome, same id).
                self.waiting = True
                for pid in [pid for pid in self.participants if pid != self.id]:
                    self.participants.pop(pid)
                    if self._media is not None:
                        self._media.participant_left(pid)
                self._emit(frame)
            case ev.Welcome() if self.waiting:
                self.waiting = False
                self._adopt(frame, first=False)
                if self._media is not None:
                    self._media.reconnected(resumed=False)
                self._emit(frame)
            case ev.Welcome():
                pass  # only expected while joining
            case _:
                self._emit(frame)

    # -- sending -----------------------------------------------------------------------

    def _check_open(self) -> None:
        if self.closed:
            raise self._failure or MeetingClosed(f"the meeting is over: {self.close_reason}")

    async def _send_text(self, text: str) -> bool:
        """Send one frame once connected; False if the connection dropped meanwhile (the
        reconnect sends pending requests again)."""
        await self._connected.wait()
        self._check_open()
        ws = self._ws
        if ws is None or ws.closed:
            return False
        async with self._send_lock:
            try:
                await ws.send_str(text)
            except (aiohttp.ClientError, OSError, RuntimeError):
                return False
        return True

    async def _transmit(self, pending: _Pending) -> None:
        ws = self._ws
        if ws is None:
            return
        pending.sent_on = self._generation
        text = msgspec.json.encode(pending.message).decode()
        async with self._send_lock:
            try:
                await ws.send_str(text)
                if pending.kind == "barrier":
                    ping = {"type": "ping", "ref": pending.ref}
                    await ws.send_str(msgspec.json.encode(ping).decode())
            except (aiohttp.ClientError, OSError, RuntimeError):
                pass  # the reader reconnects and sends it again

    async def _request(self, message: dict[str, Any], kind: str = "barrier") -> Any:
        """Send ``message`` and wait until the server handled it (see the module doc)."""
        self._check_open()
        ref = f"sdk{next(self._refs)}"
        loop = asyncio.get_running_loop()
        pending = _Pending(ref, kind, {**message, "ref": ref}, loop.create_future())
        pending.watermark = self._last_chat_id
        self._pending[ref] = pending
        try:
            await self._connected.wait()
            self._check_open()
            await self._transmit(pending)
            return await pending.future
        finally:
            self._pending.pop(ref, None)

    async def _signal(self, to: str, payload: object) -> None:
        """Send a ``signal`` (no answer awaited)."""
        message = {"type": "signal", "to": to, "payload": payload}
        await self._send_text(msgspec.json.encode(message).decode())

    # -- what a participant does -------------------------------------------------------

    async def say(self, text: str, to: str | None = None) -> int:
        """Send a chat message (``to``: a participant id, for a private one); returns its
        id once the server stored it.  Raises :class:`RequestRefused` (``empty``,
        ``too_long``, ``no_such_participant``, ``rate_limited``, ``unavailable``)."""
        message: dict[str, Any] = {"type": "chat", "text": text}
        if to is not None:
            message["to"] = to
        message_id: int = await self._request(message, "chat")
        return message_id

    async def react(self, emoji: str) -> None:
        """Send a reaction (one of 👍 👏 ❤️ 😂 😮 🎉 🤔 👋) to everyone."""
        await self._request({"type": "reaction", "emoji": emoji})

    async def raise_hand(self, raised: bool = True) -> None:
        """Raise (or, with ``False``, lower) this participant's hand."""
        await self._request({"type": "hand", "raised": raised})

    async def set_media(
        self, *, mic: bool | None = None, cam: bool | None = None, screen: bool | None = None
    ) -> None:
        """Tell the room this participant's microphone/camera/screen state (``publish``
        does it for the tracks it sends; turning a kind back on after ``muted`` also
        resumes sending that track)."""
        message: dict[str, Any] = {"type": "media"}
        for key, value in (("mic", mic), ("cam", cam), ("screen", screen)):
            if value is not None:
                message[key] = value
        await self._request(message)
        if self._media is not None:
            for kind, value in (("mic", mic), ("cam", cam), ("screen", screen)):
                if value:
                    self._media.unmuted(kind)

    async def rename(self, name: str) -> None:
        """Change this participant's display name."""
        await self._request({"type": "rename", "name": name})

    async def fetch_history(
        self, before: int | None = None, limit: int | None = None
    ) -> tuple[list[p.ChatRecord], bool]:
        """An older page of chat (messages with ``id < before``): the messages, oldest
        first, and whether older ones exist."""
        message: dict[str, Any] = {"type": "history"}
        if before is not None:
            message["before"] = before
        if limit is not None:
            message["limit"] = limit
        page: ev.History = await self._request(message, "history")
        return page.messages, page.more

    async def delete_message(self, message_id: int) -> None:
        """Delete a stored chat message (this client's own, or as a host any public one);
        returns once everyone who saw it has been told (``message-deleted``).  Raises
        :class:`RequestRefused` (``no_such_message``, ``forbidden``, ``unavailable``)."""
        await self._request({"type": "delete-message", "id": message_id}, "delete")

    async def signal(self, to: str, payload: object) -> None:
        """Relay opaque signalling to another participant (mesh rooms)."""
        await self._signal(to, payload)

    # -- host actions (refused with ``forbidden`` unless this participant is a host) ---

    async def mute(self, to: str, kind: str = "mic") -> None:
        """Turn off ``to``'s ``"mic"``, ``"cam"`` or ``"screen"``."""
        await self._request({"type": "mute", "to": to, "kind": kind})

    async def mute_all(self, kind: str = "mic") -> None:
        """Turn off every non-host's ``kind``."""
        await self._request({"type": "mute-all", "kind": kind})

    async def remove(self, to: str, *, ban: bool = False) -> None:
        """Remove ``to`` from the meeting (``ban``: and bar them while it lasts)."""
        await self._request({"type": "remove", "to": to, "ban": ban})

    async def set_role(self, to: str, role: str) -> None:
        """Make ``to`` a ``host``, ``participant`` or ``observer`` (never a ``bot``)."""
        await self._request({"type": "set-role", "to": to, "role": role})

    async def invite_to_stage(self, to: str) -> None:
        """Bring someone from the audience on stage (they may publish): ``set-role``
        participant (docs/protocol.md, "Stage and audience")."""
        await self.set_role(to, "participant")

    async def move_to_audience(self, to: str) -> None:
        """Send someone back to the audience: their media stops (``set-role`` observer)."""
        await self.set_role(to, "observer")

    async def lower_hand(self, to: str) -> None:
        """Lower someone else's raised hand."""
        await self._request({"type": "lower-hand", "to": to})

    async def update_settings(
        self,
        *,
        locked: bool | None = None,
        lobby: bool | None = None,
        password: str | None = None,
        max_participants: int | None = None,
        stage: bool | Literal["auto"] | None = None,
        chat: Literal["everyone", "stage", "questions"] | None = None,
    ) -> None:
        """Change the room's settings (``password=""`` clears it); absent ones stay.

        ``stage``: stage mode on, off, or ``"auto"`` (by the room's size); ``chat``: who
        may chat (docs/protocol.md, "Stage and audience")."""
        message: dict[str, Any] = {"type": "room-settings"}
        for key, value in (
            ("locked", locked),
            ("lobby", lobby),
            ("password", password),
            ("max_participants", max_participants),
            ("stage", stage),
            ("chat", chat),
        ):
            if value is not None:
                message[key] = value
        await self._request(message)

    async def admit(self, to: str) -> None:
        """Let someone waiting in the lobby in (``meeting.lobby`` lists them)."""
        await self._request({"type": "admit", "to": to})

    async def deny(self, to: str) -> None:
        """Turn away someone waiting in the lobby."""
        await self._request({"type": "deny", "to": to})

    async def end(self) -> None:
        """End the meeting for everyone."""
        await self._request({"type": "end-meeting"})

    async def record(self, action: str = "start") -> None:
        """Start (``"start"``) or stop (``"stop"``) recording the room (SFU rooms; the
        ``room-updated`` event then says ``recording``; docs/recording.md)."""
        await self._request({"type": "record", "action": action})

    # -- media (SFU rooms) -----------------------------------------------------------

    def _sfu(self) -> SfuMedia:
        self._check_open()
        if self.media_mode != "sfu":
            raise MediaError(
                f"room {self.room} is a mesh room (parley serve --media mesh): the server"
                " forwards no media, so the SDK cannot publish or subscribe"
            )
        if self._media is None:
            from .media import SfuMedia

            self._media = SfuMedia(self)
        return self._media

    async def publish(self, track: MediaStreamTrack, *, label: str | None = None) -> None:
        """Send an aiortc track to the room through the SFU, e.g.
        ``MediaPlayer("file.ogg").audio``.  ``label``: ``"mic"`` (default for audio),
        ``"camera"`` (default for video) or ``"screen"``; publishing another track with
        the same label replaces it.  Returns once the media connection is up."""
        await self._sfu().publish(track, label)

    async def unpublish(self) -> None:
        """Stop sending every published track."""
        await self._sfu().unpublish()

    async def subscribe(self, participant_id: str) -> ParticipantMedia:
        """Receive one participant's media: ``.audio``, ``.video`` (camera) and
        ``.screen`` are aiortc tracks (``await track.recv()``, or hand them to a
        ``MediaRecorder``), fed whenever the server forwards that participant's media;
        they end when the participant leaves."""
        return await self._sfu().subscribe(participant_id)


class _Connector:
    """What :func:`connect` returns: ``async with`` it, or ``await`` it."""

    def __init__(self, meeting: Meeting) -> None:
        self.meeting = meeting

    def __await__(self) -> Generator[Any, None, Meeting]:
        return self._open().__await__()

    async def _open(self) -> Meeting:
        await self.meeting._start()
        return self.meeting

    async def __aenter__(self) -> Meeting:
        return await self._open()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.meeting.leave()


def connect(
    url: str,
    room: str,
    name: str,
    *,
    token: str | None = None,
    password: str | None = None,
    role: str | None = None,
    ssl: ssl_module.SSLContext | bool = True,
    reconnect_for: float = 120.0,
) -> _Connector:
    """Join ``room`` on the Parley server at ``url`` as ``name``.

    ``async with connect(...) as meeting:`` leaves at the end of the block;
    ``meeting = await connect(...)`` leaves with ``await meeting.leave()``.

    * ``url``: ``http(s)://HOST[:PORT]`` (the WebSocket is ``ws(s)://HOST[:PORT]/ws``)
      or a ``ws(s)://`` URL;
    * ``token``: a join token (``parley token``; its ``name`` and ``role`` win);
    * ``password``: the room password, when it has one;
    * ``role``: the role this client needs (e.g. ``"bot"``): joining as anything else
      raises :class:`~parley.client.errors.Forbidden` (the server gives roles, from
      the token or as the room's first participant; this only checks);
    * ``ssl``: an ``ssl.SSLContext`` for ``https``/``wss`` (e.g. a private CA), or False
      to skip verification;
    * ``reconnect_for``: seconds to keep trying after the connection drops.

    Waits in the lobby until a host admits this client.  Raises a
    :class:`~parley.client.errors.JoinRefused` subclass for a refused join,
    :class:`~parley.client.errors.IncompatibleServer` for another protocol version, and
    :class:`~parley.client.errors.ConnectionLost` when the server cannot be reached.
    """
    return _Connector(
        Meeting(
            url,
            room,
            name,
            token=token,
            password=password,
            role=role,
            ssl=ssl,
            reconnect_for=reconnect_for,
        )
    )


__all__ = ["HISTORY_KEPT", "PROTOCOL_VERSION", "JoinRefused", "Meeting", "connect"]
