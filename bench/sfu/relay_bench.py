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

With ``--speakers 2`` (the issue's stage of 2 speakers) a second publisher sends the
same kind of stream (another SSRC) and every viewer has a slot for each speaker; one
node has both speakers and all ``N`` viewers; of two nodes, ``--placement split`` puts
one speaker on each (each node relays its own to the other and receives the other's),
``same`` both on node A.  The speakers are fed in turns, a batch each, and each batch
is its node's CPU, the loop's turn after it the other node's (it reads what was relayed).

Per node, CPU µs per packet forwarded to a viewer, and its ratio to the one-node
figure: the median of each run's ratio.  In a run both set-ups exist at once and are
fed in turns, 128 packets each, so a machine busier for a moment slows both alike;
node A's CPU is read around each batch of 16 packets it is fed, node B's around each
loop turn that follows (the CPU clock is read once per batch, not per packet: on a VM
a read is a system call of a few µs).  Then the
relay's added delay: one packet at a time, the time from node A's router receiving it
to node B's stand-in publisher receiving it (seal, ``sendto``, the kernel, the event
loop's wake-up, open, dispatch), median and p99 (2 speakers: each one's packets to
the other node, the speakers in turns).

    python bench/sfu/relay_bench.py                      # N = 20, 40, 80; 3 runs
    python bench/sfu/relay_bench.py --viewers 40 --packets 3000 --repeats 5
    python bench/sfu/relay_bench.py --speakers 2 --placement split   # or same
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

from parley.sfu.forwarder import Publisher, Router  # noqa: E402
from parley.sfu.relay.node import MediaRelay  # noqa: E402

BATCH = 16  # packets fed before the loop lets the other node read (its socket buffer is enough)
CHUNK = 128  # packets of each speaker fed to one set-up before the other's turn
PIDS = ("pub", "pub2")
SSRCS = (PUB_SSRC, 0x55667788)


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


def homes(speakers: int, placement: str) -> list[int]:
    """The node (0 = A, 1 = B) each speaker publishes on: the first on A, the second on
    B when ``split``, on A when ``same``."""
    return [0 if s == 0 or placement == "same" else 1 for s in range(speakers)]


def add_speaker(router: Router, protocol: Any, sinks: Sinks, s: int) -> Publisher:
    publisher = add_publisher(router, protocol, sinks.addrs[0], PIDS[s])
    publisher.add_source("cam", "video", SSRCS[s], 96, "VP8", 90000)
    return publisher


class OneNode:
    """One router: every speaker and all ``viewers`` (each subscribed to every speaker)."""

    def __init__(
        self, protocol: Any, sinks: Sinks, key: bytes, viewers: int, speakers: int
    ) -> None:
        router = Router(last_n=9)
        self.feeds = [
            (srtp_session(key, False).unprotect, add_speaker(router, protocol, sinks, s).on_rtp)
            for s in range(speakers)
        ]
        self.raws = add_viewers(router, protocol, sinks, 0, viewers, slots=speakers)
        self.cpu = 0.0

    async def feed(self, streams: list[list[bytes]]) -> None:
        """Each speaker's next ``BATCH`` packets in turn, a loop turn after each (the
        same turns as the two-node run)."""
        clock = time.monotonic
        t = time.process_time()
        for i in range(0, len(streams[0]), BATCH):
            for (unprotect, on_rtp), packets in zip(self.feeds, streams, strict=True):
                for p in packets[i : i + BATCH]:
                    on_rtp(unprotect(p), clock())
                await asyncio.sleep(0)
        self.cpu += time.process_time() - t


class TwoNodes:
    """Nodes A and B, each with half the viewers (A the first ``viewers // 2``), each
    speaker on its node of :func:`homes`, relayed to the other."""

    async def start(
        self, protocol: Any, sinks: Sinks, key: bytes, viewers: int, where: list[int]
    ) -> None:
        self.a, self.b = a, b = await two_relays()
        relays = (a, b)
        routers = (Router(last_n=9), Router(last_n=9))
        a.open_room("bench", routers[0])
        b.open_room("bench", routers[1])
        self.feeds = [
            (home, srtp_session(key, False).unprotect,
             add_speaker(routers[home], protocol, sinks, s).on_rtp)
            for s, home in enumerate(where)
        ]  # fmt: skip
        for home in set(where):  # only a node with a speaker relays (as with one speaker)
            relays[home].set_targets("bench", [relays[1 - home].node])
        for s, home in enumerate(where):
            await until(lambda s=s, home=home: PIDS[s] in routers[1 - home].publishers)
        half = viewers // 2
        self.raws = (
            add_viewers(routers[0], protocol, sinks, 0, half, slots=len(where)),
            add_viewers(routers[1], protocol, sinks, half, viewers - half, slots=len(where)),
        )
        self.inbound = (a.rooms["bench"].inbound, b.rooms["bench"].inbound)
        self.expected = [0, 0]  # relayed packets each node's router is to have had
        self.cpu = [0.0, 0.0]

    async def feed(self, streams: list[list[bytes]]) -> None:
        """A node runs when it is fed its speaker's batch, or at the loop's turn after
        the other node's batch (it then reads what that one relayed): the CPU clock is
        read once between them (a read is a system call, ~4 µs on a VM, once per 16
        packets)."""
        clock = time.monotonic
        cpu = [0.0, 0.0]
        t0 = time.process_time()
        for i in range(0, len(streams[0]), BATCH):
            for (home, unprotect, on_rtp), packets in zip(self.feeds, streams, strict=True):
                for p in packets[i : i + BATCH]:
                    on_rtp(unprotect(p), clock())
                t1 = time.process_time()
                await asyncio.sleep(0)
                t2 = time.process_time()
                cpu[home] += t1 - t0
                cpu[1 - home] += t2 - t1
                t0 = t2
        for (home, _, _), packets in zip(self.feeds, streams, strict=True):
            self.expected[1 - home] += len(packets)
        for node in (1, 0):  # all of the receiving nodes' work in
            if self.expected[node]:
                await until(lambda n=node: self.inbound[n].received >= self.expected[n])
                t = time.process_time()
                cpu[node] += t - t0
                t0 = t
        self.cpu[0] += cpu[0]
        self.cpu[1] += cpu[1]

    def close(self) -> None:
        self.a.close()
        self.b.close()


async def one_run(
    streams: list[list[bytes]], key: bytes, viewers: int, where: list[int]
) -> tuple[float, float, float]:
    """µs per packet sent to a viewer: (one node, two nodes' A, two nodes' B), the two
    set-ups fed in turns, ``CHUNK`` packets of each speaker at a time (a machine that
    slows down for a moment slows both alike)."""
    speakers, n = len(streams), len(streams[0])
    protocol = await udp_protocol()
    sinks = Sinks(viewers)
    one = OneNode(protocol, sinks, key, viewers, speakers)
    two = TwoNodes()
    await two.start(protocol, sinks, key, viewers, where)
    for i in range(0, n, CHUNK):
        chunk = [packets[i : i + CHUNK] for packets in streams]
        await one.feed(chunk)
        await two.feed(chunk)
    two.close()
    protocol.transport.close()
    sinks.close()
    sent = sum(r.sent for r in one.raws)
    sent_a, sent_b = (sum(r.sent for r in raws) for raws in two.raws)
    assert sent == n * speakers * viewers, sent
    assert two.inbound[0].received == two.expected[0], two.inbound[0].received
    assert two.inbound[1].received == two.expected[1], two.inbound[1].received
    assert sent_a == n * speakers * (viewers // 2), sent_a
    assert sent_b == n * speakers * (viewers - viewers // 2), sent_b
    return one.cpu / sent * 1e6, two.cpu[0] / sent_a * 1e6, two.cpu[1] / sent_b * 1e6


async def relay_delay(key: bytes, samples: int, where: list[int]) -> list[float]:
    """Seconds from a speaker's node's router to the other node's stand-in publisher,
    one packet at a time (the speakers in turns)."""
    a, b = await two_relays()
    relays, routers = (a, b), (Router(), Router())
    a.open_room("bench", routers[0])
    b.open_room("bench", routers[1])
    speakers = []
    for s, home in enumerate(where):
        publisher = routers[home].add_publisher(PIDS[s], lambda data: None)
        publisher.add_source("cam", "video", SSRCS[s], 96, "VP8", 90000)
        speakers.append(publisher)
    for home in set(where):
        relays[home].set_targets("bench", [relays[1 - home].node])
    for s, home in enumerate(where):
        await until(lambda s=s, home=home: PIDS[s] in routers[1 - home].publishers)
    inbound = (a.rooms["bench"].inbound, b.rooms["bench"].inbound)
    plain = []
    for s in range(len(where)):
        unprotect = srtp_session(key, False).unprotect
        plain.append([unprotect(p) for p in make_packets(samples, key, ssrc=SSRCS[s])])
    delays = []
    for i in range(samples):
        for publisher, home, packets in zip(speakers, where, plain, strict=True):
            far = inbound[1 - home]
            before = far.received
            t = time.perf_counter()
            publisher.on_rtp(packets[i], time.monotonic())
            while far.received == before:  # noqa: ASYNC110 - busy wait: the delay itself
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
    ap.add_argument("--speakers", type=int, choices=(1, 2), default=1)
    ap.add_argument(
        "--placement",
        choices=("split", "same"),
        default="split",
        help="2 speakers: one on each node (split) or both on node A (same)",
    )
    args = ap.parse_args()
    key = os.urandom(30)
    where = homes(args.speakers, args.placement)
    streams = [make_packets(args.packets, key, ssrc=SSRCS[s]) for s in range(args.speakers)]
    loop_name = type(asyncio.get_running_loop()).__module__.split(".")[0]
    if args.speakers == 1:
        print(
            f"# python {sys.version.split()[0]}, loop {loop_name}, one VP8 publisher, "
            f"{args.packets} incoming 1,100-byte SRTP packets per run, {args.repeats} runs"
        )
        print(
            "| viewers | one node: µs/pkt | two nodes: A (publisher + N/2) µs/pkt | A / one |"
            " B (relayed + N/2) µs/pkt | B / one |"
        )
    else:
        on = "one on each node" if args.placement == "split" else "both on node A"
        print(
            f"# python {sys.version.split()[0]}, loop {loop_name}, 2 VP8 speakers ({on},"
            f" placement {args.placement}), every viewer subscribed to both, {args.packets}"
            f" incoming 1,100-byte SRTP packets per speaker per run, {args.repeats} runs"
        )
        print(
            "| viewers | one node: µs/pkt | two nodes: A (N/2) µs/pkt | A / one |"
            " B (N/2) µs/pkt | B / one |"
        )
    print("|---|---|---|---|---|---|")
    for viewers in args.viewers:
        one, ua, ub, ra, rb = [], [], [], [], []
        for _ in range(args.repeats):
            u1, u_a, u_b = await one_run(streams, key, viewers, where)
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
    delays = sorted(await relay_delay(key, args.delay_samples, where))
    p50 = delays[len(delays) // 2] * 1e6
    p99 = delays[int(len(delays) * 0.99)] * 1e6
    way = "A -> B" if where == [0] * len(where) else "A -> B and B -> A"
    print(
        f"relay delay {way}, one packet at a time ({len(delays)} packets, loopback):"
        f" median {p50:.0f} µs, p99 {p99:.0f} µs, max {delays[-1] * 1e6:.0f} µs"
    )


if __name__ == "__main__":
    run(main)
