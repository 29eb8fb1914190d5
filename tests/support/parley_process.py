"""The one way every suite runs a Parley server: ``python -m parley serve`` as a child process.

A :class:`ParleyProcess` listens on 127.0.0.1:``port`` with ``--data-dir data_dir`` and
the suite's extra ``args`` (``--broker`` for cluster nodes, which also have a
``node_id``; ``--certfile`` for TLS, ...).  It is ready once ``/healthz`` answers 200,
probed where it runs (the host, or the browser suite's network namespace).  It is only
ever signalled by its PID: ``stop`` sends SIGTERM (or ``sig``) and SIGKILLs it after
``timeout``; ``restart`` starts it again on the same port and data dir.  Its output is
appended to ``log_path``.

The suites' fixtures (``parley_server`` in tests/server and tests/browser, ``fleet`` in
tests/moderation, ``cluster`` in tests/cluster, ...) configure this class; they do not
subclass it.
"""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.processes import (
    HOST,
    Namespace,
    die_with_parent,
    http_get,
    kill_process,
    log_tail,
    spawn_logged,
    stop_process,
    wait_ready,
)


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any ``PARLEY_*`` (a developer's settings must not
    leak into a test server), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
    return {**env, **extra}


@dataclass
class ParleyProcess:
    """``parley serve`` on 127.0.0.1:``port`` (see the module docstring)."""

    port: int
    data_dir: Path
    log_path: Path
    args: tuple[str, ...] = ()
    #: The whole environment of the server (default: :func:`clean_env` at launch).
    env: dict[str, str] | None = None
    #: Serve HTTPS (the args carry ``--certfile``/``--keyfile``); probes do not verify.
    tls: bool = False
    #: Where it runs (the browser suite passes its network namespace).
    ns: Namespace = HOST
    #: SIGKILL the server if pytest dies (only for servers started from the main thread).
    die_with_parent: bool = False
    #: Fail the test when the server ignored ``stop``'s signal until ``timeout`` (it hung).
    fail_on_hang: bool = False
    #: Default bound for :meth:`wait_ready` (the machine may be busy: be patient).
    ready_timeout: float = 60.0
    #: Default time :meth:`stop` gives it to exit before SIGKILL.
    stop_timeout: float = 15.0
    #: A cluster node's ``--node-id`` (failure messages then say ``node <id>``).
    node_id: str | None = None
    proc: subprocess.Popen[bytes] | None = None

    @property
    def name(self) -> str:
        """What failure messages call it."""
        return "parley serve" if self.node_id is None else f"node {self.node_id}"

    # -- addresses ---------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"{'wss' if self.tls else 'ws'}://127.0.0.1:{self.port}/ws"

    @property
    def origin(self) -> str:
        """The Origin a page served by this server sends."""
        return self.url

    def room_url(self, room: str) -> str:
        return f"{self.url}/r/{room}"

    # -- running -----------------------------------------------------------------------

    def argv(self) -> list[str]:
        return [
            sys.executable, "-m", "parley", "serve", "--host", "127.0.0.1",
            "--port", str(self.port), "--data-dir", str(self.data_dir),
            *(("--node-id", self.node_id) if self.node_id is not None else ()), *self.args,
        ]  # fmt: skip

    def launch(self) -> ParleyProcess:
        """Start the process without waiting (several then start in parallel; see
        :meth:`wait_ready`)."""
        assert not self.alive(), f"{self.name} already running"
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        env = clean_env() if self.env is None else self.env
        self.proc = spawn_logged(
            self.ns.cmd(*self.argv()),
            self.log_path,
            env={**env, "PYTHONUNBUFFERED": "1"},
            cwd=self.data_dir.parent,
            preexec_fn=die_with_parent if self.die_with_parent else None,
        )
        return self

    def wait_ready(self, timeout: float | None = None) -> ParleyProcess:
        """Wait until ``/healthz`` answers 200; fail the test (killing it) if it exits or
        does not get there within ``timeout`` s."""
        assert self.proc is not None, "launch() first"
        timeout = self.ready_timeout if timeout is None else timeout
        why = wait_ready(self.proc, lambda: self.http_get("/healthz")[0] == 200, timeout)
        if why is not None:
            self.kill()
            pytest.fail(f"{self.name} {why}:\n{self.log()}", pytrace=False)
        return self

    def start(self, timeout: float | None = None) -> ParleyProcess:
        return self.launch().wait_ready(timeout)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def send_signal(self, sig: int) -> None:
        """Send ``sig`` by PID (if running) without waiting."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)

    def stop(self, sig: int = signal.SIGTERM, timeout: float | None = None) -> int | None:
        """Signal the server by PID and wait; SIGKILL if it has not exited after ``timeout``
        (default ``stop_timeout``).

        The exit status (None if never started)."""
        proc = self.proc
        if proc is None:
            return None
        timeout = self.stop_timeout if timeout is None else timeout
        if stop_process(proc, sig, timeout) and self.fail_on_hang:
            pytest.fail(
                f"{self.name} ignored signal {sig} for {timeout}s:\n{self.log()}", pytrace=False
            )
        return proc.returncode

    def kill(self) -> None:
        """SIGKILL and reap, if still running."""
        kill_process(self.proc)

    def restart(self, sig: int = signal.SIGTERM) -> ParleyProcess:
        """Stop (``sig``) and start again on the same port and data dir."""
        self.stop(sig)
        return self.start()

    # -- probing -----------------------------------------------------------------------

    def http_get(self, path: str, timeout: float = 2.0) -> tuple[int, str]:
        """GET ``path`` from where the server runs: (status, body); 0 if unreachable."""
        context = None
        if self.tls:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return self.ns.call(http_get, self.url + path, timeout, context, timeout=timeout + 10)

    def health(self) -> dict[str, Any] | None:
        """``/healthz`` as JSON, or None if it does not answer 200."""
        status, body = self.http_get("/healthz")
        if status != 200:
            return None
        try:
            return dict(json.loads(body))
        except ValueError:
            return None

    def api(self, path: str) -> Any:
        """GET a JSON route, asserting 200."""
        status, body = self.http_get(path, timeout=5)
        assert status == 200, f"GET {self.url}{path} -> {status}: {body[:500]}"
        return json.loads(body)

    def wait_room_names(self, room: str, names: list[str], timeout_ms: int = 30_000) -> None:
        """Wait until the room API lists exactly ``names`` (in any order)."""
        seen: list[Any] = []
        deadline = time.monotonic() + timeout_ms / 1000
        while True:
            status, body = self.http_get(f"/api/v1/rooms/{room}", timeout=5)
            seen[:] = [status, body]
            if status == 200:
                info = json.loads(body)
                if sorted(p["name"] for p in info.get("participants", [])) == sorted(names):
                    return
            if time.monotonic() > deadline:
                pytest.fail(f"room {room}: want {sorted(names)}, server says {seen}", pytrace=False)
            time.sleep(0.25)

    # -- logs --------------------------------------------------------------------------

    def log(self, chars: int = 6000) -> str:
        """The last ``chars`` characters of its output."""
        return log_tail(self.log_path, chars, missing="(no server log)")

    def full_log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""
