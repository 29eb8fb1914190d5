#!/usr/bin/env python3
"""What ``--durability full`` costs: chat throughput and ack latency, normal vs full.

Starts ``parley serve --no-rate-limits`` with a fresh data dir on the disk (not tmpfs:
there a sync costs nothing) once per durability level and round, alternating the order,
and drives one room with ``--senders`` clients that each send a chat and wait for its
``chat-ack`` before the next (closed loop), for ``--seconds``.  Prints, per level and
round, the acks per second and the ack latency percentiles (send to ack, as a client sees
it), then the median over the rounds.

    python bench/durability.py --senders 10 --seconds 5 --rounds 2 --dir /var/tmp
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_ready(url: str, proc: asyncio.subprocess.Process, within: float = 30) -> None:
    deadline = time.monotonic() + within
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if proc.returncode is not None:
                raise SystemExit(f"parley serve exited with {proc.returncode}")
            try:
                async with http.get(url + "/healthz") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise SystemExit("parley serve did not become ready")


async def sender(
    http: aiohttp.ClientSession, ws_url: str, room: str, i: int, stop_at: float
) -> list[float]:
    """Chat, wait for the ack, repeat until ``stop_at``; the ack latencies (seconds)."""
    latencies: list[float] = []
    async with http.ws_connect(ws_url, max_msg_size=0) as ws:
        await ws.send_str(json.dumps({"type": "join", "room": room, "name": f"s{i}", "v": 1}))
        while (await ws.receive_json())["type"] != "welcome":
            pass
        n = 0
        while time.monotonic() < stop_at:
            n += 1
            ref = f"{i}-{n}"
            t0 = time.perf_counter()
            await ws.send_str(json.dumps({"type": "chat", "text": "x" * 100, "ref": ref}))
            while True:
                msg = await ws.receive_json()
                if msg["type"] == "chat-ack" and msg.get("ref") == ref:
                    break
                if msg["type"] == "error":
                    raise SystemExit(f"error: {msg}")
            latencies.append(time.perf_counter() - t0)
    return latencies


async def measure(level: str, args: argparse.Namespace) -> dict[str, float]:
    data_dir = Path(tempfile.mkdtemp(prefix=f"parley-durability-{level}-", dir=args.dir))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
    argv = [
        sys.executable, "-m", "parley", "serve", "--port", str(port),
        "--data-dir", str(data_dir), "--no-rate-limits", "--media", "mesh",
        "--max-participants", str(args.senders + 1), "--durability", level,
    ]  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        *argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        url = f"http://127.0.0.1:{port}"
        await wait_ready(url, proc)
        async with aiohttp.ClientSession() as http:
            stop_at = time.monotonic() + args.seconds
            t0 = time.monotonic()
            results = await asyncio.gather(
                *(sender(http, url.replace("http", "ws") + "/ws", "bench", i, stop_at)
                  for i in range(args.senders))
            )  # fmt: skip
            elapsed = time.monotonic() - t0
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 20)
        except TimeoutError:
            proc.kill()
            await proc.wait()
        shutil.rmtree(data_dir, ignore_errors=True)
    lat = sorted(x for r in results for x in r)
    q = statistics.quantiles(lat, n=100, method="inclusive")
    return {
        "acks_per_s": len(lat) / elapsed,
        "p50_ms": q[49] * 1000,
        "p90_ms": q[89] * 1000,
        "p99_ms": q[98] * 1000,
        "max_ms": lat[-1] * 1000,
    }


async def main_async(args: argparse.Namespace) -> None:
    runs: dict[str, list[dict[str, float]]] = {"normal": [], "full": []}
    print(f"senders={args.senders} seconds={args.seconds} rounds={args.rounds} dir={args.dir}")
    print(f"{'round':>5} {'level':>7} {'acks/s':>8} {'p50 ms':>7} {'p90 ms':>7} "
          f"{'p99 ms':>7} {'max ms':>7}")  # fmt: skip
    for rnd in range(args.rounds):
        order = ("normal", "full") if rnd % 2 == 0 else ("full", "normal")
        for level in order:
            r = await measure(level, args)
            runs[level].append(r)
            print(f"{rnd + 1:>5} {level:>7} {r['acks_per_s']:>8.0f} {r['p50_ms']:>7.2f} "
                  f"{r['p90_ms']:>7.2f} {r['p99_ms']:>7.2f} {r['max_ms']:>7.2f}")  # fmt: skip
    print("median over the rounds:")
    for level, rs in runs.items():
        med = {k: statistics.median(r[k] for r in rs) for k in rs[0]}
        print(f"{'':>5} {level:>7} {med['acks_per_s']:>8.0f} {med['p50_ms']:>7.2f} "
              f"{med['p90_ms']:>7.2f} {med['p99_ms']:>7.2f} {med['max_ms']:>7.2f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--senders", type=int, default=10, help="clients sending at once")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each run")
    parser.add_argument("--rounds", type=int, default=2, help="runs per level (order swapped)")
    parser.add_argument(
        "--dir", default="/var/tmp", help="where the data dirs go: a real disk, not tmpfs"
    )
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
