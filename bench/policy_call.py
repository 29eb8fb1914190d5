#!/usr/bin/env python3
"""What one call of a pass-through sync ``on_chat`` costs the server, in place vs in a thread.

In-process, no network: ``Policy.on_chat`` awaited ``--calls`` times in a row on one event
loop, for a sync ``def on_chat(msg): return msg`` run in place under the SIGALRM budget (the
default) and in the worker thread (``in_place=False``, how every sync hook ran before),
alternating the two ``--rounds`` times (ABAB...) so that a drifting load falls on both.
Reports the median µs per call of each and their ratio.

    python bench/policy_call.py --calls 20000 --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

from parley.policy.api import ChatInfo
from parley.policy.runner import Policy

CPUINFO = Path("/proc/cpuinfo")


def cpu_model() -> str:
    lines = CPUINFO.read_text().splitlines()
    return next((ln.split(":", 1)[1].strip() for ln in lines if "model name" in ln), "?")


async def per_call(policy: Policy, calls: int) -> float:
    info = ChatInfo("room", "p_1", "Ada", "hello")
    start = time.perf_counter()
    for _ in range(calls):
        await policy.on_chat(info)
    return (time.perf_counter() - start) / calls * 1e6


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--calls", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "policy.py"
        path.write_text("def on_chat(msg):\n    return msg\n")
        in_place = Policy(path)
        threaded = Policy(path, in_place=False)
        results: dict[str, list[float]] = {"in place": [], "worker thread": []}
        for _ in range(args.rounds):
            results["in place"].append(await per_call(in_place, args.calls))
            results["worker thread"].append(await per_call(threaded, args.calls))
        await in_place.close()
        await threaded.close()
    cpu = cpu_model()
    print(
        f"CPU: {cpu}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"load {os.getloadavg()[0]:.2f}; {args.calls} calls x {args.rounds} rounds each"
    )
    print("| mode | µs per call (median of rounds) | rounds |")
    print("|---|---|---|")
    med = {k: statistics.median(v) for k, v in results.items()}
    for k, v in results.items():
        print(f"| {k} | {med[k]:.1f} | {', '.join(f'{x:.1f}' for x in v)} |")
    print(f"\nworker thread / in place: {med['worker thread'] / med['in place']:.1f}x")
    moved = bool(in_place._threaded)  # noqa: SLF001
    print(f"the in-place hook was moved to a thread during the run: {moved}")


if __name__ == "__main__":
    asyncio.run(main())
