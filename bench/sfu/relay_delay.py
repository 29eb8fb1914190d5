"""The media relay's added delay end to end: the same frames decoded by a viewer on the
publisher's node and by a viewer on another node.

Two real ``parley serve`` nodes with the SFU and the relay (``--relay-port``), one
redis-server and a fresh PostgreSQL database (on ``$PARLEY_TEST_POSTGRES_URL``, dropped
at the end), all on loopback.  A speaker joins node A and publishes a synthetic 30 fps
camera with the Python SDK (aiortc, VP8); three viewers subscribe to it: *near* and
*near2* on node A (served directly), *far* on node B (served through the relay).  Every
frame is one flat grey level, ``(n * 7) % 256``, so each viewer recognises frame ``n``
after decoding; this process notes when each viewer's decoded frame arrived (one clock).

Per frame decoded by two viewers, the difference of their arrivals: ``far - near`` and
``far - near2`` are what the relay adds to the path from the publisher to a decoded
picture (node A's seal and ``sendto``, the kernel, node B's read, open and forwarding,
node B's own SRTP and scheduling); ``near2 - near`` is the method's noise (two viewers
of the same node: node A serves one before the other, and this process decodes all
three).  Median, p95, p99 and mean in milliseconds.

    eval "$(bash .ci/postgres.sh)"    # or export PARLEY_TEST_POSTGRES_URL
    python bench/sfu/relay_delay.py --seconds 30
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "src"))

from aiortc.mediastreams import MediaStreamError  # noqa: E402

from parley.client import Meeting, connect  # noqa: E402
from parley.client.media import ParticipantMedia  # noqa: E402
from parley.sfu.aiortc import host_addresses  # noqa: E402
from tests.cluster.harness import Cluster  # noqa: E402
from tests.sfu.sfu_media import SmallVideo  # noqa: E402
from tests.support.postgres import create_database, drop_database, server_url  # noqa: E402
from tests.support.processes import free_port  # noqa: E402
from tests.support.redis_server import RedisServer  # noqa: E402

ARGS = (
    "--media", "sfu", "--media-ip", "127.0.0.1", "--no-rate-limits", "--log-level", "warning",
    "--relay-port", "0", "--relay-ip", "127.0.0.1",
)  # fmt: skip
STEP = 7  # grey level step per frame (SmallVideo): 256 distinct frames, 8.5 s at 30 fps


async def watch(
    media: ParticipantMedia, seen: list[tuple[float, int]], stop: asyncio.Event
) -> None:
    """(arrival, grey level) of every decoded frame until ``stop``."""
    track = media.video
    while not stop.is_set():
        try:
            frame = await asyncio.wait_for(track.recv(), 1.0)
        except TimeoutError:
            continue
        except MediaStreamError:
            return
        now = time.perf_counter()
        luma = frame.to_ndarray(format="gray")
        seen.append((now, int(luma.mean() + 0.5)))


def match(a: list[tuple[float, int]], b: list[tuple[float, int]]) -> list[float]:
    """``b``'s arrival minus ``a``'s for every frame both decoded (same level, arrivals
    within a second of each other)."""
    by_level: dict[int, list[float]] = {}
    for t, level in a:
        by_level.setdefault(level, []).append(t)
    deltas = []
    for t, level in b:
        near = [ta for ta in by_level.get(level, ()) if abs(t - ta) < 1.0]
        if len(near) == 1:
            deltas.append(t - near[0])
    return deltas


def summary(name: str, deltas: list[float]) -> str:
    ms = sorted(d * 1000 for d in deltas)
    if not ms:
        return f"| {name} | 0 | - | - | - | - |"
    p95, p99 = ms[int(len(ms) * 0.95)], ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    return (
        f"| {name} | {len(ms)} | {statistics.median(ms):.2f} | {p95:.2f} | {p99:.2f} |"
        f" {statistics.mean(ms):.2f} |"
    )


async def run(cluster: Cluster, seconds: float) -> dict[str, list[float]]:
    a, b = cluster.start("DA", "DB", args=ARGS, env={"PARLEY_RELAY_SECRET": uuid.uuid4().hex})
    room = f"relay-delay-{uuid.uuid4().hex[:8]}"
    meetings: list[Meeting] = []
    try:
        speaker = await connect(a.url, room, "Speaker")
        meetings.append(speaker)
        viewers = {}
        for name, node in (("near", a), ("near2", a), ("far", b)):
            viewers[name] = await connect(node.url, room, name)
            meetings.append(viewers[name])
        await speaker.publish(SmallVideo(), label="camera")
        media = {name: await m.subscribe(speaker.id) for name, m in viewers.items()}
        # wait until every viewer decodes, then measure from a clean start
        for m in media.values():
            async with asyncio.timeout(60):
                await m.video.recv()
        seen: dict[str, list[tuple[float, int]]] = {name: [] for name in media}
        stop = asyncio.Event()
        tasks = [asyncio.create_task(watch(m, seen[n], stop)) for n, m in media.items()]
        await asyncio.sleep(seconds)
        stop.set()
        await asyncio.gather(*tasks)
        return {
            "far - near": match(seen["near"], seen["far"]),
            "far - near2": match(seen["near2"], seen["far"]),
            "near2 - near (the method's noise: same node)": match(seen["near"], seen["near2"]),
        }
    finally:
        for m in meetings:
            await m.leave()
        cluster.stop_all()


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=30.0, help="measured seconds of video")
    args = ap.parse_args()
    server = server_url()
    if server is None:
        raise SystemExit("set PARLEY_TEST_POSTGRES_URL (a cluster needs PostgreSQL)")
    host_addresses.restrict_host_addresses(["127.0.0.1"])  # this process's aiortc peers
    database = create_database(server)
    base = Path(tempfile.mkdtemp(prefix="relay-delay-"))
    redis = RedisServer(port=free_port(), log_path=base / "redis.log").start()
    try:
        results = await run(Cluster(base=base, redis=redis, database_url=database), args.seconds)
    finally:
        redis.stop()
        drop_database(server, database)
    print(f"# {args.seconds:.0f} s of 30 fps VP8 160x120 from a speaker on node A, loopback")
    print("| arrival of the same decoded frame | frames | median ms | p95 ms | p99 ms | mean ms |")
    print("|---|---|---|---|---|---|")
    for name, deltas in results.items():
        print(summary(name, deltas))


if __name__ == "__main__":
    asyncio.run(main())
