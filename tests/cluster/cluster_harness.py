"""Multi-node test harness: real redis-server, real ``parley serve`` nodes, real nginx.

Every process is started here by the tests (on free loopback ports, in a temp dir)
and stopped by its PID: ``RedisProc`` (stop/restart on the same port), ``NodeProc``
(one Parley node with ``--broker`` and a shared ``--database-url``; SIGKILL or
SIGTERM it), ``NginxProc`` (a generated config with an upstream of the nodes).
``Clients`` opens aiohttp WebSockets whose frames a background task collects, so
clients answer heartbeat pings while a test is not reading.

Module name is unique across tests/ (there are no ``__init__.py`` files).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
from processes import (  # noqa: E402
    LoopbackUrls,
    free_port,
    kill_process,
    launch_parley,
    log_tail,
    stop_returncode,
    wait_ready,
)
from ws_client import CLOSED, Client, assert_clean, fetch_json  # noqa: E402, F401 - re-exported

TIMEOUT = 15.0  # bound for any single expected event (generous: CI machines are busy)


def unique_room(prefix: str) -> str:
    """Rooms are shared through PostgreSQL across test runs: make every name unique."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def postgres_url() -> str:
    """PARLEY_TEST_POSTGRES_URL, or skip (locally) / fail (when CI is set)."""
    url = os.environ.get("PARLEY_TEST_POSTGRES_URL")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("CI is set but PARLEY_TEST_POSTGRES_URL is not: cluster tests need it")
        pytest.skip('PARLEY_TEST_POSTGRES_URL not set (eval "$(bash .ci/postgres.sh)")')
    return url


def need_binary(name: str) -> str:
    path = shutil.which(name) or (
        f"/usr/sbin/{name}" if os.path.exists(f"/usr/sbin/{name}") else None
    )
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but {name} is not installed")
        pytest.skip(f"{name} not installed")
    return path


def _wait_port(port: int, timeout: float, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} not listening on {port} after {timeout}s")


# -- Redis ---------------------------------------------------------------------------


