"""Micro-benchmark: CPU µs per forwarded RTP packet of parley.sfu's forwarding loop.

Synthetic SRTP packets (1,100-byte VP8-like RTP with mid + abs-send-time header
extensions, as aiortc/Chrome send them) go through, per incoming packet:

* ``parley``: SRTP unprotect once -> ``Publisher.on_rtp`` (SSRC lookup, retransmit
  cache, per subscriber: ``StreamRewriter.rewrite`` + ``RawMediaTransport.send``, i.e.
  SRTP protect + ``sendto`` on a real asyncio UDP transport, the code path of the SFU);
* ``naive``: SRTP unprotect once -> aiortc ``RtpPacket.parse`` -> per subscriber: set
  SSRC/seq/timestamp, ``serialize``, SRTP protect, ``sendto`` (the "plain" prototype
  of ../shared/bench/sfu, without aiortc's coroutine chain, so a *generous* baseline).

Both also run with ``sendto`` replaced by a no-op ("cpu only": rewrite + protect).
``--twcc``: the packets carry a transport-wide sequence number, and "parley twcc" also
records it and sends transport-cc feedback (``parley.sfu.twcc``) every 32 packets.
Subscribers are UDP sockets on 127.0.0.1 that are never read (the kernel drops the
datagrams).  Every run has a fixed packet count; the script ends by itself.

    python bench/sfu/forward_bench.py            # fan-outs 1, 9, 40; 3 repeats
    python bench/sfu/forward_bench.py --packets 2000 --fanout 9 --repeats 5

CPU is ``time.process_time()`` of this process (user + system), divided by the
number of packets sent to subscribers.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import socket
import statistics
import struct
import sys
import time
from collections.abc import Callable, Coroutine
from types import SimpleNamespace
from typing import Any

import aioice.ice
import pylibsrtp
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.rtp import HeaderExtensionsMap, RtpPacket

from parley.sfu.aiortc.hooks import RawMediaTransport
from parley.sfu.forwarder import Publisher, Router, SlotSpec

PROFILE = pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80
PUB_SSRC = 0x11223344


def srtp_session(key: bytes, outbound: bool) -> pylibsrtp.Session:
    policy = pylibsrtp.Policy(
        key=key,
        ssrc_type=(
            pylibsrtp.Policy.SSRC_ANY_OUTBOUND if outbound else pylibsrtp.Policy.SSRC_ANY_INBOUND
        ),
        srtp_profile=PROFILE,
    )
    policy.allow_repeat_tx = True
    policy.window_size = 1024
    return pylibsrtp.Session(policy)


TWCC_EXT = 5


def make_packets(
    n: int, key: bytes, codec: str = "VP8", twcc: bool = False, ssrc: int = PUB_SSRC
) -> list[bytes]:
    """SRTP packets of one VP8 (or H.264: FU-A fragments) publisher (key frame first,
    ~4 packets per frame) with SSRC ``ssrc``; with ``twcc`` a transport-wide sequence
    number (extension ``TWCC_EXT``, last) as well."""
    tx = srtp_session(key, outbound=True)
    out = []
    for i in range(n):
        ext = bytes([0x10 | 0, ord("0")]) + bytes([0x32, 1, 2, 3])  # mid "0", abs-send-time
        if twcc:
            ext += bytes([(TWCC_EXT << 4) | 1]) + struct.pack("!H", i & 0xFFFF)
        ext += b"\x00" * (-len(ext) % 4)
        hdr = struct.pack(
            "!BBHII", 0x90, (0x80 if i % 4 == 3 else 0) | 96, i & 0xFFFF, 3000 * (i // 4), ssrc
        )
        hdr += struct.pack("!HH", 0xBEDE, len(ext) // 4) + ext
        key_frame = i == 0
        if codec == "H264":  # FU-A: indicator, FU header (S bit on a frame's first packet)
            nal = 0x65 if key_frame else 0x41
            desc = bytes([(nal & 0xE0) | 28, (0x80 if i % 4 == 0 else 0) | (nal & 0x1F), 0x88])
            out.append(tx.protect(hdr + desc + os.urandom(1100 - len(hdr) - len(desc))))
            continue
        desc = bytes([0x90 if i % 4 == 0 else 0x80, 0x80]) + struct.pack("!H", 0x8000 | (i // 4))
        vp8 = bytes([0x00 if key_frame else 0x01]) + os.urandom(1100 - len(hdr) - len(desc) - 1)
        out.append(tx.protect(hdr + desc + vp8))
    return out


class Sinks:
    """``fanout`` unread UDP sockets on 127.0.0.1 and one sending transport per subscriber."""

    def __init__(self, fanout: int) -> None:
        self.socks = []
        for _ in range(fanout):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            s.bind(("127.0.0.1", 0))
            self.socks.append(s)
        self.addrs = [s.getsockname() for s in self.socks]

    def close(self) -> None:
        for s in self.socks:
            s.close()


_NO_RECEIVER = SimpleNamespace(protocol_lost=lambda p: None, data_received=lambda d, c: None)


async def udp_protocol() -> aioice.ice.StunProtocol:
    loop = asyncio.get_running_loop()
    _, protocol = await loop.create_datagram_endpoint(
        lambda: aioice.ice.StunProtocol(_NO_RECEIVER),  # type: ignore[arg-type]
        local_addr=("127.0.0.1", 0),
    )
    return protocol


def fake_dtls(tx: pylibsrtp.Session, protocol: Any, addr: tuple[str, int]) -> Any:
    """The attributes RawMediaTransport reads from an RTCDtlsTransport (after DTLS)."""
    pair = SimpleNamespace(protocol=protocol, remote_addr=addr)
    return SimpleNamespace(
        _tx_srtp=tx, transport=SimpleNamespace(_connection=SimpleNamespace(_nominated={1: pair}))
    )


def add_viewers(
    router: Router,
    protocol: Any,
    sinks: Sinks,
    first: int,
    count: int,
    accepted: tuple[tuple[str, int, Any], ...] = (),
    slots: int = 1,
) -> list[RawMediaTransport]:
    """Subscribers ``s<first>`` … each with ``slots`` video slots, sending to its own sink."""
    raws = []
    for i in range(first, first + count):
        raw = RawMediaTransport(
            fake_dtls(srtp_session(os.urandom(30), True), protocol, sinks.addrs[i]),
            lambda d, n: None,
            lambda d, n: None,
        )
        raws.append(raw)
        router.add_subscriber(
            f"s{i}",
            raw.send,
            [
                SlotSpec(str(k + 1), "video", 0x5000 + 0x1000 * k + i, 96, "VP8", 90000,
                         codecs=accepted)
                for k in range(slots)
            ],
        )  # fmt: skip
    return raws


def add_publisher(
    router: Router, protocol: Any, addr: tuple[str, int], pid: str = "pub"
) -> Publisher:
    """The bench's publisher ``pid``: its RTCP (receiver reports, PLI) is SRTCP-protected
    and sent to ``addr`` as the SFU's own would be; its packets are fed by the bench."""
    dtls = fake_dtls(srtp_session(os.urandom(30), True), protocol, addr)
    raw = RawMediaTransport(dtls, lambda d, n: None, lambda d, n: None)
    return router.add_publisher(pid, raw.send)


