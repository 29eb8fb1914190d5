"""The sockets this node holds, by participant: what effects do to a local socket."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

from ..core import protocol as p
from ..core.effects import lobby_key
from ..core.protocol import CloseCode
from .frames import text_frame
from .hub import Connection, Hub
from .session import Session

log = logging.getLogger(__name__)

Spawn = Callable[[Coroutine[Any, Any, Any]], None]


class LocalSessions:
    """Every open WebSocket's session, and the acts on one participant's socket.

    Each act answers whether the participant's socket is here: if not, it is on
    another node (or gone), and the caller asks the cluster instead.
    """

    def __init__(self, hub: Hub, spawn: Spawn) -> None:
        self.hub = hub
        self._spawn = spawn
        self._by_conn: dict[Connection, Session] = {}

    def __len__(self) -> int:
        return len(self._by_conn)

    def __iter__(self) -> Iterator[Session]:
        return iter(list(self._by_conn.values()))

    def add(self, session: Session) -> None:
        self._by_conn[session.conn] = session
        self.hub.connections.add(session.conn)

    def remove(self, session: Session) -> None:
        del self._by_conn[session.conn]

    def of(self, pid: str) -> Session | None:
        conn = self.hub.by_pid.get(pid)
        return self._by_conn.get(conn) if conn is not None else None

    def send(self, pid: str, payload: bytes) -> bool:
        session = self.of(pid)
        if session is None:
            return False
        session.send(payload)
        return True

    def tell(self, room: str, message: p.ServerMessage) -> None:
        """A frame for this node's sockets in the room only (other nodes tell theirs)."""
        self.hub.deliver(room, text_frame(p.encode(message)), None, None)

    def disconnect(self, pid: str, code: int, reason: str) -> bool:
        session = self.of(pid)
        if session is None:
            return False
        session.final = True
        self.hub.flush_one(session.conn)
        self.hub.detach(session.conn)
        self._spawn(session.close(code, reason))
        return True

    def let_in(self, pid: str) -> bool:
        """Move a waiting socket from the lobby into its room and welcome it."""
        session = self.of(pid)
        if session is None or session.room is None:
            return False
        conn = session.conn
        self.hub.flush_one(conn)
        self.hub.detach(conn)
        conn.ready = False
        self.hub.attach(conn, session.room, pid)
        self.hub.connections.add(conn)
        self._spawn(session.welcome(resumed=False))
        return True

    def to_lobby(self, pid: str) -> bool:
        """Move a participant's socket from its room to the room's lobby, told to wait."""
        session = self.of(pid)
        if session is None or session.room is None:
            return False
        conn = session.conn
        self.hub.flush_one(conn)
        self.hub.detach(conn)
        self.hub.attach(conn, lobby_key(session.room), pid)
        session.send(p.encode(p.LobbyWait(room=session.room)))
        return True

    def move(self, pid: str, room: str) -> bool:
        """The participant moved to another room of its meeting (a breakout, or back):
        its socket follows and is welcomed there, as if it had joined it."""
        session = self.of(pid)
        if session is None or session.room is None:
            return False
        session.room = room
        conn = session.conn
        self.hub.flush_one(conn)  # what the old room sent goes out first
        self.hub.detach(conn)
        conn.ready = False
        self.hub.attach(conn, room, pid)
        self.hub.connections.add(conn)
        self._spawn(session.welcome(resumed=True))
        return True

    def renew_token(self, pid: str, role: str) -> None:
        session = self.of(pid)
        if session is not None:
            session.renew_token(role)

    def replace(self, pid: str) -> None:
        """A resume took over ``pid``: retire its old socket without announcing a leave."""
        old = self.hub.by_pid.get(pid)
        if old is None:
            return
        session = self._by_conn.get(old)
        self.hub.detach(old)
        if session is not None:
            session.final = True
            self._spawn(session.close(CloseCode.REPLACED, "replaced by a newer connection"))
