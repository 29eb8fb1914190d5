#!/usr/bin/env python3
"""What a pass-through policy hook costs: Parley with and without ``--policy``, same session.

Two measurements, each alternating the variants (none, hook, hook, none, ...) so that a
drifting load on the shared machine falls on both alike:

1. **Fan-out** (``--fanout``): ``bench/fanout.py``'s scenario A (one room, 100 clients, 10
   senders, rising rate, the shared harness's C generator), run once per round for
   ``parley`` (no policy) and ``parley_policy`` (``--policy`` with a pass-through
   ``on_chat``).  Reports the sustained deliveries/s, server CPU per delivery and the
   p99 at 100-800 msgs/s in of each, and the ratio.
2. **Chat latency at low load** (``--latency``): one server per variant and round, pinned
   to CPU 0 like the harness's; this script, pinned to CPU 1, joins 1 sender and 9
   receivers over real WebSockets and sends ``--rate`` chat messages a second, each
   carrying its send time; every delivery's latency (send to receipt, one clock) goes
   into the p50/p99 of its variant.

The hook is ``def on_chat(msg): return msg`` (sync: it runs in place, on the server's
thread, under the shared budget timer of ``parley/policy/in_place.py``), or with
``--hook async`` ``async def on_chat(msg): return msg``.  The maximum is noisy (a step
fails on one hiccup) and the first run of an invocation tends to do best: compare
rounds of two or more (ABBA), over several invocations, and the p50 at each rate too.

    python bench/policy_cost.py --fanout --rounds 2
    python bench/policy_cost.py --latency --rounds 4 --seconds 20
    python bench/policy_cost.py --fanout --latency --out /tmp/policy-cost.md

Like bench/fanout.py it needs the shared harness (``../shared/bench/fanout``) for the
fan-out part, and writes caches and results under ``FANOUT_CACHE``/``FANOUT_RESULTS``.
Do not run it while another fan-out benchmark runs (both pin CPUs 0 and 1).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import platform
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from types import ModuleType

import aiohttp

HERE = Path(__file__).resolve().parent
HOOKS = {
    "sync": "def on_chat(msg):\n    return msg\n",
    "async": "async def on_chat(msg):\n    return msg\n",
}
NONE, HOOK = "parley", "parley_policy"


def log(msg: str) -> None:
    print(f"[policy-cost] {msg}", file=sys.stderr, flush=True)


def fanout_module() -> ModuleType:
    """bench/fanout.py, for its harness driver and its summary helpers (not copied)."""
    spec = importlib.util.spec_from_file_location("parley_bench_fanout", HERE / "fanout.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def machine() -> str:
    cpu = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        ),
        platform.processor(),
    )
    return f"{cpu}, {os.cpu_count()} CPUs, Python {platform.python_version()}"


def loadavg() -> str:
    return " / ".join(Path("/proc/loadavg").read_text().split()[:3])


def order(rounds: int) -> list[tuple[int, str]]:
    """ABBA: none, hook, hook, none, none, hook, ..."""
    out = []
    for r in range(1, rounds + 1):
        pair = (NONE, HOOK) if r % 2 else (HOOK, NONE)
        out += [(r, pair[0]), (r, pair[1])]
    return out


# -- fan-out ----------------------------------------------------------------------------------


def fanout(args: argparse.Namespace, policy: Path, lines: list[str]) -> None:
    fo = fanout_module()
    harness = fo.harness_dir(args.harness)
    _, results_base = fo.setup_env()
    fo.ensure_venv(Path(os.environ["FANOUT_CACHE"]))
    fo.load_harness(harness).build_gen()
    results = results_base / time.strftime("policy-%Y%m%d-%H%M%S")
    results.mkdir(parents=True)
    os.environ["FANOUT_RESULTS"] = str(results)
    hargs = argparse.Namespace(
        port=args.port,
        idle=5000,
        server_cpu="0",
        gen_cpu="1",
        max_seconds=900,
        nice=args.nice,
        gen_args=args.gen_args,
    )
    loads = []
    for r, variant in order(args.rounds):
        data_dir = tempfile.mkdtemp(prefix="parley-policy-bench-")
        cmd = fo.parley_cmd(sys.executable, data_dir, 200)
        if variant == HOOK:
            cmd += f" --policy {shlex.quote(str(policy))}"
        before = loadavg()
        log(f"fan-out round {r} {variant} (load {before})")
        try:
            fo.run_harness(
                harness, hargs, variant, "A", ["--server-cmd", cmd, "--adapter", "join_chat_ws"]
            )
        finally:
            shutil.rmtree(data_dir, ignore_errors=True)
        loads.append(f"{variant} r{r}: {before} → {loadavg()}")
        time.sleep(1)
    runs = fo.load_runs(results / "raw")
    st = {v: fo.peer_stats(runs, v) for v in (NONE, HOOK)}
    sus = {v: [b["deliveries_per_s"] for b in st[v]["best"]] for v in st}
    w = lines.append
    w(f"Fan-out, scenario A, {args.rounds} round(s) each, raw JSON lines in `{results / 'raw'}`")
    w("")
    w("| metric | no policy | pass-through on_chat | hook / none |")
    w("|---|---|---|---|")
    w(
        f"| max sustained deliveries/s | {fo.span(sus[NONE], '{:.0f}')} "
        f"| {fo.span(sus[HOOK], '{:.0f}')} "
        f"| {fo.fmt_ratio(fo.med(sus[HOOK]), fo.med(sus[NONE]))} |"
    )
    w(
        f"| msgs in/s at max | {fo.span([b['rate'] for b in st[NONE]['best']], '{:.0f}')} "
        f"| {fo.span([b['rate'] for b in st[HOOK]['best']], '{:.0f}')} | |"
    )
    w(
        f"| server CPU µs per delivery at max | {fo.span(st[NONE]['sat_us'], '{:.2f}')} "
        f"| {fo.span(st[HOOK]['sat_us'], '{:.2f}')} "
        f"| {fo.fmt_ratio(fo.med(st[HOOK]['sat_us']), fo.med(st[NONE]['sat_us']))} |"
    )
    for rate in fo.LOW_RATES:
        cells = [
            fo.span([s["p99_ms"] for s in st[v]["by_rate"].get(rate, [])], "{:.2f}")
            for v in (NONE, HOOK)
        ]
        w(f"| p99 ms at {rate} msgs/s in (99 receivers) | {cells[0]} | {cells[1]} | |")
    w("")
    w("Load average (1/5/15 min) before → after each run: " + "; ".join(loads))
    w("")


# -- latency at low load ----------------------------------------------------------------------


async def latency_round(port: int, args: argparse.Namespace) -> list[float]:
    """Latencies (ms) of every delivery of ``rate`` msgs/s for ``seconds``."""
    url = f"ws://127.0.0.1:{port}/ws"
    room = f"lat-{os.getpid()}-{time.monotonic_ns()}"
    samples: list[float] = []
    async with aiohttp.ClientSession() as session:
        sockets = []
        for i in range(args.receivers + 1):
            ws = await session.ws_connect(url)
            await ws.send_json({"type": "join", "room": room, "name": f"c{i}", "v": 1})
            while (answer := await ws.receive_json())["type"] != "welcome":
                if answer["type"] == "error":
                    sys.exit(f"join refused: {answer}")
            sockets.append(ws)
        sender, receivers = sockets[0], sockets[1:]
        measuring = False

        async def read(ws: aiohttp.ClientWebSocketResponse) -> None:
            async for frame in ws:
                now = time.perf_counter_ns()
                msg = json.loads(frame.data)
                if msg["type"] == "chat" and measuring:
                    sent = int(msg["message"]["text"].split(" ", 1)[0])
                    samples.append((now - sent) / 1e6)

        readers = [asyncio.create_task(read(ws)) for ws in receivers]
        drain = asyncio.create_task(read(sender))  # acks and its own echo: not measured
        gap = 1 / args.rate
        start = time.perf_counter()
        n = 0
        total = int(args.seconds * args.rate)
        warm = int(args.rate)  # the first second warms up
        while n < total + warm:
            measuring = n >= warm
            await sender.send_str(
                json.dumps({"type": "chat", "text": f"{time.perf_counter_ns()} x"})
            )
            n += 1
            await asyncio.sleep(max(0.0, start + n * gap - time.perf_counter()))
        await asyncio.sleep(0.5)
        for t in [*readers, drain]:
            t.cancel()
        for ws in sockets:
            await ws.close()
    return samples


def start_server(port: int, data_dir: str, policy: Path | None) -> subprocess.Popen[bytes]:
    """Pinned to CPU 0, at this process's priority."""
    cmd = [
        sys.executable, "-m", "parley", "serve", "--host", "127.0.0.1", "--port", str(port),
        "--data-dir", data_dir, "--media", "mesh", "--no-rate-limits", "--log-level", "warning",
        "--max-participants", "200",
    ]  # fmt: skip
    if policy is not None:
        cmd += ["--policy", str(policy)]
    proc = subprocess.Popen(["taskset", "-c", "0", *cmd], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    sys.exit("parley serve did not start")


def latency(args: argparse.Namespace, policy: Path, lines: list[str]) -> None:
    os.sched_setaffinity(0, {1})  # the clients on the other core than the server
    if args.nice:
        try:
            os.nice(args.nice)  # the servers started below inherit it
        except PermissionError:
            log("cannot raise the priority: running at the default nice level")
    by: dict[str, list[float]] = {NONE: [], HOOK: []}
    per_round: list[str] = []
    for r, variant in order(args.rounds):
        data_dir = tempfile.mkdtemp(prefix="parley-policy-lat-")
        before = loadavg()
        proc = start_server(args.port, data_dir, policy if variant == HOOK else None)
        try:
            time.sleep(0.5)
            xs = asyncio.run(latency_round(args.port, args))
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
            shutil.rmtree(data_dir, ignore_errors=True)
        by[variant] += xs
        q = statistics.quantiles(xs, n=100)
        per_round.append(f"| {r} | {variant} | {len(xs)} | {q[49]:.3f} | {q[98]:.3f} | {before} |")
        log(f"latency round {r} {variant}: n={len(xs)} p50 {q[49]:.3f} p99 {q[98]:.3f} ms")
    w = lines.append
    w(
        f"Chat latency at low load: {args.rate} msgs/s from 1 sender to {args.receivers} "
        f"receivers, {args.seconds:.0f} s per run after 1 s of warm-up, {args.rounds} run(s) "
        "per variant, ABBA order"
    )
    w("")
    w("| run | variant | deliveries | p50 ms | p99 ms | load avg before |")
    w("|---|---|---|---|---|---|")
    lines.extend(per_round)
    w("")
    q0, q1 = statistics.quantiles(by[NONE], n=100), statistics.quantiles(by[HOOK], n=100)
    w("| all runs | deliveries | p50 ms | p99 ms |")
    w("|---|---|---|---|")
    w(f"| no policy | {len(by[NONE])} | {q0[49]:.3f} | {q0[98]:.3f} |")
    w(f"| pass-through on_chat | {len(by[HOOK])} | {q1[49]:.3f} | {q1[98]:.3f} |")
    w(f"| hook adds | | {q1[49] - q0[49]:+.3f} | {q1[98] - q0[98]:+.3f} |")
    w("")


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--fanout", action="store_true", help="the fan-out comparison")
    ap.add_argument("--latency", action="store_true", help="the low-load latency comparison")
    ap.add_argument("--rounds", type=int, default=2, help="runs of each variant")
    ap.add_argument("--hook", choices=sorted(HOOKS), default="sync")
    ap.add_argument("--harness", help="the shared harness folder (default ../shared/bench/fanout)")
    ap.add_argument("--port", type=int, default=18865)
    ap.add_argument("--nice", type=int, default=-15, help="nice level of servers and clients")
    ap.add_argument("--gen-args", default="", help="extra fan-out generator options")
    ap.add_argument("--rate", type=float, default=20.0, help="latency: chat messages a second")
    ap.add_argument("--receivers", type=int, default=9, help="latency: receiving clients")
    ap.add_argument("--seconds", type=float, default=20.0, help="latency: seconds per run")
    ap.add_argument("--out", help="also write the markdown to this file")
    args = ap.parse_args()
    if not (args.fanout or args.latency):
        ap.error("choose --fanout and/or --latency")
    policy = Path(tempfile.mkdtemp(prefix="parley-policy-hook-")) / "passthrough.py"
    policy.write_text(HOOKS[args.hook])
    lines = [
        f"Command: `python bench/policy_cost.py {shlex.join(sys.argv[1:])}`  ",
        f"Machine: {machine()}; started {time.strftime('%Y-%m-%d %H:%M:%S %Z')}, "
        f"load average {loadavg()}; hook: `{HOOKS[args.hook].strip()}`",
        "",
    ]
    for part in (fanout if args.fanout else None, latency if args.latency else None):
        if part is not None:
            part(args, policy, lines)
            if args.out:  # what is measured so far, should a later part fail
                Path(args.out).write_text("\n".join(lines) + "\n")
    lines.append(f"Finished {time.strftime('%H:%M:%S %Z')}, load average {loadavg()}.")
    text = "\n".join(lines) + "\n"
    if args.out:
        Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
