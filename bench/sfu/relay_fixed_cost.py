"""The media relay's fixed work per relayed packet, without the forwarding around it.

Node A seals a 1,100-byte RTP payload and sends it (to a UDP socket nobody reads: the
kernel drops what overflows, as for a viewer's socket in ``forward_bench.py``); node B
checks a datagram (tag, fields, peer, replay window) for a room not open there, so
nothing is forwarded.  Process CPU per packet, best of 7 rounds of 20,000.

It imports ``parley`` from ``PYTHONPATH`` (not from this checkout), so two trees can be
compared in one session:

    PYTHONPATH=/path/to/old/src python bench/sfu/relay_fixed_cost.py old
    PYTHONPATH=src python bench/sfu/relay_fixed_cost.py new
"""

from __future__ import annotations

import os
import socket
import sys
import time

from parley.sfu.relay.node import MediaRelay

ROUNDS, N = 7, 20_000


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
    print(f"{label}: A seal + send {best_a:.2f} µs/packet, B check {best_b:.2f} µs/packet")
    a.close()
    sink.close()


if __name__ == "__main__":
    import uvloop

    uvloop.run(main(sys.argv[1] if len(sys.argv) > 1 else "relay"))
