"""Fails loudly when an aiortc/aioice upgrade moves what parley.sfu.aiortc uses."""

from __future__ import annotations

import asyncio
import inspect
import threading

import aioice.ice
import aiortc
import pylibsrtp
import pytest
from aiortc import RTCDtlsTransport, RTCPeerConnection, RTCRtpReceiver, RTCRtpSender

from parley.sfu.aiortc import hooks, host_addresses


def _version(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in v.split(".")[:2])


def test_installed_versions_are_the_supported_ones() -> None:
    assert (1, 16) <= _version(aiortc.__version__) < (1, 17), aiortc.__version__
    assert hooks.SUPPORTED_AIORTC == (">=1.16", "<1.17")


def test_check_compat_passes() -> None:
    hooks.check_compat()


def test_private_attributes_still_exist() -> None:
    # RTCDtlsTransport: receive dispatch methods take (data, arrival_time_ms) / (data)
    assert list(inspect.signature(RTCDtlsTransport._handle_rtp_data).parameters) == [
        "self",
        "data",
        "arrival_time_ms",
    ]
    assert list(inspect.signature(RTCDtlsTransport._handle_rtcp_data).parameters) == [
        "self",
        "data",
    ]
    src = inspect.getsource(RTCDtlsTransport._recv_next)
    assert "self._handle_rtp_data(" in src and "self._handle_rtcp_data(" in src
    assert "self._rx_srtp.unprotect" in src
    init = inspect.getsource(RTCDtlsTransport.__init__)
    assert "self._tx_srtp" in init and "self._rx_srtp" in init
    # ICE: the nominated pair and the UDP protocol used by RawMediaTransport.send
    assert "self._nominated" in inspect.getsource(aioice.ice.Connection.__init__)
    assert "active_pair.protocol.send_data(data, active_pair.remote_addr)" in inspect.getsource(
        aioice.ice.Connection.sendto
    )
    assert "self.transport.sendto(data, addr)" in inspect.getsource(
        aioice.ice.StunProtocol.send_data
    )
    assert "get_host_addresses(" in inspect.getsource(aioice.ice.Connection.gather_candidates)
    # RTCRtpSender: the tasks we replace, the SSRCs we read, the events stop() waits for
    send_src = inspect.getsource(RTCRtpSender.send)
    assert "self._run_rtp(" in send_src and "self._run_rtcp()" in send_src
    stop_src = inspect.getsource(RTCRtpSender.stop)
    for ev in ("__rtp_started", "__rtcp_started", "__rtp_exited", "__rtcp_exited"):
        assert ev in stop_src
    # RTCRtpReceiver.receive is what starts the decoder thread
    assert "decoder_worker" in inspect.getsource(RTCRtpReceiver.receive)
    # pylibsrtp: protect/unprotect on bytes, repeat-tx allowed by aiortc (NACK resends)
    assert hasattr(pylibsrtp.Session, "protect") and hasattr(pylibsrtp.Session, "protect_rtcp")
    assert "allow_repeat_tx = True" in inspect.getsource(RTCDtlsTransport._setup_srtp)


async def test_passive_sender_and_receiver() -> None:
    pc = RTCPeerConnection()
    t = pc.addTransceiver("video", direction="sendrecv")
    hooks.make_sender_passive(t.sender)
    hooks.make_receiver_passive(t.receiver)
    ssrc, rtx = hooks.sender_ssrcs(t.sender)
    assert ssrc == t.sender._ssrc and rtx == t.sender._rtx_ssrc and ssrc != rtx
    before = {th.name for th in threading.enumerate()}
    await t.receiver.receive(None)  # type: ignore[arg-type]
    assert not {th.name for th in threading.enumerate()} - before  # no decoder thread
    assert t.receiver._RTCRtpReceiver__started is False  # type: ignore[attr-defined]
    # send() starts our idle tasks; stop() must not hang
    sender = t.sender
    sender._RTCRtpSender__started = False  # type: ignore[attr-defined]
    task_rtp = sender._run_rtp(None)
    task_rtcp = sender._run_rtcp()
    f1, f2 = asyncio.ensure_future(task_rtp), asyncio.ensure_future(task_rtcp)
    await asyncio.sleep(0)
    assert sender._RTCRtpSender__rtp_started.is_set()  # type: ignore[attr-defined]
    f1.cancel()
    f2.cancel()
    await asyncio.gather(f1, f2, return_exceptions=True)
    assert sender._RTCRtpSender__rtcp_exited.is_set()  # type: ignore[attr-defined]
    await pc.close()


