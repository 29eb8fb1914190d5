"""Starting, probing and stopping (by PID) the processes a test runs (shared by the harnesses).

Module name is unique across tests/; each harness puts this folder on ``sys.path``.
"""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LoopbackUrls:
    """``url`` and ``ws_url`` of a plain-HTTP server on 127.0.0.1:``port``."""

    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"{self.url}/ws"


def spawn_logged(
    argv: Sequence[str],
    log_path: Path,
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    preexec_fn: Callable[[], Any] | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` (stdin closed), its output appended to ``log_path`` after a header line."""
    with log_path.open("ab") as log:
        log.write(f"\n===== {' '.join(argv)}\n".encode())
        log.flush()
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
            preexec_fn=preexec_fn,
        )


def healthz_ok(url: str, timeout: float = 1.0, context: ssl.SSLContext | None = None) -> bool:
    """True if ``url``/healthz answers 200 now."""
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=timeout, context=context) as r:
            return bool(r.status == 200)
    except OSError:
        return False


def wait_ready(
    proc: subprocess.Popen[bytes], ready: Callable[[], bool], timeout: float
) -> str | None:
    """Poll ``ready`` every 50 ms while ``proc`` runs: None once it is true, else why not
    (``"exited with N"``, or ``"not healthy after Ts"`` at the deadline; ``proc`` is left
    running then, for the caller to stop)."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            return f"exited with {proc.returncode}"
        if ready():
            return None
        if time.monotonic() > deadline:
            return f"not healthy after {timeout}s"
        time.sleep(0.05)


def log_tail(path: Path, chars: int, missing: str = "(no log)") -> str:
    """The last ``chars`` characters of the log at ``path`` (``missing`` if unreadable)."""
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return missing


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


def stop_returncode(
    proc: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM, timeout: float = 15.0
) -> int | None:
    """:func:`stop_process`, then the exit status (None if never started)."""
    stop_process(proc, sig, timeout)
    return proc.returncode if proc is not None else None


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
    return spawn_logged(argv, log_path, env=env, cwd=data_dir.parent)
