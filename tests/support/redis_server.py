"""The one Redis helper: a ``redis-server`` child process on a free loopback port.

Persistence off (``--save ""``, no AOF) unless ``config`` names a config file (the
deploy test's), so a restart on the same port comes back empty.  Ready once it
answers PING where it runs (the host, or the browser suite's network namespace);
stopped by its PID only.
"""

from __future__ import annotations

import signal
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.processes import (
    HOST,
    Namespace,
    die_with_parent,
    log_tail,
    require_binary,
    spawn_logged,
    stop_returncode,
    wait_ready,
)


def redis_ping(port: int) -> bool:
    """True if a Redis on 127.0.0.1:``port`` answers PING now."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@dataclass
class RedisServer:
    """``redis-server`` on 127.0.0.1:``port``; ``start`` again after ``stop`` restarts it
    on the same port."""

    port: int
    log_path: Path
    #: A config file to run instead of the test flags (it must set ``port``).
    config: Path | None = None
    #: Where it runs (the browser suite passes its network namespace).
    ns: Namespace = HOST
    die_with_parent: bool = False
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def argv(self) -> list[str]:
        binary = require_binary("redis-server")
        if self.config is not None:
            return [binary, str(self.config)]
        return [
            binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--protected-mode", "no", "--dir", str(self.log_path.parent),
        ]  # fmt: skip

    def start(self, timeout: float = 15.0) -> RedisServer:
        assert not self.running(), "already running"
        self.proc = spawn_logged(
            self.ns.cmd(*self.argv()),
            self.log_path,
            cwd=self.log_path.parent,
            preexec_fn=die_with_parent if self.die_with_parent else None,
        )
        why = wait_ready(self.proc, lambda: bool(self.ns.call(redis_ping, self.port)), timeout)
        if why is not None:
            self.stop()
            pytest.fail(f"redis-server {why}:\n{self.text()}", pytrace=False)
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int | None:
        """Signal it by PID and wait (SIGKILL after ``timeout``); the exit status."""
        return stop_returncode(self.proc, sig, timeout)

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    alive = running

    def text(self, chars: int = 6000) -> str:
        return log_tail(self.log_path, chars)
