"""Multi-node test harness: real redis-server, real ``parley serve`` nodes, real nginx.

Every process is started by the tests (on free loopback ports, in a temp dir) and
stopped by its PID: the Redis is :class:`~tests.support.redis_server.RedisServer`
(stop/restart on the same port), each node a
:class:`~tests.support.parley_process.ParleyProcess` with a ``node_id``, ``--broker``
and a shared ``--database-url`` (made by :class:`Cluster`; SIGKILL or SIGTERM it),
and :class:`NginxProc` a generated config with an upstream of the nodes.  Clients are
:class:`~tests.support.ws_client.Clients` with a longer timeout (``TIMEOUT``).
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.parley_process import ParleyProcess, clean_env
from tests.support.processes import (
    LoopbackUrls,
    free_port,
    log_tail,
    require_binary,
    stop_returncode,
)
from tests.support.redis_server import RedisServer
from tests.support.ws_client import fetch_json

TIMEOUT = 15.0  # bound for any single expected event (generous: CI machines are busy)


def unique_room(prefix: str) -> str:
    """Rooms are shared through PostgreSQL across test runs: make every name unique."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


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


@dataclass
class Cluster:
    """Launches nodes that share one Redis, one database and one PARLEY_SECRET."""

    base: Path
    redis: RedisServer
    database_url: str
    secret: str = field(default_factory=lambda: uuid.uuid4().hex + uuid.uuid4().hex)
    nodes: list[ParleyProcess] = field(default_factory=list)

    def node(
        self, node_id: str, *args: str, redis: bool = True, env: dict[str, str] | None = None
    ) -> ParleyProcess:
        """A launched (not yet healthy) node; call ``wait_ready`` (or ``start``); ``env``:
        more environment variables."""
        d = self.base / f"node-{node_id}"
        flags = ["--database-url", self.database_url, *args]
        if redis:
            flags = ["--broker", self.redis.url, *flags]
        node = ParleyProcess(
            node_id=node_id,
            port=free_port(),
            data_dir=d / "data",
            args=tuple(flags),
            log_path=d / "node.log",
            env=clean_env(PARLEY_SECRET=self.secret, **(env or {})),
        )
        self.nodes.append(node)
        return node.launch()

    def start(
        self, *node_ids: str, args: tuple[str, ...] = (), env: dict[str, str] | None = None
    ) -> list[ParleyProcess]:
        """Launch several nodes in parallel and wait until all answer /healthz."""
        nodes = [self.node(n, *args, env=env) for n in node_ids]
        for n in nodes:
            n.wait_ready()
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
        binary = require_binary("nginx")
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
