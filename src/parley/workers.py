"""``parley serve --workers N``: N server processes on one port, one per core.

Each worker is a whole Parley node (``--node-id <base>-w<i>``) of a cluster on the
``--broker`` Redis: the workers listen on the same TCP port with ``SO_REUSEPORT``, so the
kernel spreads new connections over them, and rooms are shared exactly as between the
nodes of a multi-machine cluster (a room's media is forwarded by one worker, its media
owner; chat and presence cross workers through Redis).  They share the store (SQLite in
the data dir works: it is in WAL mode; or ``--database-url``) and the resume-token secret.
With ``--media-port`` each worker gets its own slice of the UDP range.

The parent starts the workers, restarts one that dies, and passes SIGINT/SIGTERM on to
all of them (each closes its WebSockets with 1001 and flushes), then waits for them.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from .cluster import new_node_id
from .core.resume_tokens import load_secret
from .sfu.ports import format_ports

log = logging.getLogger(__name__)

#: Seconds to wait before starting a worker again that died on its own.
RESTART_DELAY = 1.0
#: Seconds the workers get to shut down before they are killed.
STOP_TIMEOUT = 20.0


def media_port_slices(ports: tuple[int, int], workers: int) -> list[tuple[int, int]]:
    """Split ``--media-port``'s range into one contiguous slice per worker."""
    low, high = ports
    count = high - low + 1
    if count < workers:
        raise SystemExit(
            f"--workers {workers} needs a --media-port range of at least {workers} ports "
            f"(each worker binds its own); got {format_ports(ports)}"
        )
    size, extra = divmod(count, workers)
    slices, start = [], low
    for i in range(workers):
        end = start + size + (1 if i < extra else 0) - 1
        slices.append((start, end))
        start = end + 1
    return slices


def check(args: argparse.Namespace) -> None:
    if not args.broker:
        raise SystemExit(
            "--workers needs --broker redis://…: the workers share rooms through Redis"
        )


def worker_commands(args: argparse.Namespace, argv: list[str]) -> list[list[str]]:
    """One ``parley serve`` command line per worker (the parent's options, then its own)."""
    base = args.node_id or new_node_id()
    slices = media_port_slices(args.media_port, args.workers) if args.media_port else None
    commands = []
    for i in range(args.workers):
        own = ["--workers", "1", "--reuse-port", "--node-id", f"{base}-w{i}"]
        if slices is not None:
            own += ["--media-port", format_ports(slices[i])]
        commands.append([sys.executable, "-m", "parley", *argv, *own])
    return commands


def run_workers(args: argparse.Namespace, argv: list[str]) -> int:
    """Start the workers and supervise them until a signal stops them all."""
    check(args)
    env = dict(os.environ)
    if not env.get("PARLEY_SECRET"):
        # One secret for all workers (a resume token is checked by whichever worker the
        # client reconnects to), and the same after a restart: the one in the data dir.
        env["PARLEY_SECRET"] = load_secret(Path(args.data_dir)).hex()
    commands = worker_commands(args, argv)
    procs: list[subprocess.Popen[bytes] | None] = [None] * len(commands)
    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for proc in procs:
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for i, command in enumerate(commands):
        procs[i] = subprocess.Popen(command, env=env)
    log.info("started %d workers: %s", len(procs), ", ".join(str(p.pid) for p in procs if p))
    while not stopping:
        time.sleep(0.2)
        for i, proc in enumerate(procs):
            if stopping or proc is None or proc.poll() is None:
                continue
            log.error("worker %d (pid %d) exited with %s; starting it again", i, proc.pid,
                      proc.returncode)  # fmt: skip
            time.sleep(RESTART_DELAY)
            if not stopping:
                procs[i] = subprocess.Popen(commands[i], env=env)
    deadline = time.monotonic() + STOP_TIMEOUT
    code = 0
    for proc in procs:
        if proc is None:
            continue
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        code = code or (proc.returncode if proc.returncode and proc.returncode > 0 else 0)
    return code