def run(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run ``main`` on uvloop, as the server does, or on asyncio's loop without it."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main())
    else:
        uvloop.run(main())


async def run_parley(
    packets: list[bytes],
    key: bytes,
    fanout: int,
    send: bool,
    simulcast: bool = False,
    codec: str = "VP8",
    twcc: bool = False,
) -> tuple[float, int]:
    protocol = await udp_protocol()
    real_transport = protocol.transport
    if not send:
        protocol.transport = SimpleNamespace(sendto=lambda data, addr: None)  # type: ignore[assignment]
    sinks = Sinks(fanout)
    rx = srtp_session(key, outbound=False)
    router = Router(last_n=9)
    publisher = add_publisher(router, protocol, sinks.addrs[0])
    if simulcast:
        # the same packets as the top layer of a 2-layer simulcast track (bound by hand:
        # the bench packets carry no rid extension)
        main = publisher.add_source("cam", "video", 0, 96, "VP8", 90000, rids=["l", "h"])
        main.ssrc = PUB_SSRC
        publisher.by_ssrc[PUB_SSRC] = main
    else:
        publisher.add_source("cam", "video", PUB_SSRC, 96, codec, 90000)
    if twcc:
        publisher.enable_twcc(TWCC_EXT)
    # subscriber slots as negotiated with browsers: VP8 and H.264 (payload type 102)
    accepted = (("H264", 102, None),) if codec == "H264" else ()
    raws = add_viewers(router, protocol, sinks, 0, fanout, accepted)
    unprotect = rx.unprotect
    on_rtp = publisher.on_rtp
    clock = time.monotonic
    t0 = time.process_time()
    if twcc:  # recorder per packet + a feedback packet every 32 packets (SRTCP + sendto)
        feedback = router.send_transport_feedback
        for i, p in enumerate(packets):
            on_rtp(unprotect(p), clock())
            if not i & 31:
                feedback(clock())
    else:
        for p in packets:
            on_rtp(unprotect(p), clock())
    cpu = time.process_time() - t0
    sent = sum(r.sent for r in raws)
    real_transport.close()
    sinks.close()
    return cpu, sent


async def run_naive(packets: list[bytes], key: bytes, fanout: int, send: bool) -> tuple[float, int]:
    protocol = await udp_protocol()
    sendto: Callable[[bytes, Any], None] = protocol.transport.sendto  # type: ignore[assignment]
    if not send:

        def sendto(data: bytes, addr: Any) -> None:
            return None

    sinks = Sinks(fanout)
    rx = srtp_session(key, outbound=False)
    ext_map = HeaderExtensionsMap()
    ext_map.configure(
        RTCRtpParameters(
            headerExtensions=[
                RTCRtpHeaderExtensionParameters(id=1, uri="urn:ietf:params:rtp-hdrext:sdes:mid"),
                RTCRtpHeaderExtensionParameters(
                    id=3, uri="http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
                ),
            ]
        )
    )
    subs = [
        (srtp_session(os.urandom(30), True), 0x5000 + i, sinks.addrs[i], [1000, 5000])
        for i in range(fanout)
    ]
    sent = 0
    t0 = time.process_time()
    for p in packets:
        pkt = RtpPacket.parse(rx.unprotect(p), ext_map)
        seq, ts = pkt.sequence_number, pkt.timestamp
        for tx, ssrc, addr, state in subs:
            pkt.ssrc = ssrc
            pkt.sequence_number = (seq + state[0]) & 0xFFFF
            pkt.timestamp = (ts + state[1]) & 0xFFFFFFFF
            sendto(tx.protect(pkt.serialize(ext_map)), addr)
            sent += 1
    cpu = time.process_time() - t0
    protocol.transport.close()
    sinks.close()
    return cpu, sent


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--packets", type=int, default=3000, help="incoming packets per run")
    ap.add_argument("--fanout", type=int, nargs="*", default=[1, 9, 40])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument(
        "--simulcast",
        action="store_true",
        help="also time the parley loop with the stream as a simulcast layer",
    )
    ap.add_argument(
        "--h264",
        action="store_true",
        help="also time the parley loop with an H.264 publisher (FU-A packets)",
    )
    ap.add_argument(
        "--twcc",
        action="store_true",
        help="packets carry a transport-wide sequence number; also time the parley loop "
        "with the transport-cc recorder on (and feedback every 32 packets)",
    )
    args = ap.parse_args()
    key = os.urandom(30)
    packets = make_packets(args.packets, key, twcc=args.twcc)
    h264_packets = make_packets(args.packets, key, "H264") if args.h264 else []
    rows = []
    for fanout in args.fanout:
        for send in (True, False):
            loops: list[tuple[str, Any]] = [("parley", run_parley), ("naive", run_naive)]
            if args.simulcast:
                loops.append(("parley simulcast", functools.partial(run_parley, simulcast=True)))
            if args.h264:
                loops.append(("parley h264", functools.partial(run_parley, codec="H264")))
            if args.twcc:
                loops.append(("parley twcc", functools.partial(run_parley, twcc=True)))
            for name, fn in loops:
                us = []
                stream = h264_packets if name == "parley h264" else packets
                for _ in range(args.repeats):
                    # fresh inbound session each run: SRTP replay protection
                    cpu, sent = await fn(stream, key, fanout, send)
                    assert sent == len(packets) * fanout, (name, sent)
                    us.append(cpu / sent * 1e6)
                rows.append(
                    (
                        name,
                        "sendto" if send else "cpu only",
                        fanout,
                        statistics.median(us),
                        min(us),
                        max(us),
                    )
                )
    loop_name = type(asyncio.get_running_loop()).__module__.split(".")[0]
    print(
        f"# python {sys.version.split()[0]}, loop {loop_name}, "
        f"{args.packets} incoming 1,100-byte packets per run, {args.repeats} runs, "
        f"AES_CM_128_HMAC_SHA1_80"
    )
    print("| loop | path | fan-out | µs per forwarded pkt (median) | min–max |")
    print("|---|---|---|---|---|")
    for name, path, fanout, med, lo, hi in rows:
        print(f"| {name} | {path} | {fanout} | {med:.2f} | {lo:.2f}–{hi:.2f} |")
    by = {(r[0], r[1], r[2]): r[3] for r in rows}
    for fanout in args.fanout:
        for path in ("sendto", "cpu only"):
            ratio = by[("naive", path, fanout)] / by[("parley", path, fanout)]
            print(f"fan-out {fanout:>3} {path:>8}: naive/parley = {ratio:.2f}x")


if __name__ == "__main__":
    run(main)
