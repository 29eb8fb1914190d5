"""The media relay's fixed work per relayed packet, without the forwarding around it.

Node A seals a 1,100-byte RTP payload and sends it (to a UDP socket nobody reads: the
kernel drops what overflows, as for a viewer's socket in ``forward_bench.py``); node B
checks a datagram (tag, fields, peer, replay window) for a room not open there, so
nothing is forwarded.  Process CPU per packet, best of 7 rounds of 20,000.  Then B
*reads and checks*: ``BURST`` datagrams wait in B's socket (sent beforehand, not timed),
and the time is that of the event loop's turns until B has taken them all (its reads,
whichever way its relay reads, and the checks); best of 7 rounds of 20,000.

It imports ``parley`` from ``PYTHONPATH`` (not from this checkout), so two trees can be
compared in one session:

    PYTHONPATH=/path/to/old/src python bench/sfu/relay_fixed_cost.py old
    PYTHONPATH=src python bench/sfu/relay_fixed_cost.py new
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time

from parley.sfu.relay.node import MediaRelay

ROUNDS, N = 7, 20_000
BURST = 16  # datagrams waiting per read (relay_bench.py feeds 16 packets per loop turn)


async def read_cost() -> float:
    """µs per datagram for node B to read and check ``BURST`` waiting datagrams."""
    b = MediaRelay("node-b", "bench-secret", "127.0.0.1", 0)
    await b.start()
    a = MediaRelay("node-a", "bench-secret", "127.0.0.1", 0)
    src = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    src.bind(("127.0.0.1", 0))
    src.connect(("127.0.0.1", b.port))
    b.set_peers({"node-a": src.getsockname()})
    payload = os.urandom(1100)
    best = float("inf")
    for _ in range(ROUNDS):
        cpu = 0.0
        for _ in range(N // BURST):
            for _ in range(BURST):
                src.send(a.seal(1, "room-abcdef", "p_abcdefgh", payload))
            want = b.unrouted + BURST
            t = time.process_time()
            while b.unrouted < want:  # noqa: ASYNC110 - busy wait: the cost itself
                await asyncio.sleep(0)
            cpu += time.process_time() - t
        best = min(best, cpu / (N // BURST * BURST) * 1e6)
    assert not b.refused, b.refused
    b.close()
    src.close()
    return best


async def main(label: str) -> None:
    a = MediaRelay("node-a", "bench-secret", "127.0.0.1", 0)
    b = MediaRelay("node-b", "bench-secret", "127.0.0.1", 0)
    await a.start()
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    a.set_peers({"node-b": sink.getsockname()})
    b.set_peers({"node-a": ("127.0.0.1", a.port)})
    payload = os.urandom(1100)
    best_a = best_b = float("inf")
    for _ in range(ROUNDS):
        t = time.process_time()
        for _ in range(N):
            a.send("node-b", a.seal(1, "room-abcdef", "p_abcdefgh", payload))
        best_a = min(best_a, (time.process_time() - t) / N * 1e6)
        datagrams = [a.seal(1, "room-abcdef", "p_abcdefgh", payload) for _ in range(N)]
        address = ("127.0.0.1", a.port)
        t = time.process_time()
        for d in datagrams:
            b.received(d, address)
        best_b = min(best_b, (time.process_time() - t) / N * 1e6)
    assert b.unrouted == ROUNDS * N and not b.refused, (b.unrouted, b.refused)
    a.close()
    sink.close()
    best_r = await read_cost()
    print(
        f"{label}: A seal + send {best_a:.2f} µs/packet, B check {best_b:.2f} µs/packet,"
        f" B read + check {best_r:.2f} µs/packet"
    )


if __name__ == "__main__":
    import uvloop

    uvloop.run(main(sys.argv[1] if len(sys.argv) > 1 else "relay"))
