"""The SFU's media sockets: ICE host candidates on fixed UDP ports, each socket shared
by several ICE connections (demultiplexed here), and the public address behind 1:1 NAT.

Used with ``--media-port`` / ``--media-public-ip`` (:class:`MediaSockets`).  It
overrides aioice's per-connection candidate gathering; the internals it relies on are
checked by :func:`.hooks.check_compat` (see the package docstring).
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import logging
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any, cast

import aioice.candidate
import aioice.ice
import aioice.stun
import aiortc

from .hooks import check_compat

__all__ = ["MediaPortsUnavailable", "MediaSockets"]

log = logging.getLogger(__name__)

Addr = tuple[str, int]
#: A port that failed to bind (another process holds it) is retried after this long,
#: or at once when no port of the range is bound at all.
RETRY_FAILED_PORT = 30.0
#: Receive buffer asked for each shared socket (the kernel caps it at net.core.rmem_max).
SHARED_SOCKET_RCVBUF = 4 * 1024 * 1024
#: First byte of a STUN message (RFC 7983: 0-3 STUN, 20-63 DTLS, 128-191 RTP/RTCP).
_STUN_FIRST_BYTE_MAX = 3


def _why(exc: OSError) -> str:
    """'Address already in use' (uvloop wraps the OSError that says it)."""
    for e in (exc, exc.__cause__):
        if isinstance(e, OSError) and e.strerror:
            return e.strerror
    return str(exc)


class MediaPortsUnavailable(RuntimeError):
    """No UDP port of ``--media-port`` could be bound (other processes hold them all)."""


class _SharedTransport(asyncio.DatagramTransport):
    """What one ICE connection's ``StunProtocol`` sees of a shared socket.

    ``sendto`` is the real socket's own (no extra call per packet); ``close`` only
    detaches this connection from the socket.
    """

    def __init__(self, shared: _SharedSocket, protocol: aioice.ice.StunProtocol) -> None:
        super().__init__(extra={"sockname": shared.sockname, "socket": None})
        assert shared.transport is not None
        self._shared = shared
        self._protocol = protocol
        self._closing = False
        self.sendto = shared.transport.sendto  # type: ignore[method-assign]

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        self._shared.remove(self._protocol)
        asyncio.get_running_loop().call_soon(self._protocol.connection_lost, None)

    def abort(self) -> None:
        self.close()

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol


class _SharedSocket(asyncio.DatagramProtocol):
    """One bound UDP socket carrying the host candidates of several ICE connections.

    Demultiplexing: a STUN request goes to the connection whose local ufrag is the first
    half of its USERNAME and whose password verifies its MESSAGE-INTEGRITY, and teaches
    the socket that its source address belongs to that connection; a STUN response goes
    to the connection that has its transaction (and, if a success, teaches the address
    too); everything else (DTLS, SRTP, SRTCP) goes by source address.  Datagrams from
    addresses no connection has verified are dropped.
    """

    def __init__(self, address: str, port: int, on_lost: Callable[[_SharedSocket], None]) -> None:
        self.address = address
        self.port = port
        self.sockname: tuple[Any, ...] = (address, port)
        self.transport: asyncio.DatagramTransport | None = None
        self.members: dict[aioice.ice.StunProtocol, set[Addr]] = {}
        self.by_addr: dict[Addr, aioice.ice.StunProtocol] = {}
        self.by_ufrag: dict[str, list[aioice.ice.StunProtocol]] = {}
        self.unrouted = 0
        self._on_lost = on_lost

    @property
    def load(self) -> int:
        return len(self.members)

    # -- asyncio.DatagramProtocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)
        self.sockname = tuple(self.transport.get_extra_info("sockname"))

    def connection_lost(self, exc: Exception | None) -> None:
        self._on_lost(self)
        for protocol in list(self.members):
            protocol.connection_lost(exc)
        self.members.clear()
        self.by_addr.clear()
        self.by_ufrag.clear()

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        source: Addr = (addr[0], addr[1])
        protocol = self.by_addr.get(source)
        if not data or data[0] > _STUN_FIRST_BYTE_MAX:
            # media (DTLS, SRTP): what StunProtocol.datagram_received does with a datagram
            # that is not STUN, without first trying to parse it as STUN
            if protocol is not None:
                protocol.receiver.data_received(data, protocol.local_candidate.component)
            else:
                self.unrouted += 1
            return
        protocol = self._route_stun(data, source, protocol)
        if protocol is not None:
            protocol.datagram_received(data, source)
        else:
            self.unrouted += 1

    def error_received(self, exc: Exception) -> None:
        log.debug("sfu: UDP %s:%d error: %s", self.address, self.port, exc)

    # -- members
    def add(self, protocol: aioice.ice.StunProtocol) -> None:
        ufrag = protocol.receiver.local_username
        self.members[protocol] = set()
        self.by_ufrag.setdefault(ufrag, []).append(protocol)
        protocol.connection_made(_SharedTransport(self, protocol))

    def remove(self, protocol: aioice.ice.StunProtocol) -> None:
        for addr in self.members.pop(protocol, ()):
            if self.by_addr.get(addr) is protocol:
                del self.by_addr[addr]
        ufrag = protocol.receiver.local_username
        same = self.by_ufrag.get(ufrag, [])
        if protocol in same:
            same.remove(protocol)
        if not same:
            self.by_ufrag.pop(ufrag, None)

    def _learn(self, addr: Addr, protocol: aioice.ice.StunProtocol) -> None:
        old = self.by_addr.get(addr)
        if old is protocol:
            return
        if old is not None:
            self.members.get(old, set()).discard(addr)
            log.info(
                "sfu: %s:%d now talks to another ICE connection on UDP %s port %d",
                *addr,
                self.address,
                self.port,
            )
        self.by_addr[addr] = protocol
        self.members[protocol].add(addr)

    def _route_stun(
        self, data: bytes, addr: Addr, known: aioice.ice.StunProtocol | None
    ) -> aioice.ice.StunProtocol | None:
        try:
            message = aioice.stun.parse_message(data)
        except ValueError:
            return known
        cls = message.message_class
        if cls == aioice.stun.Class.REQUEST:
            username = message.attributes.get("USERNAME")
            if not isinstance(username, str):
                return known  # aioice answers 400 Bad Request
            ufrag = username.partition(":")[0]
            if known is not None and known.receiver.local_username == ufrag:
                return known
            for protocol in self.by_ufrag.get(ufrag, ()):
                key = protocol.receiver.local_password.encode("utf8")
                if message.check_message_integrity(key):
                    self._learn(addr, protocol)
                    return protocol
            return None  # not for any connection here: no answer to strangers
        if cls in (aioice.stun.Class.RESPONSE, aioice.stun.Class.ERROR):
            tid = message.transaction_id
            owner = known if known is not None and tid in known.transactions else None
            if owner is None:
                owner = next((p for p in self.members if tid in p.transactions), None)
            if owner is not None and cls == aioice.stun.Class.RESPONSE:
                self._learn(addr, owner)
            return owner
        return known  # indications (keepalives) go by address


class MediaSockets:
    """The SFU's media sockets: fixed UDP ports and the address advertised behind NAT.

    ``ports=(low, high)``: every host candidate of the SFU's ICE connections is on a UDP
    port of that range.  Each port is one socket per local address, *shared*: a new
    connection takes a port no connection uses yet while there is one, then shares the
    least used.  So a range never runs out, and a single port serves every connection
    (demultiplexed by :class:`_SharedSocket`).  If no port of the range can be bound
    (other processes hold them), gathering raises :class:`MediaPortsUnavailable`.

    ``public_ip``: for a host behind 1:1 NAT, each host candidate of the same address
    family also gets a server-reflexive candidate ``public_ip:port`` (related address
    the host candidate): the address the NAT maps to this socket, as STUN would find.
    The private host candidate stays, so clients on the same network still reach the
    server directly; ICE picks whichever pair works.

    :meth:`attach` installs this on a peer connection's ICE connections; it must be
    called after its transceivers exist and before ``setLocalDescription`` (gathering).
    """

    def __init__(self, ports: tuple[int, int] | None = None, public_ip: str | None = None) -> None:
        check_compat()
        if ports is not None and not 1 <= ports[0] <= ports[1] <= 65535:
            raise ValueError(f"bad UDP port range {ports}")
        self.ports = ports
        self.public_ip = ipaddress.ip_address(public_ip).compressed if public_ip else None
        self._sockets: dict[str, dict[int, _SharedSocket]] = {}
        self._failed: dict[tuple[str, int], float] = {}
        self._lock = asyncio.Lock()

    def describe(self) -> str:
        parts = []
        if self.ports is not None:
            low, high = self.ports
            parts.append(f"UDP port {low}" if low == high else f"UDP ports {low}-{high}")
        if self.public_ip:
            parts.append(f"public address {self.public_ip}")
        return ", ".join(parts) or "any UDP port"

    def sockets(self) -> list[_SharedSocket]:
        return [s for by_port in self._sockets.values() for s in by_port.values()]

    def attach(self, pc: aiortc.RTCPeerConnection) -> None:
        """Gather this peer connection's candidates through these sockets (idempotent)."""
        dtls = [t.receiver.transport for t in pc.getTransceivers()]
        if pc.sctp is not None:
            dtls.append(pc.sctp.transport)
        for transport in dtls:
            connection = transport.transport._connection
            if "get_component_candidates" in vars(connection):
                continue  # already attached (a renegotiation reuses the transport)
            original = connection.get_component_candidates
            connection.get_component_candidates = functools.partial(  # type: ignore[method-assign]
                self._gather, connection, original
            )

    def close(self) -> None:
        """Close every shared socket (their connections are closed by then)."""
        for shared in self.sockets():
            if shared.transport is not None:
                shared.transport.close()
        self._sockets.clear()

    # -- gathering
    async def _gather(
        self,
        connection: aioice.ice.Connection,
        original: Callable[..., Awaitable[list[aioice.Candidate]]],
        component: int,
        addresses: list[str],
        timeout: int = 5,  # noqa: ASYNC109 - aioice's signature, passed on to it
    ) -> list[aioice.Candidate]:
        if self.ports is None:
            candidates = await original(component=component, addresses=addresses, timeout=timeout)
        else:
            candidates = await self._host_candidates(connection, component, addresses)
            # relay candidates (a TURN server) as aioice does; no STUN query is made
            candidates += await original(component=component, addresses=[], timeout=timeout)
        if self.public_ip:
            candidates += self._public_candidates(candidates)
        return candidates

    async def _host_candidates(
        self, connection: aioice.ice.Connection, component: int, addresses: list[str]
    ) -> list[aioice.Candidate]:
        candidates: list[aioice.Candidate] = []
        protocols: list[aioice.ice.StunProtocol] = []
        errors: list[str] = []
        async with self._lock:
            for address in addresses:
                try:
                    shared = await self._socket_for(address)
                except MediaPortsUnavailable as exc:
                    errors.append(str(exc))
                    continue
                protocol = aioice.ice.StunProtocol(connection)
                shared.add(protocol)
                host, port = str(shared.sockname[0]), int(shared.sockname[1])
                protocol.local_candidate = aioice.Candidate(
                    foundation=aioice.candidate.candidate_foundation("host", "udp", host),
                    component=component,
                    transport="udp",
                    priority=aioice.candidate.candidate_priority(component, "host"),
                    host=host,
                    port=port,
                    type="host",
                )
                protocols.append(protocol)
                candidates.append(protocol.local_candidate)
        connection._protocols += protocols
        if errors and not protocols:
            raise MediaPortsUnavailable("; ".join(errors))
        for error in errors:
            log.warning("sfu: %s", error)
        return candidates

    async def _socket_for(self, address: str) -> _SharedSocket:
        """A socket on ``address``: an unused one, else a new port, else the least used."""
        assert self.ports is not None
        mine = self._sockets.setdefault(address, {})
        idle = min(mine.values(), key=lambda s: (s.load, s.port), default=None)
        if idle is not None and idle.load == 0:
            return idle
        low, high = self.ports
        now = time.monotonic()
        error: tuple[int, OSError] | None = None
        for port in range(low, high + 1):
            if port in mine:
                continue
            failed = self._failed.get((address, port))
            if mine and failed is not None and now - failed < RETRY_FAILED_PORT:
                continue
            try:
                return await self._bind(address, port)
            except OSError as exc:
                self._failed[(address, port)] = now
                error = (port, exc)
        if idle is not None:
            return idle
        ports = str(low) if low == high else f"{low}-{high}"
        detail = f" (port {error[0]}: {_why(error[1])})" if error else ""
        raise MediaPortsUnavailable(
            f"no UDP port of --media-port {ports} can be bound on {address}{detail}"
        )

    async def _bind(self, address: str, port: int) -> _SharedSocket:
        loop = asyncio.get_running_loop()
        _, shared = await loop.create_datagram_endpoint(
            lambda: _SharedSocket(address, port, self._lost), local_addr=(address, port)
        )
        sock = shared.transport.get_extra_info("socket") if shared.transport else None
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SHARED_SOCKET_RCVBUF)
            except OSError:  # pragma: no cover - the kernel refused the size
                pass
        self._sockets.setdefault(address, {})[port] = shared
        self._failed.pop((address, port), None)
        log.info("sfu: media socket on UDP %s port %d", address, port)
        return shared

    def _lost(self, shared: _SharedSocket) -> None:
        mine = self._sockets.get(shared.address, {})
        if mine.get(shared.port) is shared:
            del mine[shared.port]

    def _public_candidates(self, candidates: list[aioice.Candidate]) -> list[aioice.Candidate]:
        assert self.public_ip is not None
        public = ipaddress.ip_address(self.public_ip)
        seen = {(c.host, c.port) for c in candidates}
        extra: list[aioice.Candidate] = []
        for c in candidates:
            if c.type != "host":
                continue
            try:
                if ipaddress.ip_address(c.host).version != public.version:
                    continue
            except ValueError:
                continue
            if (self.public_ip, c.port) in seen:
                continue
            seen.add((self.public_ip, c.port))
            extra.append(
                aioice.Candidate(
                    foundation=aioice.candidate.candidate_foundation("srflx", "udp", c.host),
                    component=c.component,
                    transport="udp",
                    priority=aioice.candidate.candidate_priority(c.component, "srflx"),
                    host=self.public_ip,
                    port=c.port,
                    type="srflx",
                    related_address=c.host,
                    related_port=c.port,
                )
            )
        return extra
