#!/usr/bin/env python3
"""Breakout rooms: how long 20 participants take to move into 4 breakouts, and back.

Issue 15's target: "20 participants moved into 4 breakouts, and back, each in <= 1 s from
the host's click to the last participant's new room state".  One ``parley serve`` (a fresh
data dir, ``--media mesh`` so that no media is involved: a move's cost is the server's),
this script joins a host and 20 bot participants over real WebSockets, then per round:

* **out**: the host sends ``breakouts-open`` (4 rooms, evenly at random); the time runs
  from that send to the ``welcome`` of the breakout on the last of the 20 sockets;
* **back**: the host sends ``breakouts-close``; everyone returns when the 30-second
  warning ends (``closing_at`` in the ``breakouts`` state, the server's clock, which is
  this machine's): the time runs from ``closing_at`` to the last main-room ``welcome``;
* **baseline**: the host sends ``room-settings`` (lock, then unlock); the time runs to the
  last of the 20 ``room-updated`` — the cheapest fan-out of a host's act to everyone,
  measured in the same run, so that the figures are also given as ratios to it.

    python bench/breakouts.py --rounds 3
    python bench/breakouts.py --rounds 1 --participants 20 --rooms 4
    python bench/breakouts.py --rounds 3 --cluster --database-url postgresql+asyncpg://…

``--cluster``: two nodes (A and B) on one redis-server (started here, on a free port) and
one PostgreSQL; the host joins through A, the bots alternately through A and B, so half
of the moves are carried out by the other node (a ``MoveOp`` over Redis).

It waits 30 s per round for the close warning (``--rounds 3`` takes about two minutes).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"


def log(msg: str) -> None:
    print(f"[breakouts] {msg}", file=sys.stderr, flush=True)


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Bot:
    """One participant's socket: every frame it receives, timestamped on arrival."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, name: str) -> None:
        self.ws = ws
        self.name = name
        self.id = ""
        self.frames: list[tuple[float, dict[str, Any]]] = []
        self.arrived = asyncio.Event()
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for msg in self.ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                self.frames.append((time.time(), json.loads(msg.data)))
                self.arrived.set()

    async def wait(self, pred: Any, since: int = 0, within: float = 60.0) -> float:
        """Arrival time of the first frame (from index ``since``) matching ``pred``."""
        deadline = time.monotonic() + within
        while True:
            for at, frame in self.frames[since:]:
                if pred(frame):
                    return at
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name}: nothing matching within {within}s")
            self.arrived.clear()
            try:
                await asyncio.wait_for(self.arrived.wait(), 1.0)
            except TimeoutError:
                pass

    async def send(self, obj: dict[str, Any]) -> None:
        await self.ws.send_str(json.dumps(obj))


async def join(session: aiohttp.ClientSession, url: str, room: str, name: str) -> Bot:
    ws = await session.ws_connect(url, max_msg_size=0)
    bot = Bot(ws, name)
    await bot.send({"type": "join", "room": room, "name": name, "v": 1})
    await bot.wait(lambda f: f["type"] == "welcome")
    bot.id = next(f["id"] for _, f in bot.frames if f["type"] == "welcome")
    return bot


def in_room(room: str) -> Any:
    return lambda f: f["type"] == "welcome" and f["room"]["name"] == room


async def one_round(host: Bot, bots: list[Bot], room: str, rooms: int) -> dict[str, float]:
    marks = [len(b.frames) for b in bots]
    # Baseline: a host's settings change reaching everyone.
    t0 = time.time()
    await host.send({"type": "room-settings", "locked": True})
    got = [
        await b.wait(lambda f: f["type"] == "room-updated" and f["settings"]["locked"], m)
        for b, m in zip(bots, marks, strict=True)
    ]
    baseline = max(got) - t0
    await host.send({"type": "room-settings", "locked": False})
    marks = [len(b.frames) for b in bots]
    # Out: into the breakouts.
    names = [f"Room {i + 1}" for i in range(rooms)]
    t0 = time.time()
    await host.send({"type": "breakouts-open", "names": names, "auto": True})
    children = {f"{room}~{i + 1}" for i in range(rooms)}
    got = [
        await b.wait(lambda f: f["type"] == "welcome" and f["room"]["name"] in children, m)
        for b, m in zip(bots, marks, strict=True)
    ]
    out = max(got) - t0
    # Back: from the end of the close warning to the last main-room welcome.
    hmark = len(host.frames)
    marks = [len(b.frames) for b in bots]
    await host.send({"type": "breakouts-close"})
    await host.wait(
        lambda f: f["type"] == "breakouts" and f["state"].get("closing_at"), hmark, within=10
    )
    closing_at = next(
        f["state"]["closing_at"] / 1000
        for _, f in host.frames[hmark:]
        if f["type"] == "breakouts" and f["state"].get("closing_at")
    )
    got = [await b.wait(in_room(room), m, within=60) for b, m in zip(bots, marks, strict=True)]
    back = max(got) - closing_at
    await host.wait(lambda f: f["type"] == "breakouts" and not f["state"]["open"], hmark)
    await asyncio.sleep(0.5)
    return {"baseline": baseline, "out": out, "back": back}


