"""The ONE module of Parley that touches private attributes of aiortc and aioice.

Tested against aiortc 1.16.x / aioice 0.13.x / pylibsrtp 1.0.x (pinned in
pyproject: ``aiortc>=1.16,<1.17``).  ``tests/sfu/test_sfu_aiortc_hooks.py`` asserts
every attribute used here, so an upgrade that moves them fails loudly there instead of
silently decoding media again.  :func:`check_compat` does the same check at runtime.

What is hooked, and why (see ``bench/sfu`` RESULTS, "How aiortc's pieces fit an SFU"):

* ``RTCDtlsTransport._handle_rtp_data`` / ``_handle_rtcp_data`` (instance overrides):
  plaintext RTP/RTCP bytes right after SRTP unprotect, before ``RtpPacket.parse``,
  the jitter buffer and the decoders.  Our callbacks are synchronous.
* ``RTCDtlsTransport._tx_srtp`` + ``RTCIceTransport._connection._nominated``: to
  protect and ``sendto`` forwarded packets synchronously (no coroutine per packet).
* ``RTCRtpSender._run_rtp`` / ``_run_rtcp`` (instance overrides): the SFU's senders
  never pull a track, never encode, and do not send their own (empty) sender reports;
  the forwarder sends RTP and RTCP for them.
* ``RTCRtpReceiver.receive`` (instance override): the publisher-side receivers start
  no decoder thread and no RTCP task; the forwarder reports to publishers itself.
* pylibsrtp ``Session._srtp``/``_cdata``/``_buffer`` + ``pylibsrtp._binding.lib``:
  :func:`fast_rtp_protect` calls ``srtp_protect`` without the per-call wrapper.
* ``RTCRtpTransceiver._codecs``: the codecs negotiated by ``setRemoteDescription``
  (:func:`restrict_negotiated_codecs` keeps VP8 or H.264 / Opus, nothing else).
* ``RTCRtpSender._ssrc`` / ``_rtx_ssrc``: the SSRCs announced in our SDP.
* ``aioice.ice.get_host_addresses`` (module function): which local addresses ICE
  gathers (aioice skips 127.0.0.1 and otherwise uses every interface): only
  ``--media-ip``'s (:func:`restrict_host_addresses`), or aioice's plus 127.0.0.1
  (:func:`include_loopback`, what ``parley serve`` does without ``--media-ip``).
* ``aioice.ice.Connection.get_component_candidates`` (instance override, only on the
  SFU's own connections, see :class:`MediaSockets`) + ``Connection._protocols`` +
  ``StunProtocol.receiver``/``transactions``/``local_candidate``: host candidates on
  UDP ports from ``--media-port``, sockets shared by several ICE connections
  (demultiplexed by STUN USERNAME and remote address), and a server-reflexive
  candidate for ``--media-public-ip``.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
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
import pylibsrtp
from aiortc import RTCDtlsTransport, RTCRtpReceiver, RTCRtpSender, RTCRtpTransceiver
from pylibsrtp._binding import ffi as _srtp_ffi
from pylibsrtp._binding import lib as _srtp_lib

__all__ = [
    "AiortcIncompatible",
    "MediaPortsUnavailable",
    "MediaSockets",
    "RawMediaTransport",
    "SUPPORTED_AIORTC",
    "check_compat",
    "fast_rtp_protect",
    "include_loopback",
    "make_receiver_passive",
    "make_sender_passive",
    "restrict_host_addresses",
    "restrict_negotiated_codecs",
    "sender_ssrcs",
]

log = logging.getLogger(__name__)

SUPPORTED_AIORTC = (">=1.16", "<1.17")

RtpCallback = Callable[[bytes, float], None]


class AiortcIncompatible(RuntimeError):
    """The installed aiortc/aioice no longer has what these hooks rely on."""


def check_compat() -> None:
    """Raise :class:`AiortcIncompatible` if an attribute these hooks use is missing."""
    missing: list[str] = []
    for cls, names in (
        (RTCDtlsTransport, ("_handle_rtp_data", "_handle_rtcp_data", "_send_rtp", "_recv_next")),
        (RTCRtpSender, ("_run_rtp", "_run_rtcp", "send", "stop")),
        (RTCRtpReceiver, ("receive", "stop")),
        (aioice.ice.Connection, ("sendto", "data_received")),
        (aioice.ice.StunProtocol, ("send_data",)),
        # MediaSockets
        (
            aioice.ice.Connection,
            ("gather_candidates", "get_component_candidates", "local_username", "local_password"),
        ),
        (
            aioice.ice.StunProtocol,
            ("connection_made", "connection_lost", "datagram_received", "close", "request"),
        ),
        (aioice.stun.Message, ("check_message_integrity",)),
    ):
        for name in names:
            if not hasattr(cls, name):
                missing.append(f"{cls.__name__}.{name}")
    for module, names in (
        (aioice.ice, ("get_host_addresses",)),
        (aioice.stun, ("parse_message",)),
        (aioice.candidate, ("candidate_foundation", "candidate_priority")),
    ):
        for name in names:
            if not callable(getattr(module, name, None)):
                missing.append(f"{module.__name__}.{name}")
    gather = getattr(aioice.ice.Connection, "get_component_candidates", None)
    if gather is not None and list(inspect.signature(gather).parameters) != [
        "self",
        "component",
        "addresses",
        "timeout",
    ]:
        missing.append("Connection.get_component_candidates(self, component, addresses, timeout)")
    if missing:
        raise AiortcIncompatible(
            f"aiortc {aiortc.__version__}: missing {', '.join(missing)}; "
            f"parley.sfu supports aiortc {','.join(SUPPORTED_AIORTC)}"
        )


_original_get_host_addresses = aioice.ice.get_host_addresses


def restrict_host_addresses(addresses: list[str] | None) -> None:
    """Gather ICE host candidates only on ``addresses`` (process-wide); None restores."""
    if addresses is None:
        aioice.ice.get_host_addresses = _original_get_host_addresses
        return
    fixed = list(addresses)

    def get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [a for a in fixed if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]

    aioice.ice.get_host_addresses = get_host_addresses


#: The loopback address :func:`include_loopback` adds to aioice's host addresses.
LOOPBACK = "127.0.0.1"


def include_loopback() -> None:
    """Gather ICE host candidates on 127.0.0.1 too, besides aioice's own (process-wide).

    aioice leaves loopback out, so on a machine with no other interface up (a laptop
    offline, a container or network namespace with only ``lo``) the SFU would offer no
    candidate at all, and browsers on that machine (``parley serve``, two tabs on
    ``http://127.0.0.1:8000``) could not reach it.  The price is one more socket and
    candidate per ICE connection; remote browsers' checks towards it simply fail.  The
    other addresses are still looked up at each gathering, as aioice does.
    ``restrict_host_addresses(None)`` undoes it.
    """

    def get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        addresses = list(_original_get_host_addresses(use_ipv4, use_ipv6))
        if use_ipv4 and LOOPBACK not in addresses:
            addresses.append(LOOPBACK)
        return addresses

    aioice.ice.get_host_addresses = get_host_addresses


def sender_ssrcs(sender: RTCRtpSender) -> tuple[int, int]:
    """(media SSRC, RTX SSRC) that aiortc announces in the SDP for this sender."""
    return int(sender._ssrc), int(sender._rtx_ssrc)


def make_sender_passive(sender: RTCRtpSender) -> None:
    """Stop aiortc from producing RTP/RTCP for this sender (call before negotiation)."""
    mangled = "_RTCRtpSender__"
    for ev in ("rtp_started", "rtp_exited", "rtcp_started", "rtcp_exited"):
        if not isinstance(getattr(sender, mangled + ev, None), asyncio.Event):
            raise AiortcIncompatible(f"RTCRtpSender.__{ev} is not an asyncio.Event")

    async def idle(started: asyncio.Event, exited: asyncio.Event) -> None:
        started.set()
        try:
            await asyncio.Future()
        except asyncio.CancelledError:
            pass
        finally:
            exited.set()

    def run_rtp(codec: Any) -> Any:
        return idle(
            getattr(sender, mangled + "rtp_started"), getattr(sender, mangled + "rtp_exited")
        )

    def run_rtcp() -> Any:
        return idle(
            getattr(sender, mangled + "rtcp_started"), getattr(sender, mangled + "rtcp_exited")
        )

    sender._run_rtp = run_rtp  # type: ignore[method-assign]
    sender._run_rtcp = run_rtcp  # type: ignore[method-assign]


def restrict_negotiated_codecs(
    transceiver: RTCRtpTransceiver,
    mime_types: tuple[str, ...],
    *,
    offer_order: bool = False,
    prefer: str | None = None,
) -> str:
    """Keep only ``mime_types`` (+ their RTX) among a transceiver's negotiated codecs.

    For the answering side: aiortc negotiates in the remote offer's order inside
    ``setRemoteDescription``, before ``setCodecPreferences`` could apply.  By default
    the answer lists them in the order of ``mime_types`` (so it would not pick e.g.
    H.264 just because the browser lists it first).  With ``offer_order`` only the
    first of them in the offer's order is kept (one payload type, + its RTX): the
    publisher's own preference among the codecs the SFU forwards decides, and the
    publisher can send no other.  aiortc has already left out what it cannot match
    (e.g. H.264 other than packetization-mode 1 baseline/constrained baseline).
    ``prefer`` (with ``offer_order``): that codec instead of the offer's first, if the offer
    has it.  Returns the mime type of the (first) codec kept.
    """
    allowed = [m.lower() for m in mime_types]
    codecs = list(transceiver._codecs)
    main = [c for c in codecs if c.mimeType.lower() in allowed]
    if not offer_order:
        main.sort(key=lambda c: allowed.index(c.mimeType.lower()))
    if not main:
        raise ValueError(f"no {'/'.join(mime_types)} in the offer for {transceiver.kind}")
    if offer_order:
        wanted = [c for c in main if prefer is not None and c.mimeType.lower() == prefer.lower()]
        main = wanted[:1] or main[:1]
    pts = {c.payloadType for c in main}
    rtx = [
        c for c in codecs if c.mimeType.lower().endswith("/rtx") and c.parameters.get("apt") in pts
    ]
    transceiver._codecs = main + rtx
    return str(main[0].mimeType)


def make_receiver_passive(receiver: RTCRtpReceiver) -> None:
    """No decoder thread, no RTCP task, no routing for this receiver (before negotiation)."""

    async def receive(parameters: Any) -> None:
        return None

    receiver.receive = receive  # type: ignore[method-assign]


def fast_rtp_protect(session: pylibsrtp.Session) -> Callable[[bytes], bytes]:
    """``session.protect`` without pylibsrtp's per-call wrapper (about half its cost).

    Uses pylibsrtp's private ``_srtp``/``_cdata``/``_buffer`` and its cffi ``lib``;
    falls back to ``session.protect`` if they are missing or for oversized packets.
    """
    try:
        ctx = session._srtp[0]
        cdata = session._cdata
        buf = session._buffer
        limit = len(cdata) - pylibsrtp.SRTP_MAX_TRAILER_LEN
        protect = _srtp_lib.srtp_protect
        len_p = _srtp_ffi.new("int *")
    except (AttributeError, TypeError):  # pragma: no cover - pylibsrtp changed
        log.warning("sfu: pylibsrtp internals changed; using Session.protect")
        return session.protect
    slow = session.protect

    def fast(raw: bytes) -> bytes:
        n = len(raw)
        if n > limit:
            return slow(raw)  # raises pylibsrtp's error
        buf[0:n] = raw
        len_p[0] = n
        if protect(ctx, cdata, len_p):
            return slow(raw)  # let pylibsrtp raise the right error
        return buf[0 : len_p[0]]  # type: ignore[no-any-return]

    return fast


class RawMediaTransport:
    """Plaintext RTP/RTCP in and out of one (bundled) ``RTCDtlsTransport``.

    Incoming: ``on_rtp(data, now)`` / ``on_rtcp(data, now)`` are called synchronously
    for every unprotected packet (``now``: :func:`time.monotonic`).  Outgoing:
    :meth:`send` protects with the transport's SRTP session and sends the datagram on
    the nominated ICE pair without a coroutine.  Packets before DTLS is up are dropped.
    """

    __slots__ = (
        "dtls",
        "on_rtp",
        "on_rtcp",
        "sent",
        "dropped",
        "_nominated",
        "_pair",
        "_srtp",
        "_protect",
        "_sendto",
        "_addr",
        "errors",
    )

    def __init__(self, dtls: RTCDtlsTransport, on_rtp: RtpCallback, on_rtcp: RtpCallback) -> None:
        self.dtls = dtls
        self.on_rtp = on_rtp
        self.on_rtcp = on_rtcp
        self.sent = 0
        self.dropped = 0
        self.errors = 0
        # aioice keeps this dict for the connection's lifetime (filled on nomination)
        self._nominated: dict[int, Any] = dtls.transport._connection._nominated
        self._pair: Any = None
        self._srtp: Any = None
        self._protect: Callable[[bytes], bytes] | None = None
        self._sendto: Callable[[bytes, Any], None] | None = None
        self._addr: Any = None
        monotonic = time.monotonic

        async def handle_rtp_data(data: bytes, arrival_time_ms: int) -> None:
            try:
                self.on_rtp(data, monotonic())
            except Exception:
                self._failed("RTP")

        async def handle_rtcp_data(data: bytes) -> None:
            try:
                self.on_rtcp(data, monotonic())
            except Exception:
                self._failed("RTCP")

        dtls._handle_rtp_data = handle_rtp_data  # type: ignore[method-assign]
        dtls._handle_rtcp_data = handle_rtcp_data  # type: ignore[method-assign]

    def _failed(self, what: str) -> None:
        self.errors += 1
        if self.errors <= 3 or self.errors % 10000 == 0:  # never a log line per packet
            log.exception("sfu: %s handler failed (%d errors so far)", what, self.errors)

    @property
    def ready(self) -> bool:
        return self.dtls._tx_srtp is not None and bool(self._nominated)

    def _refresh(self, pair: Any) -> bool:
        """Cache the SRTP session and the UDP send function of the nominated pair."""
        self._pair = pair
        srtp = self.dtls._tx_srtp
        if srtp is not self._srtp:
            self._srtp = srtp
            self._protect = None if srtp is None else fast_rtp_protect(srtp)
        self._sendto = None
        if pair is None or srtp is None:
            self._pair = None
            return False
        protocol = pair.protocol
        transport = getattr(protocol, "transport", None)
        if type(protocol) is aioice.ice.StunProtocol and transport is not None:
            self._sendto = transport.sendto
        self._addr = pair.remote_addr
        return True

    def send(self, data: bytes | bytearray) -> None:
        """Protect (SRTP or SRTCP, by payload type) and send one plaintext packet."""
        pair = self._nominated.get(1)
        if pair is not self._pair or pair is None or self._srtp is None:
            if not self._refresh(pair):
                self.dropped += 1
                return
        raw = data if type(data) is bytes else bytes(data)
        try:
            if 192 <= raw[1] <= 223:
                out = self._srtp.protect_rtcp(raw)
            else:
                out = self._protect(raw)  # type: ignore[misc]
        except Exception:  # pylibsrtp.Error: e.g. too long
            self.dropped += 1
            return
        sendto = self._sendto
        if sendto is not None:
            sendto(out, self._addr)
        else:  # TURN relay or another protocol: its own (async) send path
            asyncio.ensure_future(self._pair.protocol.send_data(out, self._addr))
        self.sent += 1


# -- media sockets: fixed UDP ports, shared by several ICE connections ------------------

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
