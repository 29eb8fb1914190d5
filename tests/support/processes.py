"""Starting, probing and stopping (by PID) the processes a test runs.

Shared by :mod:`tests.support.parley_process`, :mod:`tests.support.redis_server`,
:mod:`tests.support.coturn` and the suites' own helpers (nginx).  A process runs
somewhere (a :class:`Namespace`): on the host (:data:`HOST`), or inside a network
namespace the browser suite creates, whose ``cmd`` prefixes the argv and whose
``call`` runs a probe in a thread that joined the namespace.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pytest

T = TypeVar("T")


def ci() -> bool:
    """True under CI (``CI`` set and not 0/false/no): a missing tool fails there, not skips."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require_binary(name: str) -> str:
    """The path of ``name``; skip (locally) or fail (under CI, where ``.ci/run`` installs it)
    when it is not installed."""
    path = shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.access(p, os.X_OK)), None
    )
    if path is None:
        message = f"{name} is not installed (apt-get install it)"
        if ci():
            pytest.fail(f"CI is set but {message}", pytrace=False)
        pytest.skip(message)
    return path


class Namespace(Protocol):
    """Where a process runs and where it is probed from."""

    def cmd(self, *argv: str) -> list[str]:
        """``argv`` as run there (``nsenter`` execs it: the Popen PID is the process's own)."""
        ...

    def call(self, fn: Callable[..., T], *args: Any, timeout: float = 15) -> T:
        """``fn(*args)`` run there (a probe, a port pick)."""
        ...


class Host:
    """This machine's own network: argv as is, probes in the calling thread."""

    def cmd(self, *argv: str) -> list[str]:
        return list(argv)

    def call(self, fn: Callable[..., T], *args: Any, timeout: float = 15) -> T:
        return fn(*args)


HOST = Host()


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_udp_tcp_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1 (TURN listens on both)."""
    for _ in range(50):
        with socket.socket() as t:
            t.bind(("127.0.0.1", 0))
            port = int(t.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                try:
                    u.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free port")


def http_get(
    url: str, timeout: float = 2.0, context: ssl.SSLContext | None = None
) -> tuple[int, str]:
    """GET ``url``: (status, body); status 0 if unreachable."""
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=context) as r:
            return int(r.status), r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")
    except (OSError, ValueError) as e:
        return 0, repr(e)


def die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """preexec_fn: SIGKILL this child if pytest dies, so nothing outlives a killed run.

    (The signal follows the *thread* that forked: only for processes started from the
    main thread.)"""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


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