@dataclass
class RedisProc:
    port: int
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisProc:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        argv = [
            need_binary("redis-server"),
            "--port", str(self.port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--protected-mode", "no",
        ]  # fmt: skip
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        _wait_port(self.port, 10, self.proc, "redis-server")
        return self

    def stop(self, sig: int = signal.SIGTERM) -> int | None:
        return stop_returncode(self.proc, sig, 10)

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


# -- Parley nodes ----------------------------------------------------------------------


@dataclass
class NodeProc(LoopbackUrls):
    node_id: str
    port: int
    data_dir: Path
    args: tuple[str, ...]
    log_path: Path
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None

    def launch(self) -> NodeProc:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.proc = launch_parley(
            self.port, self.data_dir, ("--node-id", self.node_id, *self.args), self.log_path,
            env=self.env,
        )  # fmt: skip
        return self

    def wait_healthy(self, timeout: float = 60.0) -> NodeProc:
        assert self.proc is not None
        why = wait_ready(self.proc, lambda: self.health() is not None, timeout)
        if why is not None:
            self.kill()
            pytest.fail(f"node {self.node_id} {why}:\n{self.log()}")
        return self

    def health(self) -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as r:
                if r.status == 200:
                    return json.loads(r.read())
        except (OSError, ValueError):
            pass
        return None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def send_signal(self, sig: int) -> None:
        if self.alive():
            assert self.proc is not None
            self.proc.send_signal(sig)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int | None:
        return stop_returncode(self.proc, sig, timeout)

    def kill(self) -> None:
        kill_process(self.proc)

    def log(self) -> str:
        return log_tail(self.log_path, 8000)


@dataclass
class Cluster:
    """Launches nodes that share one Redis, one database and one PARLEY_SECRET."""

    base: Path
    redis: RedisProc
    database_url: str
    secret: str = field(default_factory=lambda: uuid.uuid4().hex + uuid.uuid4().hex)
    nodes: list[NodeProc] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
        env["PARLEY_SECRET"] = self.secret
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def node(self, node_id: str, *args: str, redis: bool = True) -> NodeProc:
        """A launched (not yet healthy) node; call ``wait_healthy`` (or ``start``)."""
        d = self.base / f"node-{node_id}"
        d.mkdir(parents=True, exist_ok=True)
        flags = ["--database-url", self.database_url, *args]
        if redis:
            flags = ["--broker", self.redis.url, *flags]
        node = NodeProc(
            node_id=node_id,
            port=free_port(),
            data_dir=d / "data",
            args=tuple(flags),
            log_path=d / "node.log",
            env=self.env(),
        )
        self.nodes.append(node)
        return node.launch()

    def start(self, *node_ids: str, args: tuple[str, ...] = ()) -> list[NodeProc]:
        """Launch several nodes in parallel and wait until all answer /healthz."""
        nodes = [self.node(n, *args) for n in node_ids]
        for n in nodes:
            n.wait_healthy()
        return nodes

    def stop_all(self) -> None:
        for n in self.nodes:  # signal them all first: they shut down in parallel
            n.send_signal(signal.SIGTERM)
        for n in self.nodes:
            n.stop()


# -- nginx ---------------------------------------------------------------------------

NGINX_CONF = """\
{user}worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log info;
events {{ worker_connections 512; }}
http {{
    access_log {prefix}/access.log;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;

    map $http_upgrade $connection_upgrade {{
        default upgrade;
        ''      close;
    }}
    upstream parley_nodes {{
        least_conn;
{servers}
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://parley_nodes;
            proxy_http_version 1.1;
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_read_timeout 3600s;
            proxy_send_timeout 3600s;
            proxy_connect_timeout 2s;
            proxy_next_upstream error timeout http_502 http_503 http_504;
            proxy_next_upstream_tries 2;
            # Which node answered (tests read it from the WebSocket handshake).
            add_header X-Parley-Upstream $upstream_addr always;
        }}
    }}
}}
"""


@dataclass
class NginxProc(LoopbackUrls):
    prefix: Path
    port: int
    upstreams: list[int]
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> NginxProc:
        binary = need_binary("nginx")
        self.prefix.mkdir(parents=True, exist_ok=True)
        servers = "\n".join(
            # A node that refuses connections is skipped for 2 s (proxy_next_upstream).
            f"        server 127.0.0.1:{p} max_fails=1 fail_timeout=2s;"
            for p in self.upstreams
        )
        conf = self.prefix / "nginx.conf"
        # As root, workers would run as "nobody", who cannot enter pytest's 0700 temp dirs.
        user = "user root;\n" if os.geteuid() == 0 else ""
        conf.write_text(
            NGINX_CONF.format(user=user, prefix=self.prefix, port=self.port, servers=servers)
        )
        # -e (error log before the config is read) exists since nginx 1.19.5.
        argv = [binary, "-c", str(conf), "-p", str(self.prefix), "-g", "daemon off;",
                "-e", str(self.prefix / "error.log")]  # fmt: skip
        test = subprocess.run([*argv[:5], "-e", argv[-1], "-t"], capture_output=True, text=True)
        assert test.returncode == 0, f"nginx -t failed:\n{test.stderr}\n{conf.read_text()}"
        with (self.prefix / "stdout.log").open("ab") as log:
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        _wait_port(self.port, 10, self.proc, "nginx")
        return self

    def stop(self) -> int | None:
        # SIGQUIT is nginx's graceful stop, SIGTERM its fast one: fast is what we want.
        return stop_returncode(self.proc, signal.SIGTERM, 10)

    def error_log(self) -> str:
        return log_tail(self.prefix / "error.log", 4000)


# -- WebSocket clients ---------------------------------------------------------------------


@dataclass
class Clients:
    session: aiohttp.ClientSession
    opened: list[Client] = field(default_factory=list)

    async def connect(self, target: Any, label: str = "") -> Client:
        """Open a WebSocket to ``target`` (anything with ``ws_url``)."""
        ws = await self.session.ws_connect(target.ws_url, max_msg_size=0, heartbeat=None)
        upstream = ws._response.headers.get("X-Parley-Upstream")  # noqa: SLF001
        client = Client(ws, timeout=TIMEOUT, label=label, upstream=upstream).start()
        self.opened.append(client)
        return client

    async def join(
        self, target: Any, room: str, name: str = "Ada", *, expect: str = "welcome", **extra: Any
    ) -> Client:
        """Connect and join; return the client with its ``welcome`` read."""
        client = await self.connect(target, label=name)
        client.joined_name = name
        await client.send({"type": "join", "room": room, "name": name, "v": 1, **extra})
        if expect == "welcome":
            client.welcome = await client.expect("welcome")
        return client

    async def join_all(self, room: str, *seats: tuple[Any, str]) -> list[Client]:
        """:meth:`join` ``room`` once per (target, name), one after the other."""
        return [await self.join(target, room, name) for target, name in seats]

    async def resume(self, target: Any, old: Client, room: str, *, retries: float = 10.0) -> Client:
        """Reconnect ``old``'s identity to ``target`` with its resume token."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + retries
        while True:
            try:
                client = await self.connect(target, label=old.label + "'")
                break
            except (aiohttp.ClientError, OSError):
                if loop.time() > deadline:
                    raise
                await asyncio.sleep(0.2)
        await client.send(
            {"type": "join", "room": room, "name": old.joined_name or old.label, "v": 1,
             "resume": old.resume_token}
        )  # fmt: skip
        client.joined_name = old.joined_name
        client.welcome = await client.expect("welcome")
        return client

    async def close_all(self) -> None:
        await asyncio.gather(*(c.close() for c in self.opened), return_exceptions=True)


async def get_json(base_url: str, path: str) -> tuple[int, Any]:
    return await fetch_json(base_url + path)


async def eventually(check: Callable[[], Any], within: float, what: str, every: float = 0.1) -> Any:
    """Poll ``check`` (sync or async) until it returns something truthy."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    last: Any = None
    while True:
        last = check()
        if asyncio.iscoroutine(last):
            last = await last
        if last:
            return last
        if loop.time() > deadline:
            raise AssertionError(f"{what}: not true within {within}s (last {last!r})")
        await asyncio.sleep(every)
