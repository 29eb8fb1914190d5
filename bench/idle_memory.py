#!/usr/bin/env python3
"""Where Parley's memory per idle connection goes (scenario B of the fan-out harness).

Runs Parley in this process with ``tracemalloc`` on, drives it with the harness's C generator
(scenario B: N idle connections, joined with the ``join_chat_ws`` adapter or our own-room
variant), and, once all N sessions exist, compares a snapshot with one taken after the
generator's 10 warm-up connections. Prints the allocation sites that grew most, in bytes
per connection, next to the process's RSS growth per connection. tracemalloc slows the
server and counts only Python allocations (not the kernel's socket buffers, not uvloop's
C structures); use it to see what to trim, and bench/fanout.py for the figure.

    python bench/idle_memory.py --idle 2000 --rooms own
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import resource
import shlex
import sys
import tempfile
import tracemalloc
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent


def rss_kb() -> int:
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def main_async(args: argparse.Namespace) -> None:
    from aiohttp import web

    from parley.config import Limits, Settings
    from parley.server.app import Server, make_app
    from parley.server.site import ParleySite

    harness = Path(
        args.harness
        or os.environ.get("PARLEY_FANOUT_HARNESS")
        or REPO.parent / "shared" / "bench" / "fanout"
    )
    os.environ.setdefault("FANOUT_CACHE", "/tmp/fanout/cache")
    spec = importlib.util.spec_from_file_location("fanout_harness_bench", harness / "bench.py")
    assert spec is not None and spec.loader is not None
    hb = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hb)
    hb.build_gen()

    data_dir = Path(tempfile.mkdtemp(prefix="parley-idle-mem-"))
    fields = {f for f in Limits.__dataclass_fields__}
    lim = {"rate_limits": False, "max_participants": args.idle + 1000}
    for name in ("max_connections_per_address", "max_rooms"):
        if name in fields:
            lim[name] = args.idle + 1000
    settings = Settings(
        host="127.0.0.1",
        port=args.port,
        data_dir=data_dir,
        log_level="warning",
        # Idle WebSocket connections only, no media: mesh, as always measured here (the SFU,
        # the default since issue 6, would load aiortc into the very process measured).
        media="mesh",
        limits=Limits(**lim),
    )  # type: ignore[arg-type]
    server = Server(settings)
    runner = web.AppRunner(make_app(server))
    await runner.setup()
    await ParleySite(runner, "127.0.0.1", args.port).start()

    adapter = (
        str(HERE / "adapters" / "join_chat_ws_own_room.json")
        if args.rooms == "own"
        else "join_chat_ws"
    )
    gen = [
        hb.GEN_BIN,
        "--port",
        str(args.port),
        "--scenario",
        "B",
        "--idle",
        str(args.idle),
        "--server-pid",
        str(os.getpid()),
        "--quiet-wait",
        "0",
        "--max-seconds",
        "600",
    ]
    gen += hb.adapter_args(adapter)
    print("$ " + shlex.join(gen), file=sys.stderr)
    proc = await asyncio.create_subprocess_exec(*gen, stdout=asyncio.subprocess.PIPE)

    while len(server.sessions) < 10:  # noqa: ASYNC110 - polling the server's own state
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)
    base = tracemalloc.take_snapshot()
    rss0, n0 = rss_kb(), len(server.sessions)
    last, stable = -1, 0
    while True:  # wait until all N joined (or the count stops moving)
        await asyncio.sleep(0.2)
        n = len(server.sessions)
        stable = stable + 1 if n == last else 0
        last = n
        if n >= args.idle + 10 or stable > 25:
            break
    await asyncio.sleep(0.5)
    snap = tracemalloc.take_snapshot()
    rss1, n1 = rss_kb(), len(server.sessions)
    out, _ = await proc.communicate()
    conns = max(1, n1 - n0)
    print(
        f"sessions {n0} -> {n1}; RSS {rss0 / 1024:.1f} -> {rss1 / 1024:.1f} MB = "
        f"{(rss1 - rss0) / conns:.2f} KB/conn (tracemalloc on)"
    )
    stats = snap.compare_to(base, "traceback" if args.depth > 1 else "lineno")
    total = sum(s.size_diff for s in stats)
    print(
        f"Python allocations grew {total / 1024 / 1024:.1f} MB = {total / conns / 1024:.2f} "
        f"KB/conn; top sites (bytes/conn, objects/conn):"
    )
    for s in stats[: args.top]:
        where = " <- ".join(
            f"{Path(f.filename).name}:{f.lineno}" for f in s.traceback[: args.depth]
        )
        print(f"  {s.size_diff / conns:8.0f} B  {s.count_diff / conns:6.2f}  {where}")
    for line in out.decode().splitlines():
        if "summaryB" in line:
            print(line)
    await runner.cleanup()


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--idle", type=int, default=2000)
    ap.add_argument("--rooms", choices=["one", "own"], default="own")
    ap.add_argument("--port", type=int, default=18766)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--depth", type=int, default=1, help="traceback frames per site")
    ap.add_argument("--harness")
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    tracemalloc.start(max(1, args.depth))
    import uvloop

    uvloop.run(main_async(args))


if __name__ == "__main__":
    main()
