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
  the time spent feeding its router; node B's is the rest of the run (its datagram
  reads and everything they cause).

Per node, CPU µs per packet forwarded to a viewer, and its ratio to the one-node
figure: the median of each run's ratio (each run measures one node, then two, back to
back, so a machine busier in one run than in another moves both alike).  Then the
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


async def one_node(packets: list[bytes], key: bytes, viewers: int) -> tuple[float, int]:
    protocol = await udp_protocol()
    sinks = Sinks(viewers)
    router = Router(last_n=9)
    publisher = add_publisher(router, protocol, sinks.addrs[0])
    publisher.add_source("cam", "video", PUB_SSRC, 96, "VP8", 90000)
    raws = add_viewers(router, protocol, sinks, 0, viewers)
    unprotect, on_rtp, clock = srtp_session(key, False).unprotect, publisher.on_rtp, time.monotonic
    t0 = time.process_time()
    for i, p in enumerate(packets):
        on_rtp(unprotect(p), clock())
        if i % BATCH == BATCH - 1:
            await asyncio.sleep(0)  # the same loop turns as the two-node run
    cpu = time.process_time() - t0
    protocol.transport.close()
    sinks.close()
    return cpu, sum(r.sent for r in raws)


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


async def two_nodes(
    packets: list[bytes], key: bytes, viewers: int
) -> tuple[float, float, int, int, int]:
    """(CPU of A, CPU of B, packets A sent to viewers, packets B sent, relayed in)."""
    protocol = await udp_protocol()
    sinks = Sinks(viewers)
    a, b = await two_relays()
    ra, rb = Router(last_n=9), Router(last_n=9)
    a.open_room("bench", ra)
    b.open_room("bench", rb)
    publisher = add_publisher(ra, protocol, sinks.addrs[0])
    publisher.add_source("cam", "video", PUB_SSRC, 96, "VP8", 90000)
    a.set_targets("bench", ["node-b"])
    await until(lambda: "pub" in rb.publishers)
    half = viewers // 2
    raws_a = add_viewers(ra, protocol, sinks, 0, half)
    raws_b = add_viewers(rb, protocol, sinks, half, viewers - half)
    inbound = b.rooms["bench"].inbound
    unprotect, on_rtp, clock = srtp_session(key, False).unprotect, publisher.on_rtp, time.monotonic
    cpu_a = 0.0
    t0 = time.process_time()
    for i, p in enumerate(packets):
        t = time.process_time()
        on_rtp(unprotect(p), clock())
        cpu_a += time.process_time() - t
        if i % BATCH == BATCH - 1:
            await asyncio.sleep(0)
    await until(lambda: inbound.received >= len(packets))
    cpu_b = time.process_time() - t0 - cpu_a
    sent_a, sent_b = sum(r.sent for r in raws_a), sum(r.sent for r in raws_b)
    received = inbound.received
    a.close()
    b.close()
    protocol.transport.close()
    sinks.close()
    return cpu_a, cpu_b, sent_a, sent_b, received


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
            cpu, sent = await one_node(packets, key, viewers)
            assert sent == len(packets) * viewers, sent
            one.append(cpu / sent * 1e6)
            cpu_a, cpu_b, sent_a, sent_b, received = await two_nodes(packets, key, viewers)
            assert received == len(packets), received
            assert sent_a == len(packets) * (viewers // 2), sent_a
            assert sent_b == len(packets) * (viewers - viewers // 2), sent_b
            ua.append(cpu_a / sent_a * 1e6)
            ub.append(cpu_b / sent_b * 1e6)
            ra.append(ua[-1] / one[-1])
            rb.append(ub[-1] / one[-1])
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
