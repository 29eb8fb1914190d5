"""Cross-node chat latency and throughput versus single-node, in one run.

    eval "$(bash .ci/postgres.sh)"   # or pass --database-url; SQLite otherwise
    python bench/cluster/latency.py [--clients 20] [--rate 20] [--seconds 4]

Setups, measured one after the other in the same process (one clock):

* ``single``: one node without Redis; all N clients on it.
* ``cluster``: two nodes + a redis-server started here; the N clients split over both,
  the sender on node A, and only the receivers on node B are timed (cross-node).

For each setup, two runs: a paced one (one sender, ``--rate`` chats/s for ``--seconds``)
and a saturating one (the sender keeps ``--window`` chats in flight for ``--seconds``).
Latency is from just before the sender writes the frame to the receiver's read of
the ``chat`` frame; deliveries/s counts every (message, timed receiver) pair.
Nodes run with ``--no-rate-limits --max-participants 200``.  Prints a markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"process for {url} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"{url} not up after {timeout}s")


@dataclass
class Procs:
    base: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def redis(self) -> str:
        port = free_port()
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        p = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self.procs.append(p)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("redis-server did not start") from None
                time.sleep(0.05)
        return f"redis://127.0.0.1:{port}/0"

    def node(self, name: str, database_url: str | None, broker: str | None, secret: str) -> str:
        port = free_port()
        d = self.base / name
        d.mkdir(parents=True, exist_ok=True)
        argv = [
            sys.executable, "-m", "parley", "serve", "--host", "127.0.0.1", "--port", str(port),
            "--data-dir", str(d / "data"), "--node-id", name, "--log-level", "warning",
            "--no-rate-limits", "--max-participants", "200",
            # Chat latency only: no media. Mesh, as always measured here, so the nodes do
            # not load aiortc at start (the SFU, the default media mode since issue 6).
            "--media", "mesh",
        ]  # fmt: skip
        if database_url:
            argv += ["--database-url", database_url]
        if broker:
            argv += ["--broker", broker]
        env = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
        env["PARLEY_SECRET"] = secret
        log = (d / "node.log").open("wb")
        p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=d)
        self.procs.append(p)
        url = f"http://127.0.0.1:{port}"
        wait_http(url + "/healthz", p)
        return url

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


@dataclass
class Receiver:
    ws: aiohttp.ClientWebSocketResponse
    timed: bool
    got: dict[str, float] = field(default_factory=dict)  # text -> arrival (perf_counter)
    task: asyncio.Task[None] | None = None

    async def read(self) -> None:
        async for msg in self.ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            now = time.perf_counter()
            if '"type":"chat"' not in msg.data:
                continue
            data = json.loads(msg.data)
            if data.get("type") == "chat":
                self.got[data["message"]["text"]] = now


async def join(
    session: aiohttp.ClientSession, url: str, room: str, name: str
) -> aiohttp.ClientWebSocketResponse:
    ws = await session.ws_connect(url.replace("http", "ws", 1) + "/ws", max_msg_size=0)
    await ws.send_str(json.dumps({"type": "join", "room": room, "name": name, "v": 1}))
    while True:
        msg = await ws.receive(timeout=30)
        data = json.loads(msg.data)
        if data["type"] == "welcome":
            return ws
        if data["type"] == "error":
            raise SystemExit(f"join failed: {data}")


async def measure(
    sender_url: str,
    receiver_urls: list[str],
    timed: list[bool],
    *,
    rate: float | None,
    window: int,
    seconds: float,
) -> dict[str, float]:
    """One run in a fresh room: returns latency stats (ms) and deliveries/s."""
    room = f"bench-{uuid.uuid4().hex[:10]}"
    async with aiohttp.ClientSession() as session:
        sender = await join(session, sender_url, room, "sender")
        receivers = [
            Receiver(await join(session, u, room, f"r{i}"), t)
            for i, (u, t) in enumerate(zip(receiver_urls, timed, strict=True))
        ]
        for r in receivers:
            r.task = asyncio.create_task(r.read())
        acks: asyncio.Queue[None] = asyncio.Queue()

        async def sender_reader() -> None:
            async for msg in sender:
                if msg.type == aiohttp.WSMsgType.TEXT and '"chat-ack"' in msg.data:
                    acks.put_nowait(None)

        reader = asyncio.create_task(sender_reader())
        await asyncio.sleep(0.5)  # let the joins settle everywhere
        sent: dict[str, float] = {}
        t_start = time.perf_counter()
        i = 0
        if rate is not None:
            interval = 1.0 / rate
            while time.perf_counter() - t_start < seconds:
                target = t_start + i * interval
                delay = target - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                text = f"m{i}"
                sent[text] = time.perf_counter()
                await sender.send_str(json.dumps({"type": "chat", "text": text}))
                i += 1
        else:
            in_flight = 0
            while time.perf_counter() - t_start < seconds:
                while in_flight >= window:
                    await acks.get()
                    in_flight -= 1
                text = f"m{i}"
                sent[text] = time.perf_counter()
                await sender.send_str(json.dumps({"type": "chat", "text": text}))
                in_flight += 1
                i += 1
        t_sent = time.perf_counter()
        # Wait for the tail (bounded).
        timed_rx = [r for r in receivers if r.timed]
        deadline = time.perf_counter() + 15
        while time.perf_counter() < deadline:
            if all(len(r.got) >= len(sent) for r in timed_rx):
                break
            await asyncio.sleep(0.05)
        t_end = max((max(r.got.values(), default=t_sent) for r in timed_rx), default=t_sent)
        lat = [
            (r.got[text] - ts) * 1000
            for r in timed_rx
            for text, ts in sent.items()
            if text in r.got
        ]
        expected = len(sent) * len(timed_rx)
        reader.cancel()
        for r in receivers:
            assert r.task is not None
            r.task.cancel()
        await sender.close()
        await asyncio.gather(*(r.ws.close() for r in receivers), return_exceptions=True)
    lat.sort()
    q = statistics.quantiles(lat, n=100, method="inclusive") if len(lat) >= 2 else lat * 99
    return {
        "sent": len(sent),
        "receivers": len(timed_rx),
        "delivered": len(lat),
        "lost": expected - len(lat),
        "p50": q[49],
        "p99": q[98],
        "max": lat[-1] if lat else float("nan"),
        "msgs_per_s": len(sent) / (t_sent - t_start),
        "deliveries_per_s": len(lat) / (t_end - t_start),
    }


async def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--clients", type=int, default=20, help="clients in the room, sender included")
    ap.add_argument("--rate", type=float, default=20.0, help="chats/s in the paced run")
    ap.add_argument("--seconds", type=float, default=4.0, help="sending time per run")
    ap.add_argument("--window", type=int, default=32, help="chats in flight in the saturating run")
    ap.add_argument(
        "--database-url",
        default=os.environ.get("PARLEY_TEST_POSTGRES_URL"),
        help="shared database (default: $PARLEY_TEST_POSTGRES_URL; else SQLite per node, which "
        "only the single-node setup can use fairly)",
    )
    args = ap.parse_args()
    if not args.database_url:
        raise SystemExit("a shared --database-url (PostgreSQL) is needed for the cluster setup")
    secret = uuid.uuid4().hex * 2
    base = Path(tempfile.mkdtemp(prefix="parley-bench-"))
    procs = Procs(base)
    t0 = time.monotonic()
    load_before = os.getloadavg()[0]
    rows: list[tuple[str, str, dict[str, float]]] = []
    try:
        single = procs.node("S", args.database_url, None, secret)
        redis_url = procs.redis()
        node_a = procs.node("A", args.database_url, redis_url, secret)
        node_b = procs.node("B", args.database_url, redis_url, secret)
        n_rx = args.clients - 1
        # Single node: everyone on S; all receivers timed.
        single_urls = [single] * n_rx
        single_timed = [True] * n_rx
        # Cluster: receivers alternate B, A, B, A…; only those on B (cross-node) are timed.
        cluster_urls = [node_b if i % 2 == 0 else node_a for i in range(n_rx)]
        cluster_timed = [u == node_b for u in cluster_urls]
        for label, run in (
            (f"paced {args.rate:g}/s", {"rate": args.rate}),
            (f"saturating (window {args.window})", {"rate": None}),
        ):
            rows.append(("single node", label, await measure(
                single, single_urls, single_timed, window=args.window, seconds=args.seconds, **run
            )))  # fmt: skip
            rows.append(("cross-node (A→B)", label, await measure(
                node_a, cluster_urls, cluster_timed, window=args.window, seconds=args.seconds,
                **run,
            )))  # fmt: skip
    finally:
        procs.stop()
        shutil.rmtree(base, ignore_errors=True)
    elapsed = time.monotonic() - t0
    print(
        f"Parley chat fan-out, {args.clients} clients in one room, one sender; "
        f"{args.seconds:g} s per run; PostgreSQL store; "
        f"{platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} CPUs; load average before: "
        f"{load_before:.1f}; total {elapsed:.0f} s\n"
    )
    print(
        "| setup | run | timed receivers | chats sent | chats/s | p50 ms | p99 ms | max ms "
        "| deliveries/s | lost |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for setup, label, r in rows:
        print(
            f"| {setup} | {label} | {r['receivers']} | {r['sent']} | {r['msgs_per_s']:.0f} "
            f"| {r['p50']:.1f} | {r['p99']:.1f} | {r['max']:.1f} | {r['deliveries_per_s']:.0f} "
            f"| {r['lost']} |"
        )


if __name__ == "__main__":
    asyncio.run(main())
