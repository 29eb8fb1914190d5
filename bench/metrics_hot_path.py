#!/usr/bin/env python3
"""What the metrics' hot path costs per call: ``message_in``, ``deliveries`` and
``observe_fanout`` (each chat message makes one of each), in-process.

Baseline in the same run: a bare Python method call doing nothing, so the figure reads as
"so many empty calls" on whatever machine runs it.

    python bench/metrics_hot_path.py --calls 200000 --rounds 5
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from parley.ops.metrics import Metrics


class _Empty:
    def call(self, _: object) -> None:
        return None


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def per_call(target: object, n: int) -> float:
    """Seconds per call of the three hot-path calls a chat message makes, on ``target``
    (the metrics, or the empty baseline whose one method stands in for all three)."""
    message_in = getattr(target, "message_in", None) or target.call  # type: ignore[attr-defined]
    deliveries = getattr(target, "deliveries", None) or target.call  # type: ignore[attr-defined]
    fanout = getattr(target, "observe_fanout", None) or target.call  # type: ignore[attr-defined]
    start = time.perf_counter()
    for _ in range(n):
        message_in("chat")
        deliveries(10)
        fanout(0.0002)
    return (time.perf_counter() - start) / (3 * n)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--calls", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    hot, empty = [], []
    for _ in range(args.rounds):  # alternating, so a drifting load falls on both
        hot.append(per_call(Metrics(process=False), args.calls))
        empty.append(per_call(_Empty(), args.calls))
    h, e = statistics.median(hot), statistics.median(empty)
    print(f"CPU: {cpu_model()}")
    print(f"metrics hot path: {h * 1e6:.3f} us per call (median of {args.rounds})")
    print(f"empty method call: {e * 1e6:.3f} us per call; ratio {h / e:.1f}x")


if __name__ == "__main__":
    main()
