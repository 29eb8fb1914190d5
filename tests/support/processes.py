"""Stopping the processes a test started, by PID (shared by the test harnesses).

Module name is unique across tests/; each harness puts this folder on ``sys.path``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path


def stop_process(
    proc: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM, timeout: float = 15.0
) -> bool:
    """Send ``sig`` and wait up to ``timeout`` s; SIGKILL if it has not exited by then.

    True if it had to be killed (it hung).
    """
    if proc is None or proc.poll() is not None:
        return False
    proc.send_signal(sig)
    try:
        proc.wait(timeout=timeout)
        return False
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
        return True


def kill_process(proc: subprocess.Popen[bytes] | None) -> None:
    """SIGKILL and reap, if still running."""
    if proc is not None and proc.poll() is None:
        proc.kill()
        proc.wait(timeout=10)


def launch_parley(
    port: int,
    data_dir: Path,
    args: Sequence[str],
    log_path: Path,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """``python -m parley serve`` on 127.0.0.1:``port``, its output appended to ``log_path``.

    ``env``: the whole environment (default: this one without any ``PARLEY_*``).
    """
    argv = [
        sys.executable, "-m", "parley", "serve",
        "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(data_dir), *args,
    ]  # fmt: skip
    if env is None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
    env = {**env, "PYTHONUNBUFFERED": "1"}
    with log_path.open("ab") as log:
        log.write(f"\n===== {' '.join(argv)}\n".encode())
        log.flush()
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=data_dir.parent,
            env=env,
        )
