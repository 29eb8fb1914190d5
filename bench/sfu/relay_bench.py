"""CPU per forwarded packet on one node vs two nodes sharing the audience (media relay),
and the delay the relay adds.

The same synthetic SRTP VP8 stream as ``forward_bench.py`` (1,100-byte packets, ~120/s
worth, fed as fast as they go) from one publisher, to ``N`` viewers:

* **one node**: one router, the publisher and all ``N`` viewers (each slot: rewrite,
  SRTP protect, ``sendto``), i.e. today's SFU path;
* **two nodes**: node A has the publisher and ``N/2`` viewers and relays the stream to
  node B (``parley.sfu.relay``: seal with the HMAC tag, ``sendto`` over loopback UDP),
  which has the other ``N/2`` (open, replay check, the stand-in publisher, then the same
  per-viewer work).  Both nodes run in this process, on one event loop: node A's CPU is
  the time spent feeding its router; node B's is that of the loop's turns in between
  (its datagram reads and everything they cause).

Per node, CPU µs per packet forwarded to a viewer, and its ratio to the one-node
figure: the median of each run's ratio.  In a run both set-ups exist at once and are
fed in turns, 128 packets each, so a machine busier for a moment slows both alike;
node A's CPU is read around each batch of 16 packets it is fed, node B's around each
loop turn that follows (the CPU clock is read once per batch, not per packet: on a VM
a read is a system call of a few µs).  Then the
relay's added delay: one packet at a time, the time from node A's router receiving it
to node B's stand-in publisher receiving it (seal, ``sendto``, the kernel, the event
loop's wake-up, open, dispatch), median and p99.

    python bench/sfu/relay_bench.py                      # N = 20, 40, 80; 3 runs
    python bench/sfu/relay_bench.py --viewers 40 --packets 3000 --repeats 5
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

from forward_bench import (  # noqa: E402
    PUB_SSRC,
    Sinks,
    add_publisher,
    add_viewers,
    make_packets,
    run,
    srtp_session,
    udp_protocol,
)

from parley.sfu.forwarder import Router  # noqa: E402
from parley.sfu.relay.node import MediaRelay  # noqa: E402

BATCH = 16  # packets fed before the loop lets node B read (its socket buffer is enough)
CHUNK = 128  # packets fed to one set-up before the other's turn


async def two_relays() -> tuple[MediaRelay, MediaRelay]:
    a = MediaRelay("node-a", "bench-secret", "127.0.0.1", 0)
    b = MediaRelay("node-b", "bench-secret", "127.0.0.1", 0)
    await a.start()
    await b.start()
    a.set_peers({"node-b": ("127.0.0.1", b.port)})
    b.set_peers({"node-a": ("127.0.0.1", a.port)})
    return a, b


async def until(cond: Any, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not cond():
        if time.monotonic() > deadline:
            raise RuntimeError("the relay did not deliver")
        await asyncio.sleep(0)


class OneNode:
    """One router: the publisher and all ``viewers``."""

    def __init__(self, protocol: Any, sinks: Sinks, key: bytes, viewers: int) -> None:
        router = Router(last_n=9)
        publisher = add_publisher(router, protocol, sinks.addrs[0])
        publisher.add_source("cam", "video", PUB_SSRC, 96, "VP8", 90000)
        self.raws = add_viewers(router, protocol, sinks, 0, viewers)
        self.unprotect, self.on_rtp = srtp_session(key, False).unprotect, publisher.on_rtp
        self.cpu = 0.0

    async def feed(self, packets: list[bytes]) -> None:
        unprotect, on_rtp, clock = self.unprotect, self.on_rtp, time.monotonic
        t = time.process_time()
        for i in range(0, len(packets), BATCH):
            for p in packets[i : i + BATCH]:
                on_rtp(unprotect(p), clock())
            await asyncio.sleep(0)  # the same loop turns as the two-node run
        self.cpu += time.process_time() - t


class TwoNodes:
    """Node A (the publisher, the first ``viewers // 2``) relaying to node B (the rest)."""

    async def start(self, protocol: Any, sinks: Sinks, key: bytes, viewers: int) -> None:
        self.a, self.b = a, b = await two_relays()
        ra, rb = Router(last_n=9), Router(last_n=9)
        a.open_room("bench", ra)
        b.open_room("bench", rb)
        publisher = add_publisher(ra, protocol, sinks.addrs[0])
        publisher.add_source("cam", "video", PUB_SSRC, 96, "VP8", 90000)
        a.set_targets("bench", ["node-b"])
        await until(lambda: "pub" in rb.publishers)
        half = viewers // 2
        self.raws_a = add_viewers(ra, protocol, sinks, 0, half)
        self.raws_b = add_viewers(rb, protocol, sinks, half, viewers - half)
        self.inbound = b.rooms["bench"].inbound
        self.unprotect, self.on_rtp = srtp_session(key, False).unprotect, publisher.on_rtp
        self.cpu_a = self.cpu_b = 0.0
        self.fed = 0

    async def feed(self, packets: list[bytes]) -> None:
        """Node B only runs at the loop's turns: each batch fed is A's alone, each turn
        B's (the CPU clock read once between them: a read is a system call, ~4 µs on a
        VM, once per 16 packets)."""
        unprotect, on_rtp, clock = self.unprotect, self.on_rtp, time.monotonic
        cpu_a = cpu_b = 0.0
        t0 = time.process_time()
        for i in range(0, len(packets), BATCH):
            for p in packets[i : i + BATCH]:
                on_rtp(unprotect(p), clock())
            t1 = time.process_time()
            await asyncio.sleep(0)
            t2 = time.process_time()
            cpu_a += t1 - t0
            cpu_b += t2 - t1
            t0 = t2
        self.fed += len(packets)
        await until(lambda: self.inbound.received >= self.fed)  # all of B's work in
        cpu_b += time.process_time() - t0
        self.cpu_a += cpu_a
        self.cpu_b += cpu_b

    def close(self) -> None:
        self.a.close()
        self.b.close()


async def one_run(packets: list[bytes], key: bytes, viewers: int) -> tuple[float, float, float]:
    """µs per packet sent to a viewer: (one node, two nodes' A, two nodes' B), the two
    set-ups fed in turns, ``CHUNK`` packets at a time (a machine that slows down
    for a moment slows both alike)."""
    protocol = await udp_protocol()
    sinks = Sinks(viewers)
    one = OneNode(protocol, sinks, key, viewers)
    two = TwoNodes()
    await two.start(protocol, sinks, key, viewers)
    for i in range(0, len(packets), CHUNK):
        await one.feed(packets[i : i + CHUNK])
        await two.feed(packets[i : i + CHUNK])
    two.close()
    protocol.transport.close()
    sinks.close()
    sent = sum(r.sent for r in one.raws)
    sent_a, sent_b = sum(r.sent for r in two.raws_a), sum(r.sent for r in two.raws_b)
    assert sent == len(packets) * viewers, sent
    assert two.inbound.received == len(packets), two.inbound.received
    assert sent_a == len(packets) * (viewers // 2), sent_a
    assert sent_b == len(packets) * (viewers - viewers // 2), sent_b
    return one.cpu / sent * 1e6, two.cpu_a / sent_a * 1e6, two.cpu_b / sent_b * 1e6


async def relay_delay(key: bytes, samples: int) -> list[float]:
    """Seconds from node A's router to node B's stand-in publisher, one packet at a time."""
    a, b = await two_relays()
    ra, rb = Router(), Router()
    a.open_room("bench", ra)
    b.open_room("bench", rb)
    publisher = ra.add_publisher("pub", lambda data: None)
    publisher.add_source("cam", "video", PUB_SSRC, 96, "VP8", 90000)
    a.set_targets("bench", ["node-b"])
    await until(lambda: "pub" in rb.publishers)
    inbound = b.rooms["bench"].inbound
    unprotect = srtp_session(key, False).unprotect
    plain = [unprotect(p) for p in make_packets(samples, key)]
    delays = []
    for data in plain:
        before = inbound.received
        t = time.perf_counter()
        publisher.on_rtp(data, time.monotonic())
        while inbound.received == before:  # noqa: ASYNC110 - busy wait: the delay itself
            await asyncio.sleep(0)
        delays.append(time.perf_counter() - t)
    a.close()
    b.close()
    return delays


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--packets", type=int, default=3000, help="incoming packets per run")
    ap.add_argument("--viewers", type=int, nargs="*", default=[20, 40, 80])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--delay-samples", type=int, default=2000)
    args = ap.parse_args()
    key = os.urandom(30)
    packets = make_packets(args.packets, key)
    loop_name = type(asyncio.get_running_loop()).__module__.split(".")[0]
    print(
        f"# python {sys.version.split()[0]}, loop {loop_name}, one VP8 publisher, "
        f"{args.packets} incoming 1,100-byte SRTP packets per run, {args.repeats} runs"
    )
    print(
        "| viewers | one node: µs/pkt | two nodes: A (publisher + N/2) µs/pkt | A / one |"
        " B (relayed + N/2) µs/pkt | B / one |"
    )
    print("|---|---|---|---|---|---|")
    for viewers in args.viewers:
        one, ua, ub, ra, rb = [], [], [], [], []
        for _ in range(args.repeats):
            u1, u_a, u_b = await one_run(packets, key, viewers)
            one.append(u1)
            ua.append(u_a)
            ub.append(u_b)
            ra.append(u_a / u1)
            rb.append(u_b / u1)
        m1, ma, mb = statistics.median(one), statistics.median(ua), statistics.median(ub)
        qa, qb = statistics.median(ra), statistics.median(rb)
        print(
            f"| {viewers} | {m1:.2f} ({min(one):.2f}–{max(one):.2f}) |"
            f" {ma:.2f} ({min(ua):.2f}–{max(ua):.2f}) | {qa:.2f}× ({min(ra):.2f}–{max(ra):.2f}) |"
            f" {mb:.2f} ({min(ub):.2f}–{max(ub):.2f}) | {qb:.2f}× ({min(rb):.2f}–{max(rb):.2f}) |"
        )
    delays = sorted(await relay_delay(key, args.delay_samples))
    p50 = delays[len(delays) // 2] * 1e6
    p99 = delays[int(len(delays) * 0.99)] * 1e6
    print(
        f"relay delay A -> B, one packet at a time ({len(delays)} packets, loopback):"
        f" median {p50:.0f} µs, p99 {p99:.0f} µs, max {delays[-1] * 1e6:.0f} µs"
    )


if __name__ == "__main__":
    run(main)
