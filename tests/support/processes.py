"""Stopping the processes a test started, by PID (shared by the test harnesses).

Module name is unique across tests/; each harness puts this folder on ``sys.path``.
"""

from __future__ import annotations

import signal
import subprocess


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
