"""This node's end of the media relay: one UDP socket, the rooms, who may talk to it.

:class:`MediaRelay` binds ``--relay-ip``:``--relay-port``, seals what the rooms send
(:mod:`.wire`: node id, epoch, counter, HMAC tag) and opens what arrives; it receives
on that socket (on Linux all waiting datagrams in one system call: :mod:`.batch_recv`;
elsewhere through the event loop's datagram endpoint) and sends from one UDP socket
per peer, bound to ``--relay-ip`` (an ephemeral port) and connected to the peer (no
address to resolve per datagram).  A datagram is
accepted only if its tag verifies with the cluster's relay secret, it is no replay,
its node is a current peer (:meth:`set_peers`: the cluster's directory of relay
addresses) sending from that peer's address, and its room is open here; anything else is
dropped, counted per reason (:attr:`refused`) and logged at most once per
``LOG_EVERY`` seconds per reason (:class:`RefusalLog`).  Nothing is ever answered to a
refused datagram.

Per room (:meth:`open_room`, the SFU room's router) a
:class:`~parley.sfu.relay.outbound.RelayOut` sends the streams published here to the
room's *targets* (:meth:`set_targets`), and a :class:`~parley.sfu.relay.inbound.RelayIn`
puts the other nodes' publishers into the router.  :meth:`tick` (every second)
re-describes and expires.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ..forwarder import Router
from . import batch_recv
from .inbound import RelayIn
from .outbound import RelayOut
from .wire import (
    DESCRIBE,
    FEEDBACK,
    MAX_DATAGRAM,
    RTCP,
    RTP,
    Key,
    Opener,
    Refused,
    ReplayWindow,
    decode_tracks,
    fields,
    relay_key,
    seal_fields,
)

__all__ = ["MediaRelay", "RefusalLog", "RoomRelay"]

log = logging.getLogger(__name__)

#: Encoded (room, participant) fields kept for sealing (each stream's, reused per packet).
MAX_FIELDS = 4096


class RefusalLog:
    """Refused datagrams, logged at most once per ``every`` seconds per reason (with how
    many were dropped since): a flood costs a counter, not a log line each."""

    def __init__(self, every: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.every = every
        self.clock = clock
        self._last: dict[str, float] = {}
        self._since: Counter[str] = Counter()

    def refused(self, reason: str, node: str, address: str) -> bool:
        """Note one refusal; True if it was logged."""
        self._since[reason] += 1
        now = self.clock()
        if now - self._last.get(reason, float("-inf")) < self.every:
            return False
        self._last[reason] = now
        count = self._since.pop(reason)
        log.warning(
            "relay: datagram refused (%s) from %s (claims node %r); %d refused for this"
            " reason since the last report",
            reason,
            address,
            node[:64],
            count,
        )
        return True


@dataclass(slots=True)
class RoomRelay:
    out: RelayOut
    inbound: RelayIn


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, relay: MediaRelay) -> None:
        self.relay = relay
        # each datagram straight to the relay (one Python call less per packet); the
        # address is (host, port, ...), an AF_INET or AF_INET6 one
        self.datagram_received = relay.received  # type: ignore[method-assign,assignment]

    def error_received(self, exc: Exception) -> None:
        log.debug("relay socket: %s", exc)


class MediaRelay:
    """This node's relay socket and rooms."""

    def __init__(
        self,
        node: str,
        secret: str,
        host: str,
        port: int,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not secret:
            raise ValueError("the media relay needs a secret")
        self.node = node
        self.key = Key(relay_key(secret))
        self._opener = Opener(self.key)
        self._fields: dict[tuple[str, str], bytes] = {}
        self.host, self.port = host, port
        self.clock = clock
        self.epoch = time.time_ns() // 1_000_000  # a restarted process's is higher
        self._counter = 0
        self.peers: dict[str, tuple[str, int]] = {}  # node -> its relay address
        self.rooms: dict[str, RoomRelay] = {}
        self.replays = ReplayWindow()
        self.refused: Counter[str] = Counter()
        self.refusal_log = RefusalLog(clock=clock)
        self.accepted = 0
        self.unrouted = 0  # accepted, for a room not open here (closed a moment ago: normal)
        self.transport: asyncio.DatagramTransport | None = None
        #: the socket's reader when started on Linux (recvmmsg: :mod:`.batch_recv`)
        self.receiver: batch_recv.BatchReceiver | None = None
        #: Per peer, what sends to it: once started, a UDP socket of its own connected to
        #: the peer (bound to ``host``, so the peer sees this node's address), which
        #: saves resolving the address on every send; made at the first send.
        self._senders: dict[str, Callable[[bytes], object]] = {}
        self._sockets: dict[str, socket.socket] = {}
        self._own_sockets = False
        self.send_errors = 0  # datagrams not sent (socket buffer full, peer's port closed)

    @property
    def address(self) -> str:
        """Where the other nodes send to: ``host:port`` (the port actually bound)."""
        return f"{self.host}:{self.port}"

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        if batch_recv.available():
            # datagrams read in batches (one system call for all those waiting)
            family, _, _, _, address = (await loop.getaddrinfo(
                self.host, self.port, type=socket.SOCK_DGRAM))[0]  # fmt: skip
            sock = socket.socket(family, socket.SOCK_DGRAM)
            try:
                sock.setblocking(False)
                sock.bind(address)
                self.receiver = batch_recv.BatchReceiver(sock, self.received, MAX_DATAGRAM)
            except BaseException:
                sock.close()
                raise
            self.receiver.start(loop)
            self.port = int(sock.getsockname()[1])
        else:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _Protocol(self), local_addr=(self.host, self.port)
            )
            self.transport = transport
            self.port = int(transport.get_extra_info("sockname")[1])
        self._own_sockets = True
        log.info("relay: media relay on udp %s", self.address)

    def close(self) -> None:
        for room in list(self.rooms):
            self.close_room(room)
        for node in list(self._senders):
            self._drop_sender(node)
        if self.transport is not None:
            self.transport.close()
            self.transport = None
        if self.receiver is not None:
            self.receiver.close()
            self.receiver = None
        self._own_sockets = False

    # -- membership ------------------------------------------------------------------
    def set_peers(self, peers: dict[str, tuple[str, int]]) -> None:
        """The relay addresses of the cluster's live nodes (this one left out)."""
        peers = {n: a for n, a in peers.items() if n != self.node}
        for node in list(self._senders):
            if peers.get(node) != self.peers.get(node):
                self._drop_sender(node)
        self.peers = peers

    def open_room(self, room: str, router: Router) -> RoomRelay:
        relay = self.rooms.get(room)
        if relay is None or relay.out.router is not router:
            if relay is not None:
                self.close_room(room)
            relay = self.rooms[room] = RoomRelay(
                RelayOut(room, router, self), RelayIn(room, router, self)
            )
            router.set_relay(relay.out)
        return relay

    def close_room(self, room: str) -> None:
        relay = self.rooms.pop(room, None)
        if relay is not None:
            relay.out.router.set_relay(None)
            relay.inbound.close()

    def rooms_served(self) -> list[str]:
        return list(self.rooms)

    def set_targets(self, room: str, nodes: Iterable[str]) -> None:
        relay = self.rooms.get(room)
        if relay is not None:
            relay.out.set_targets(n for n in nodes if n != self.node and n in self.peers)

    def tracks_changed(self, room: str, pid: str) -> None:
        relay = self.rooms.get(room)
        if relay is not None:
            relay.out.describe(pid)

    def tick(self) -> None:
        """Every second: describe our publishers again, drop the ones no longer described."""
        now = self.clock()
        for relay in list(self.rooms.values()):
            relay.out.describe_all()
            relay.inbound.expire(now)

    # -- the wire (outbound.Wire) ------------------------------------------------------
    def seal(self, kind: int, room: str, pid: str, payload: bytes | bytearray) -> bytes:
        self._counter += 1
        encoded = self._fields.get((room, pid))
        if encoded is None:
            if len(self._fields) >= MAX_FIELDS:
                self._fields.clear()
            encoded = self._fields[room, pid] = fields(self.node, room, pid)
        return seal_fields(self.key, kind, self.epoch, self._counter, encoded, payload)

    def send(self, node: str, datagram: bytes) -> None:
        sender = self._senders.get(node)
        if sender is None:
            sender = self._sender(node)
            if sender is None:
                return
        try:
            sender(datagram)
        except OSError:  # a full buffer, or an ICMP "port unreachable" (the peer restarts)
            self.send_errors += 1

    def _sender(self, node: str) -> Callable[[bytes], object] | None:
        address = self.peers.get(node)
        transport = self.transport
        if address is None or (transport is None and not self._own_sockets):
            return None
        sender: Callable[[bytes], object]
        if not self._own_sockets:  # not started (a transport handed in)
            assert transport is not None

            def sender(data: bytes) -> None:
                transport.sendto(data, address)

        else:
            family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_DGRAM)
            try:
                sock.setblocking(False)
                sock.bind((self.host, 0))
                sock.connect(address)
            except OSError as exc:
                sock.close()
                log.warning("relay: cannot send to %s at %s: %s", node, address, exc)
                return None
            self._sockets[node] = sock
            sender = sock.send
        self._senders[node] = sender
        return sender

    def _drop_sender(self, node: str) -> None:
        self._senders.pop(node, None)
        sock = self._sockets.pop(node, None)
        if sock is not None:
            sock.close()

    # -- receiving ---------------------------------------------------------------------
    def received(self, data: bytes, address: tuple[Any, ...]) -> None:
        """One datagram from ``address``: checked (tag, fields, peer and its address,
        replay window), then handed to its room (the hot path: one call to open it)."""
        try:
            kind, epoch, counter, (node, room, pid), payload = self._opener.open(data)
            peer = self.peers.get(node)
            if peer is None or node == self.node:
                raise Refused("unknown node", node)
            if peer[0] != address[0]:
                raise Refused("address", node)
            if not self.replays.accept(node, epoch, counter):
                raise Refused("replay", node)
        except Refused as exc:
            self.refused[exc.reason] += 1
            self.refusal_log.refused(exc.reason, exc.node, f"{address[0]}:{address[1]}")
            return
        self.accepted += 1
        relay = self.rooms.get(room)
        if relay is None:
            self.unrouted += 1
            return
        now = self.clock()
        if kind == RTP:
            relay.inbound.on_rtp(node, pid, payload, now)
        elif kind == FEEDBACK:
            relay.out.feedback(node, pid, payload, now)
        elif kind == RTCP:
            relay.inbound.on_rtcp(node, pid, payload, now)
        elif kind == DESCRIBE:
            try:
                tracks = decode_tracks(payload)
            except Refused as exc:
                self.refused[exc.reason] += 1
                self.refusal_log.refused(exc.reason, node, address[0])
                return
            relay.inbound.on_describe(node, pid, tracks, now)

    def stats(self) -> dict[str, int]:
        sent = sum(r.out.sent for r in self.rooms.values())
        return {
            "relay_datagrams_sent": sent,
            "relay_datagrams_accepted": self.accepted,
            "relay_datagrams_refused": sum(self.refused.values()),
        }
