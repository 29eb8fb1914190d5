#!/usr/bin/env python3
"""Big rooms (issue 16): N WebSocket clients join one room of ``parley serve``.

For each size N, and for each mode (``coalesced``: presence batched past the default
threshold of 100; ``baseline``: ``--presence-threshold`` so high that it never engages,
i.e. every join told to everyone and every welcome listing everyone, as before issue 16),
a fresh server is started and N aiohttp clients (spread over ``--procs`` worker
processes) join one room at an even pace over ``--duration`` seconds.  Measured:

* the server's CPU time (utime + stime from /proc/<pid>/stat) from the first join until
  every client has its welcome and the last presence frame went out;
* frames each client received during the joins (the O(N^2) of the baseline);
* RSS per idle participant: the server's RSS growth over the N joins, divided by N;
* one chat message to everyone, three times: the p99 (and max) over the N recipients
  of send -> receipt (one clock: the same machine).

The server runs in mesh mode (no aiortc in the measured process, like
bench/idle_memory.py) with ``--no-rate-limits`` (every client comes from 127.0.0.1),
pinned to CPU 0 and the clients to the others when there are at least two.

    python bench/big_room.py --sizes 1000,5000,10000 --baseline-sizes 1000,2000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ROOM = "allhands"
NEVER = 10**9  # a presence threshold no room reaches: the baseline


def raise_nofile() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_times(pid: int) -> tuple[float, float]:
    """utime and stime of ``pid`` (its threads included), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def context_switches(pid: int) -> int:
    """Voluntary and involuntary, of all its threads: the event loop's wake-ups, mostly."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                total += sum(int(line.split()[1]) for line in f if "ctxt_switches" in line)
        except OSError:  # a thread that ended meanwhile
            pass
    return total


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


# -- the clients (worker processes) --------------------------------------------------


async def worker(url: str, count: int, offset: int, rate: float) -> None:
    """Join ``count`` clients at ``rate`` a second; report on stdout; answer commands."""
    import aiohttp

    conn = aiohttp.TCPConnector(limit=0)
    session = aiohttp.ClientSession(connector=conn)
    frames = [0] * count
    probes: dict[str, list[float]] = {}
    welcomed = 0
    failures = 0
    done = asyncio.Event()

    def finished(ok: bool) -> None:
        nonlocal welcomed, failures
        if ok:
            welcomed += 1
        else:
            failures += 1
        if welcomed + failures == count:
            done.set()

    async def one(i: int) -> None:
        try:
            ws = await session.ws_connect(url, max_msg_size=0, heartbeat=None)
        except Exception:
            finished(False)
            return
        await ws.send_str(json.dumps({"type": "join", "room": ROOM, "name": f"Bot {offset + i}"}))
        got_welcome = False
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            data = msg.data
            if not got_welcome:
                if data.startswith('{"type":"welcome"'):
                    got_welcome = True
                    finished(True)
                elif data.startswith('{"type":"error"'):
                    break
                continue
            frames[i] += 1
            if '"probe-' in data:
                tag = data.split('"probe-', 1)[1].split('"', 1)[0]
                probes.setdefault(tag, []).append(time.time())
        if not got_welcome:
            finished(False)

    tasks = []
    start = time.perf_counter()
    for i in range(count):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i)))
    try:
        await asyncio.wait_for(done.wait(), 120)
    except TimeoutError:
        pass  # reported as neither joined nor failed
    print(json.dumps({"joined": welcomed, "failures": failures}), flush=True)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        cmd = json.loads(line)
        if cmd["cmd"] == "frames":
            print(json.dumps({"frames": sum(frames)}), flush=True)
        elif cmd["cmd"] == "probe":
            tag = cmd["tag"]
            deadline = time.time() + 30
            while len(probes.get(tag, [])) < welcomed and time.time() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            print(json.dumps({"times": probes.get(tag, [])}), flush=True)
        elif cmd["cmd"] == "quit":
            break
    for t in tasks:
        t.cancel()
    await session.close()


# -- the coordinator --------------------------------------------------------------------


def start_server(
    port: int, data_dir: Path, n: int, threshold: int | None, cpu: str | None
) -> subprocess.Popen[bytes]:
    argv = [
        sys.executable, "-m", "parley", "serve", "--host", "127.0.0.1", "--port", str(port),
        "--data-dir", str(data_dir), "--media", "mesh", "--no-rate-limits",
        "--max-participants", str(n + 10), "--max-connections-per-address", str(n + 100),
        "--log-level", "warning",
    ]  # fmt: skip
    if threshold is not None:
        argv += ["--presence-threshold", str(threshold)]
    if cpu is not None and shutil.which("taskset"):
        argv = ["taskset", "-c", cpu, *argv]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("parley serve did not start")


def server_pid(proc: subprocess.Popen[bytes]) -> int:
    """The Python process (under taskset, ``exec``'d in place: the same pid)."""
    return proc.pid


async def host_client(url: str):  # type: ignore[no-untyped-def]
    import aiohttp

    session = aiohttp.ClientSession()
    ws = await session.ws_connect(url, max_msg_size=0)
    await ws.send_str(json.dumps({"type": "join", "room": ROOM, "name": "Host"}))
    while True:
        msg = await ws.receive()
        if msg.type == aiohttp.WSMsgType.TEXT and msg.data.startswith('{"type":"welcome"'):
            return session, ws


async def drain(ws) -> None:  # type: ignore[no-untyped-def]
    async for _ in ws:
        pass


def ask(workers: list[subprocess.Popen[bytes]], cmd: dict[str, object]) -> list[dict[str, object]]:
    line = (json.dumps(cmd) + "\n").encode()
    for w in workers:
        assert w.stdin is not None
        w.stdin.write(line)
        w.stdin.flush()
    out = []
    for w in workers:
        assert w.stdout is not None
        out.append(json.loads(w.stdout.readline()))
    return out


async def run_one(n: int, mode: str, args: argparse.Namespace) -> dict[str, object]:
    port = free_port()
    data_dir = Path(tempfile.mkdtemp(prefix="parley-big-room-"))
    pin = (os.cpu_count() or 1) >= 2 and not args.no_pin
    proc = start_server(
        port, data_dir, n, None if mode == "coalesced" else NEVER, "0" if pin else None
    )
    pid = server_pid(proc)
    url = f"ws://127.0.0.1:{port}/ws"
    try:
        session, host = await host_client(url)
        drainer = asyncio.create_task(drain(host))
        await asyncio.sleep(1.0)
        (user0, sys0), rss0, t0 = cpu_times(pid), rss_kb(pid), time.perf_counter()
        switches0 = context_switches(pid)
        spy = None
        if args.profile:  # py-spy over the measured window (the GIL holder's stacks)
            spy = subprocess.Popen(  # noqa: ASYNC220
                ["py-spy", "record", "--gil", "--nonblocking", "--format", "raw", "-r", "200",
                 "-p", str(pid), "-o", f"{args.profile}-{n}.txt"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
        procs = args.procs
        shares = [n // procs + (1 if i < n % procs else 0) for i in range(procs)]
        workers = []
        offset = 0
        for share in shares:
            cmd = [sys.executable, __file__, "--worker", url, str(share), str(offset),
                   str(share / args.duration)]  # fmt: skip
            if pin:
                cmd = ["taskset", "-c", f"1-{(os.cpu_count() or 2) - 1}", *cmd]
            workers.append(subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE))  # noqa: ASYNC220
            offset += share
        joined = 0
        failures = 0
        for w in workers:
            assert w.stdout is not None
            report = json.loads(await asyncio.to_thread(w.stdout.readline))
            joined += report["joined"]
            failures += report["failures"]
        t_joined = time.perf_counter() - t0
        # The last presence frame (a window of 0.5-2 s, 5 s in a flood of joins:
        # core/presence.py) and the fan-out of the last joins.
        await asyncio.sleep(5.5)
        (user1, sys1), rss1 = cpu_times(pid), rss_kb(pid)
        switches = context_switches(pid) - switches0
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            await asyncio.to_thread(spy.wait)
        replies = await asyncio.to_thread(ask, workers, {"cmd": "frames"})
        frames = sum(int(r["frames"]) for r in replies)  # type: ignore[call-overload]
        p99s, maxes = [], []
        for k in range(3):
            tag = f"{k}{time.time_ns()}"
            sent = time.time()
            await host.send_str(json.dumps({"type": "chat", "text": f"probe-{tag}"}))
            replies = await asyncio.to_thread(ask, workers, {"cmd": "probe", "tag": tag})
            times = [t for r in replies for t in r["times"]]  # type: ignore[attr-defined]
            lat = sorted((t - sent) * 1000 for t in times)
            if lat:
                p99s.append(lat[min(len(lat) - 1, int(len(lat) * 0.99))])
                maxes.append(lat[-1])
            await asyncio.sleep(0.5)
        for w in workers:
            assert w.stdin is not None
            w.stdin.write(b'{"cmd":"quit"}\n')
            w.stdin.flush()
        for w in workers:
            try:
                w.wait(timeout=20)
            except subprocess.TimeoutExpired:
                w.kill()
        drainer.cancel()
        await session.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(data_dir, ignore_errors=True)
    return {
        "n": n,
        "mode": mode,
        "joined": joined,
        "failures": failures,
        "join_wall_s": round(t_joined, 2),
        "server_cpu_s": round(user1 + sys1 - user0 - sys0, 2),
        "server_sys_s": round(sys1 - sys0, 2),  # the kernel's share (loopback TCP included)
        "server_context_switches": switches,
        "frames_per_client": round(frames / max(1, joined), 1),
        "rss_kb_per_participant": round((rss1 - rss0) / n, 2),
        "chat_p99_ms": round(statistics.median(p99s), 1) if p99s else None,
        "chat_max_ms": round(max(maxes), 1) if maxes else None,
    }


async def main_async(args: argparse.Namespace) -> None:
    print(f"# RLIMIT_NOFILE {raise_nofile()}", flush=True)
    with open("/proc/cpuinfo") as f:  # noqa: ASYNC230
        model = next(
            (line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "?"
        )
    print(f"# CPU: {model}, {os.cpu_count()} cores; joins over {args.duration} s", flush=True)
    plan = [(n, "coalesced") for n in args.sizes] + [(n, "baseline") for n in args.baseline_sizes]
    for n, mode in plan:
        result = await run_one(n, mode, args)
        print(json.dumps(result), flush=True)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        raise_nofile()
        url, count, offset, rate = (
            sys.argv[2],
            int(sys.argv[3]),
            int(sys.argv[4]),
            float(sys.argv[5]),
        )
        asyncio.run(worker(url, count, offset, rate))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ints = lambda text: [int(x) for x in text.split(",") if x]  # noqa: E731
    parser.add_argument("--sizes", type=ints, default=[1000, 5000, 10000])
    parser.add_argument("--baseline-sizes", type=ints, default=[1000, 2000])
    parser.add_argument("--duration", type=float, default=20.0, help="seconds over which N join")
    parser.add_argument("--procs", type=int, default=2, help="client worker processes")
    parser.add_argument(
        "--profile", metavar="PREFIX", help="py-spy (raw stacks) of the server: PREFIX-N.txt"
    )
    parser.add_argument("--no-pin", action="store_true", help="do not pin the server to CPU 0")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
