"""The hub's write path on real sockets: coalescing, gathering under load, overflow.

Each client is one end of a socket pair with an asyncio transport on it; the test
reads what the hub wrote from the other end, as a browser would.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest

from parley.server.hub import GATHER_FROM_RATE, GATHER_MAX, Connection, Hub, gather_delay


class _Sink(asyncio.Protocol):
    pass


class Peer:
    """A hub connection and the far end of its socket."""

    def __init__(self, conn: Connection, far: socket.socket) -> None:
        self.conn, self.far = conn, far

    def received(self) -> bytes:
        chunks = []
        while True:
            try:
                chunk = self.far.recv(1 << 20)
            except BlockingIOError:
                chunk = b""
            if not chunk:  # nothing more for now (or the hub closed it)
                return b"".join(chunks)
            chunks.append(chunk)


async def _join(hub: Hub, n: int) -> list[Peer]:
    """``n`` clients in room "r", as ids p0, p1, ..."""
    loop = asyncio.get_running_loop()
    peers = []
    for i in range(n):
        near, far = socket.socketpair()
        far.setblocking(False)
        transport, _ = await loop.create_connection(_Sink, sock=near)
        conn = Connection(transport, peer=f"peer{i}")  # type: ignore[arg-type]
        conn.ready = True
        hub.attach(conn, "r", f"p{i}")
        peers.append(Peer(conn, far))
    return peers


def _close(peers: list[Peer]) -> None:
    for p in peers:
        p.conn.transport.close()
        p.far.close()


@pytest.fixture
async def room() -> AsyncIterator[tuple[Hub, list[Peer]]]:
    hub = Hub(max_outgoing_buffer=1 << 20)
    peers = await _join(hub, 3)
    yield hub, peers
    _close(peers)


async def _turns(n: int) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


def test_gather_delay_grows_with_load_and_is_capped() -> None:
    assert gather_delay(0) == 0
    assert gather_delay(GATHER_FROM_RATE - 1) == 0  # a quiet server adds no latency
    busy, busier = gather_delay(2 * GATHER_FROM_RATE), gather_delay(4 * GATHER_FROM_RATE)
    assert 0 < busy < busier <= GATHER_MAX
    assert gather_delay(1e12) == GATHER_MAX


async def test_a_quiet_room_is_written_in_the_same_loop_turn(
    room: tuple[Hub, list[Peer]],
) -> None:
    hub, peers = room
    hub.deliver("r", b"one", None, exclude="p0")
    hub.deliver("r", b"two", None, exclude=None)
    await _turns(2)
    # Both frames went out at once, in order, to everyone but the excluded sender.
    assert [p.received() for p in peers] == [b"two", b"onetwo", b"onetwo"]
    assert hub.frames_out == 5


async def test_a_flush_waits_one_turn_for_a_message_read_after_it_was_scheduled(
    room: tuple[Hub, list[Peer]],
) -> None:
    hub, peers = room
    loop = asyncio.get_running_loop()
    hub.deliver("r", b"one", None, None)  # a flush is scheduled...
    hub.note_read()  # ...a client's message is read meanwhile...
    loop.call_soon(hub.deliver, "r", b"two", None, None)  # ...and handled next turn
    await _turns(3)
    # Both frames went out together: one write() per client, not two.
    assert [p.received() for p in peers] == [b"onetwo"] * 3
    assert (hub.frames_out, hub.writes) == (6, 3)


async def test_a_stream_of_reads_holds_a_flush_back_one_turn_at_most(
    room: tuple[Hub, list[Peer]],
) -> None:
    hub, peers = room
    hub.deliver("r", b"a", None, None)
    for _ in range(2):  # a message read in every turn, none of them sending anything
        hub.note_read()
        await asyncio.sleep(0)
    assert [p.received() for p in peers] == [b"a"] * 3


async def test_a_busy_hub_gathers_frames_for_a_moment(room: tuple[Hub, list[Peer]]) -> None:
    hub, peers = room
    hub.rate = 4 * GATHER_FROM_RATE  # as measured under a flood
    hub._window_start = asyncio.get_running_loop().time()  # keep that estimate this window
    hub.deliver("r", b"a", None, None)
    await _turns(2)
    assert peers[1].received() == b""  # not yet: more frames may come
    hub.deliver("r", b"b", None, None)
    await asyncio.sleep(gather_delay(hub.rate) + 0.05)
    assert [p.received() for p in peers] == [b"ab"] * 3  # one write each, nothing lost


async def test_the_rate_is_measured_from_queued_frames(room: tuple[Hub, list[Peer]]) -> None:
    hub, peers = room
    loop = asyncio.get_running_loop()
    # 3 recipients x 40,000 messages within one window: 120,000 frames...
    for _ in range(40_000):
        hub._queued += 3
    # ...queued over the last second (set after the loop, so that a slow machine's loop
    # does not stretch the window the rate is measured over).
    hub._window_start = loop.time() - 1.0
    hub.deliver("r", b"x", None, None)  # the next flush re-estimates the rate
    assert hub.rate == pytest.approx(120_003, rel=0.01)
    await asyncio.sleep(gather_delay(hub.rate) + 0.05)
    assert peers[2].received() == b"x"


async def test_a_private_frame_counts_once(room: tuple[Hub, list[Peer]]) -> None:
    hub, peers = room
    hub._window_start = asyncio.get_running_loop().time()  # keep counting in this window
    queued = hub._queued
    hub.deliver("r", b"psst", ("p1",), None)
    assert hub._queued == queued + 1
    await _turns(2)
    assert [p.received() for p in peers] == [b"", b"psst", b""]


async def test_a_reader_that_never_reads_is_dropped_not_the_room() -> None:
    hub = Hub(max_outgoing_buffer=64 * 1024)
    stuck, reader = peers = await _join(hub, 2)
    dropped: list[str | None] = []
    for p in peers:
        p.conn.on_overflow = lambda c: dropped.append(c.pid)
    frame = b"x" * 1000
    got = 0
    try:
        for _ in range(2000):  # 2 MB: far past the kernel buffers and the 64 KiB limit
            hub.deliver("r", frame, None, None)
            await _turns(2)
            got += len(reader.received())  # this one keeps reading; the other never does
        assert dropped == ["p0"]
        assert stuck.conn.closed
        assert got == 2000 * 1000  # the reader got every frame
    finally:
        _close(peers)