async def run(args: argparse.Namespace, ports: list[int]) -> list[dict[str, float]]:
    urls = [f"ws://127.0.0.1:{port}/ws" for port in ports]
    room = f"bench-{int(time.time())}"
    async with aiohttp.ClientSession() as session:
        host = await join(session, urls[0], room, "Host")
        bots = [
            await join(session, urls[i % len(urls)], room, f"Bot {i}")
            for i in range(args.participants)
        ]
        results = []
        for r in range(args.rounds):
            res = await one_round(host, bots, room, args.rooms)
            log(
                f"round {r + 1}: out {res['out'] * 1000:.0f} ms, back {res['back'] * 1000:.0f}"
                f" ms, baseline {res['baseline'] * 1000:.1f} ms"
            )
            results.append(res)
        for b in [host, *bots]:
            await b.ws.close()
    return results


def serve(
    data: Path, port: int, args: argparse.Namespace, extra: tuple[str, ...] = ()
) -> subprocess.Popen[bytes]:
    """A fresh ``parley serve`` (mesh: no media), ready to take joins."""
    env = {**os.environ, "PYTHONPATH": str(SRC), "PARLEY_SECRET": "bench-" + "0" * 40}
    data.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "parley", "serve", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--data-dir", str(data / "data"), "--media", "mesh", "--max-participants", "50"]
    cmd += ["--no-rate-limits"] if args.no_rate_limits else []
    cmd += list(extra)
    with open(data / "server.log", "wb") as out:
        server = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
    for _ in range(300):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return server
        except OSError:
            time.sleep(0.1)
    server.terminate()
    raise RuntimeError(f"parley serve did not start; see {data / 'server.log'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--participants", type=int, default=20)
    ap.add_argument("--rooms", type=int, default=4)
    ap.add_argument("--no-rate-limits", action="store_true")
    ap.add_argument("--cluster", action="store_true", help="two nodes on one redis-server")
    ap.add_argument(
        "--database-url",
        help="the store (default: SQLite in the data dir; with --cluster, the PostgreSQL"
        " both nodes share: $PARLEY_TEST_POSTGRES_URL)",
    )
    args = ap.parse_args()
    if args.cluster and not args.database_url:
        args.database_url = os.environ.get("PARLEY_TEST_POSTGRES_URL")
    if args.cluster and not args.database_url:
        ap.error("--cluster needs --database-url (a PostgreSQL both nodes share)")
    load = os.getloadavg()
    data = Path(tempfile.mkdtemp(prefix="parley-bench-breakouts-"))
    procs: list[subprocess.Popen[bytes]] = []
    ports: list[int] = []
    try:
        if args.cluster:
            rport = free_port()
            procs.append(
                subprocess.Popen(
                    ["redis-server", "--port", str(rport), "--save", "", "--appendonly", "no"],
                    stdout=subprocess.DEVNULL,
                    cwd=data,
                )
            )
            for node in ("A", "B"):
                ports.append(free_port())
                flags = ("--broker", f"redis://127.0.0.1:{rport}/0", "--node-id", node)
                flags += ("--database-url", args.database_url)
                procs.append(serve(data / node, ports[-1], args, flags))
        else:
            ports.append(free_port())
            store = ("--database-url", args.database_url) if args.database_url else ()
            procs.append(serve(data, ports[-1], args, store))
        results = asyncio.run(run(args, ports))
    finally:
        for proc in reversed(procs):
            proc.terminate()
            proc.wait(timeout=15)
        shutil.rmtree(data, ignore_errors=True)
    mode = "two nodes (A, B) on one Redis" if args.cluster else "one node"
    mode += ", PostgreSQL" if args.database_url else ", SQLite"
    print(f"CPU: {cpu_model()}; load average before (1/5/15 min): {load}; {mode}")
    print(f"{args.participants} participants, {args.rooms} breakouts, {args.rounds} rounds")
    print("| round | out (ms) | back (ms) | baseline (ms) | out / baseline | back / baseline |")
    print("|---|---|---|---|---|---|")
    for i, r in enumerate(results, 1):
        print(
            f"| {i} | {r['out'] * 1000:.0f} | {r['back'] * 1000:.0f} | {r['baseline'] * 1000:.1f}"
            f" | {r['out'] / r['baseline']:.1f} | {r['back'] / r['baseline']:.1f} |"
        )
    worst_out = max(r["out"] for r in results)
    worst_back = max(r["back"] for r in results)
    median_base = statistics.median(r["baseline"] for r in results)
    print(
        f"worst out {worst_out * 1000:.0f} ms, worst back {worst_back * 1000:.0f} ms"
        f" (target <= 1000 ms); median baseline {median_base * 1000:.1f} ms"
    )


if __name__ == "__main__":
    main()
