"""aiortc's packet path, bypassed: plaintext RTP/RTCP in and out, passive senders and
receivers, negotiated codecs and SSRCs, and the check that the internals used by this
package (this module, :mod:`.host_addresses`, :mod:`.shared_ports`) are all still there.

See the package docstring for every private attribute used, and why.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Callable
from typing import Any

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
    "RawMediaTransport",
    "SUPPORTED_AIORTC",
    "check_compat",
    "fast_rtp_protect",
    "make_receiver_passive",
    "make_sender_passive",
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