def test_fast_protect_matches_pylibsrtp() -> None:
    import os
    import struct

    from pylibsrtp._binding import lib

    assert hasattr(lib, "srtp_protect")
    policy = pylibsrtp.Policy(
        key=os.urandom(30),
        ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND,
        srtp_profile=pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
    )
    policy.allow_repeat_tx = True
    session = pylibsrtp.Session(policy)
    for attr in ("_srtp", "_cdata", "_buffer"):
        assert hasattr(session, attr), attr
    fast = hooks.fast_rtp_protect(session)
    assert fast is not session.protect  # the fast path is in use
    pkt = struct.pack("!BBHII", 0x80, 96, 7, 9, 1234) + os.urandom(1000)
    assert fast(pkt) == session.protect(pkt)  # same key/seq/ROC: identical output
    with pytest.raises(ValueError, match="too long"):
        fast(pkt + b"x" * 600)


def test_restrict_host_addresses() -> None:
    try:
        host_addresses.restrict_host_addresses(["127.0.0.1", "::1"])
        assert aioice.ice.get_host_addresses(True, False) == ["127.0.0.1"]
        assert aioice.ice.get_host_addresses(True, True) == ["127.0.0.1", "::1"]
    finally:
        host_addresses.restrict_host_addresses(None)
    assert "127.0.0.1" not in aioice.ice.get_host_addresses(True, False)


def test_include_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """``parley serve`` without --media-ip: aioice's addresses, looked up at each
    gathering, plus 127.0.0.1 (IPv4 asked for only)."""
    found = [["192.0.2.7", "2001:db8::7"]]

    def aioice_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [a for a in found[0] if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]

    monkeypatch.setattr(host_addresses, "_original_get_host_addresses", aioice_addresses)
    try:
        host_addresses.include_loopback()
        assert aioice.ice.get_host_addresses(True, True) == [
            "192.0.2.7",
            "2001:db8::7",
            "127.0.0.1",
        ]
        assert aioice.ice.get_host_addresses(False, True) == ["2001:db8::7"]
        found[0] = []  # no interface up but lo: still a candidate
        assert aioice.ice.get_host_addresses(True, True) == ["127.0.0.1"]
        found[0] = ["127.0.0.1"]  # not twice
        assert aioice.ice.get_host_addresses(True, False) == ["127.0.0.1"]
    finally:
        monkeypatch.undo()
        host_addresses.restrict_host_addresses(None)
    assert aioice.ice.get_host_addresses is host_addresses._original_get_host_addresses


async def test_raw_transport_drops_before_connected() -> None:
    pc = RTCPeerConnection()
    t = pc.addTransceiver("audio")
    seen: list[bytes] = []
    raw = hooks.RawMediaTransport(
        t.receiver.transport, lambda d, n: seen.append(d), lambda d, n: None
    )
    assert not raw.ready
    raw.send(b"\x80\x00" + b"\x00" * 10)
    assert raw.dropped == 1 and raw.sent == 0
    # the instance overrides are what RTCDtlsTransport._recv_next will call
    await t.receiver.transport._handle_rtp_data(b"x" * 12, 0)
    assert seen == [b"x" * 12]
    await pc.close()


def test_incompatible_aiortc_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(RTCDtlsTransport, "_handle_rtp_data")
    with pytest.raises(hooks.AiortcIncompatible, match="_handle_rtp_data"):
        hooks.check_compat()
