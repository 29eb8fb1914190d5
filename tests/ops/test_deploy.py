"""The files under deploy/ work: real nginx, coturn, redis-server and systemd tooling.

- nginx: ``deploy/nginx/parley.conf`` (adapted to loopback ports and a self-signed
  certificate) passes ``nginx -t``, and a real nginx in front of two real
  ``parley serve`` nodes terminates TLS, upgrades WebSockets, spreads connections
  over both nodes and fails over when one stops;
- coturn: ``deploy/coturn/turnserver.conf`` starts, accepts the server's ephemeral
  credentials and refuses to relay towards private addresses;
- redis: ``deploy/redis/parley-redis.conf`` is accepted by a real redis-server;
- systemd: ``parley@.service`` passes ``systemd-analyze verify``.

Every process is started here and stopped by PID.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import socket
import ssl
import struct
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from parley.ops.turn import turn_credentials
from tests.ops.stun import MAGIC, XOR_RELAYED_ADDRESS, TurnClient, build, parse
from tests.support.coturn import Coturn
from tests.support.parley_process import ParleyProcess
from tests.support.processes import (
    free_port,
    free_udp_tcp_port,
    require_binary,
    spawn_logged,
    stop_process,
)
from tests.support.redis_server import RedisServer
from tests.support.tls import self_signed_cert

TIMEOUT = 10.0
DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def adapt(text: str, replacements: list[tuple[str, str]]) -> str:
    """Apply exact replacements, each of which must match (so config drift fails the test)."""
    for old, new in replacements:
        assert old in text, f"the deploy file no longer contains {old!r}: update the test"
        text = text.replace(old, new)
    return text


# -- nginx ---------------------------------------------------------------------------------


@dataclass
class NginxSite:
    """nginx with deploy/nginx/parley.conf, adapted to loopback, in a private prefix."""

    prefix: Path
    https_port: int
    http_port: int
    cert: Path
    upstreams: tuple[int, int]

    @property
    def conf(self) -> Path:
        return self.prefix / "nginx.conf"

    @property
    def access_log(self) -> Path:
        return self.prefix / "parley.access.log"

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert))

    def argv(self, *extra: str) -> list[str]:
        return [
            require_binary("nginx"), "-p", str(self.prefix), "-c", str(self.conf),
            "-e", str(self.prefix / "error.log"), *extra,
        ]  # fmt: skip


def make_site(base: Path, upstreams: tuple[int, int]) -> NginxSite:
    require_binary("nginx")
    base.mkdir(parents=True, exist_ok=True)
    cert, key = self_signed_cert(base)
    site = NginxSite(base, free_port(), free_port(), cert, upstreams)
    (base / "acme").mkdir()
    parley_conf = adapt(
        (DEPLOY / "nginx" / "parley.conf").read_text(),
        [
            ("listen 80;", f"listen 127.0.0.1:{site.http_port};"),
            ("listen [::]:80;", ""),
            ("listen 443 ssl http2;", f"listen 127.0.0.1:{site.https_port} ssl http2;"),
            ("listen [::]:443 ssl http2;", ""),
            ("/etc/letsencrypt/live/meet.example.com/fullchain.pem", str(cert)),
            ("/etc/letsencrypt/live/meet.example.com/privkey.pem", str(key)),
            ("/var/log/nginx/parley.access.log", str(site.access_log)),
            ("root /var/www/letsencrypt;", f"root {base / 'acme'};"),
            ("server 127.0.0.1:8001 ", f"server 127.0.0.1:{upstreams[0]} "),
            ("server 127.0.0.1:8002 ", f"server 127.0.0.1:{upstreams[1]} "),
        ],
    )
    directives = re.sub(r"#.*", "", parley_conf)
    assert "/etc/" not in directives and "/var/" not in directives
    (base / "parley.conf").write_text(parley_conf)
    temp = base / "temp"
    temp.mkdir()
    user = "user root;" if os.geteuid() == 0 else ""
    site.conf.write_text(
        f"""
{user}
worker_processes 1;
pid {base / "nginx.pid"};
error_log {base / "error.log"} info;
events {{ worker_connections 512; }}
http {{
    access_log off;
    client_body_temp_path {temp / "body"};
    proxy_temp_path {temp / "proxy"};
    fastcgi_temp_path {temp / "fastcgi"};
    uwsgi_temp_path {temp / "uwsgi"};
    scgi_temp_path {temp / "scgi"};
    include {base / "parley.conf"};
}}
"""
    )
    return site


def test_nginx_config_is_valid(tmp_path: Path) -> None:
    site = make_site(tmp_path / "nginx", (free_port(), free_port()))
    result = subprocess.run(site.argv("-t"), capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert "syntax is ok" in result.stderr and "test is successful" in result.stderr


def test_nginx_config_essentials() -> None:
    """What the recipe promises is in the file itself (not only in the adapted copy)."""
    text = (DEPLOY / "nginx" / "parley.conf").read_text()
    body = re.sub(r"#.*", "", text)
    assert re.search(r"location = /ws \{[^}]*proxy_read_timeout 1h;", body)
    assert "proxy_set_header X-Forwarded-Proto $scheme;" in body
    assert "proxy_set_header Upgrade $http_upgrade;" in body
    assert "proxy_set_header Connection $connection_upgrade;" in body
    assert "least_conn;" in body and body.count("max_fails=") == 2
    assert "ssl_protocols TLSv1.2 TLSv1.3;" in body
    # proxy_set_header only at server level: a location-level one would drop the others.
    for block in re.findall(r"location [^{]*\{([^}]*)\}", body):
        assert "proxy_set_header" not in block


@dataclass
class Nginx:
    """nginx in the foreground (``daemon off``), its output in ``log``; stopped by PID."""

    argv: list[str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    def spawn(self) -> None:
        self.proc = spawn_logged(self.argv, self.log)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        stop_process(self.proc, timeout=10)

    def text(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-6000:]
        except FileNotFoundError:
            return ""


@dataclass
class Cluster:
    site: NginxSite
    nodes: list[ParleyProcess]
    nginx: Nginx


def start_cluster(base: Path) -> Cluster:
    ports = (free_port(), free_port())
    nodes = []
    for i, port in enumerate(ports):
        node_dir = base / f"node{i}"
        node_dir.mkdir(parents=True)
        node = ParleyProcess(
            port=port, data_dir=node_dir / "data", log_path=node_dir / "parley.log"
        )
        nodes.append(node.start())
    site = make_site(base / "nginx", ports)
    nginx = Nginx(site.argv("-g", "daemon off;"), base / "nginx" / "nginx.out")
    nginx.spawn()
    deadline = time.monotonic() + 15
    while True:
        if not nginx.alive():
            raise AssertionError(f"nginx exited:\n{nginx.text()}")
        try:
            with socket.create_connection(("127.0.0.1", site.https_port), timeout=0.5):
                break
        except OSError:
            if time.monotonic() > deadline:
                raise AssertionError(f"nginx not listening:\n{nginx.text()}") from None
            time.sleep(0.05)
    return Cluster(site, nodes, nginx)


def stop_cluster(cluster: Cluster) -> None:
    cluster.nginx.stop()  # SIGTERM: fast shutdown of the master and its workers
    for node in cluster.nodes:
        node.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    require_binary("nginx")
    c = start_cluster(tmp_path_factory.mktemp("cluster"))
    yield c
    stop_cluster(c)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT)) as s:
        yield s


async def join(
    http: aiohttp.ClientSession, site: NginxSite, room: str, name: str, origin: str | None = None
) -> tuple[aiohttp.ClientWebSocketResponse, dict[str, Any]]:
    headers = {"Origin": origin or site.url}
    ws = await http.ws_connect(
        site.url.replace("https", "wss") + "/ws", ssl=site.ssl_context(), headers=headers
    )
    await ws.send_str(json.dumps({"type": "join", "room": room, "name": name, "v": 1}))
    while True:
        msg = await asyncio.wait_for(ws.receive(), TIMEOUT)
        assert msg.type == aiohttp.WSMsgType.TEXT, msg
        data = json.loads(msg.data)
        if data["type"] == "welcome":
            return ws, data
        assert data["type"] != "error", data


async def test_healthz_through_nginx(cluster: Cluster, http: aiohttp.ClientSession) -> None:
    async with http.get(cluster.site.url + "/healthz", ssl=cluster.site.ssl_context()) as r:
        assert r.status == 200
        assert (await r.json())["status"] == "ok"
        assert "max-age=" in r.headers["Strict-Transport-Security"]


async def test_plain_http_redirects_to_https(cluster: Cluster, http: aiohttp.ClientSession) -> None:
    url = f"http://127.0.0.1:{cluster.site.http_port}/r/team"
    async with http.get(url, allow_redirects=False) as r:
        assert r.status == 301
        assert r.headers["Location"].startswith("https://127.0.0.1")
        assert r.headers["Location"].endswith("/r/team")


async def test_pages_static_and_api_through_nginx(
    cluster: Cluster, http: aiohttp.ClientSession
) -> None:
    ctx = cluster.site.ssl_context()
    async with http.get(cluster.site.url + "/", ssl=ctx) as r:
        assert r.status == 200 and "text/html" in r.headers["Content-Type"]
    async with http.get(cluster.site.url + "/static/css/parley.css", ssl=ctx) as r:
        assert r.status == 200
        assert "max-age=3600" in r.headers.get("Cache-Control", "")
    async with http.get(cluster.site.url + "/api/v1/rooms/nobody-here", ssl=ctx) as r:
        # The node's own JSON error (not an nginx page) for a room that never existed.
        assert r.status == 404
        assert "code" in (await r.json())["error"]


async def test_metrics_are_not_exposed_publicly(
    cluster: Cluster, http: aiohttp.ClientSession
) -> None:
    async with http.get(cluster.site.url + "/metrics", ssl=cluster.site.ssl_context()) as r:
        assert r.status == 404


async def test_websocket_join_through_nginx(cluster: Cluster, http: aiohttp.ClientSession) -> None:
    """wss:// through TLS termination, with the page's https Origin (X-Forwarded-Proto)."""
    room = f"wss-{uuid.uuid4().hex[:8]}"
    ws, welcome = await join(http, cluster.site, room, "Ada")
    try:
        assert welcome["id"].startswith("p_")
        assert welcome["room"]["name"] == room
        # The connection stays up and answers: a chat round trip through the proxy.
        await ws.send_str(json.dumps({"type": "chat", "text": "hello", "ref": "c1"}))
        seen: set[str] = set()
        while {"chat-ack", "chat"} - seen:
            data = json.loads((await asyncio.wait_for(ws.receive(), TIMEOUT)).data)
            seen.add(data["type"])
    finally:
        await ws.close()


async def test_foreign_origin_is_still_refused(
    cluster: Cluster, http: aiohttp.ClientSession
) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as err:
        await join(http, cluster.site, "x", "Eve", origin="https://evil.example")
    assert err.value.status == 403


async def test_connections_are_spread_over_both_nodes(
    cluster: Cluster, http: aiohttp.ClientSession
) -> None:
    room = f"spread-{uuid.uuid4().hex[:8]}"
    a, welcome_a = await join(http, cluster.site, room, "Ada")
    b, welcome_b = await join(http, cluster.site, room, "Bob")
    try:
        # Standalone nodes (no Redis): on different nodes, neither sees the other.
        assert [p["name"] for p in welcome_b["participants"]] == ["Bob"]
        counts = []
        for node in cluster.nodes:
            async with http.get(f"{node.url}/api/v1/rooms/{room}") as r:
                counts.append((await r.json())["participant_count"])
        assert counts == [1, 1], f"least_conn should put one on each node: {counts}"
    finally:
        await a.close()
        await b.close()
    # The access log names the node behind each request ($upstream_addr).
    deadline = time.monotonic() + 5
    wanted = {f"127.0.0.1:{n.port}" for n in cluster.nodes}
    while True:
        lines = [
            line for line in cluster.site.access_log.read_text().splitlines() if '"GET /ws ' in line
        ]
        seen = {m for line in lines for m in re.findall(r"upstream=(\S+)", line)}
        if wanted <= seen:
            break
        assert time.monotonic() < deadline, f"{wanted} not all in access log:\n{lines}"
        await asyncio.sleep(0.1)


async def test_failover_when_a_node_stops(tmp_path: Path, http: aiohttp.ClientSession) -> None:
    """A stopped node (SIGTERM) is skipped: every new WebSocket lands on the other one."""
    require_binary("nginx")
    c = await asyncio.to_thread(start_cluster, tmp_path)
    try:
        await asyncio.to_thread(c.nodes[0].stop)
        room = f"failover-{uuid.uuid4().hex[:8]}"
        sockets = []
        for i in range(4):
            ws, _welcome = await join(http, c.site, room, f"P{i}")
            sockets.append(ws)
        async with http.get(f"{c.nodes[1].url}/api/v1/rooms/{room}") as r:
            assert (await r.json())["participant_count"] == 4
        for ws in sockets:
            await ws.close()
    finally:
        await asyncio.to_thread(stop_cluster, c)


# -- coturn ----------------------------------------------------------------------------------

TURN_SECRET = "deploy-test-secret-0123456789abcdef"


@pytest.fixture(scope="module")
def deployed_coturn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Coturn]:
    require_binary("turnserver")
    base = tmp_path_factory.mktemp("coturn-deploy")
    cert, key = self_signed_cert(base)
    port, tls_port = free_udp_tcp_port(), free_udp_tcp_port()
    text = adapt(
        (DEPLOY / "coturn" / "turnserver.conf").read_text(),
        [
            ("listening-port=3478", f"listening-port={port}"),
            ("tls-listening-port=5349", f"tls-listening-port={tls_port}"),
            ("#listening-ip=10.0.0.5", "listening-ip=127.0.0.1"),
            ("#relay-ip=10.0.0.5", "relay-ip=127.0.0.1"),
            (
                "static-auth-secret=CHANGE-ME-to-the-output-of-openssl-rand-hex-32",
                f"static-auth-secret={TURN_SECRET}",
            ),
            ("/etc/letsencrypt/live/turn.example.com/fullchain.pem", str(cert)),
            ("/etc/letsencrypt/live/turn.example.com/privkey.pem", str(key)),
            ("\nsyslog\n", f"\nlog-file={base / 'turn.log'}\nsimple-log\n"),
        ],
    )
    text += f"userdb={base / 'turndb'}\npidfile={base / 'turnserver.pid'}\n"
    config = base / "turnserver.conf"
    config.write_text(text)
    server = Coturn(
        config, base / "turnserver.out", port, turn_log=base / "turn.log", tls_port=tls_port
    ).start()
    yield server
    server.stop()


def turn_client(server: Coturn, secret: str = TURN_SECRET) -> TurnClient:
    ice = turn_credentials(secret, [], 600, "p_deploy", now=time.time())
    return TurnClient(("127.0.0.1", server.port), ice["username"], ice["credential"])


def test_coturn_config_allocates_with_ephemeral_credentials(deployed_coturn: Coturn) -> None:
    c = turn_client(deployed_coturn)
    try:
        resp = c.allocate()
        assert resp.ok, f"{resp.error_code}\n{deployed_coturn.text()}"
        assert resp.xor_address(XOR_RELAYED_ADDRESS) is not None
        # The production default: no relaying towards private or loopback peers...
        for private in ("10.1.2.3", "192.168.1.1", "172.16.0.9", "127.0.0.1", "169.254.1.1"):
            refused = c.create_permission(private)
            assert not refused.ok and refused.error_code == 403, private
        # ...while public peers are allowed.
        assert c.create_permission("1.1.1.1").ok
    finally:
        c.close()
    wrong = turn_client(deployed_coturn, secret="not-the-secret")
    try:
        resp = wrong.allocate()
        assert not resp.ok and resp.error_code in (401, 438)
    finally:
        wrong.close()


def test_coturn_config_serves_turns_over_tls(deployed_coturn: Coturn) -> None:
    port = deployed_coturn.tls_port
    assert port is not None
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    deadline = time.monotonic() + TIMEOUT
    while True:
        try:
            raw = socket.create_connection(("127.0.0.1", port), timeout=2)
            break
        except OSError:
            assert time.monotonic() < deadline, deployed_coturn.text()
            time.sleep(0.1)
    with ctx.wrap_socket(raw) as tls:
        assert tls.version() in ("TLSv1.2", "TLSv1.3")
        txid = os.urandom(12)
        tls.sendall(build(0x0001, [], txid))
        header = tls.recv(20)
        _type, length, magic = struct.unpack("!HHI", header[:8])
        assert magic == MAGIC
        body = b""
        while len(body) < length:
            body += tls.recv(length - len(body))
        assert parse(header + body).ok


# -- redis -----------------------------------------------------------------------------------


def test_redis_config_is_accepted(tmp_path: Path) -> None:
    require_binary("redis-server")
    import redis

    port = free_port()
    text = adapt(
        (DEPLOY / "redis" / "parley-redis.conf").read_text(),
        [("port 6379", f"port {port}"), ("bind 127.0.0.1 -::1", "bind 127.0.0.1")],
    )
    conf = tmp_path / "redis.conf"
    conf.write_text(text + f"\ndir {tmp_path}\n")
    proc = RedisServer(port, tmp_path / "redis.out", config=conf).start()
    try:
        client = redis.Redis(port=port, socket_timeout=2, decode_responses=True)
        deadline = time.monotonic() + TIMEOUT
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                assert proc.alive(), proc.text()
                assert time.monotonic() < deadline, proc.text()
                time.sleep(0.05)
        config = {str(k): str(v) for k, v in client.config_get("*").items()}
        assert config["maxmemory-policy"] == "noeviction"
        assert config["appendonly"] == "no" and config["save"] == ""
        assert set(config["notify-keyspace-events"]) == {"x", "E"}
        assert config["client-output-buffer-limit"].split("pubsub ")[1].startswith("67108864")
        client.close()
    finally:
        proc.stop()


# -- systemd ---------------------------------------------------------------------------------


def unit_directives(path: Path) -> dict[str, dict[str, list[str]]]:
    """Sections -> key -> values (systemd allows repeated keys, which configparser refuses)."""
    out: dict[str, dict[str, list[str]]] = {}
    section = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            out[section] = {}
            continue
        key, _, value = line.partition("=")
        out[section].setdefault(key.strip(), []).append(value.strip())
    return out


def test_systemd_unit_directives() -> None:
    unit = unit_directives(DEPLOY / "systemd" / "parley@.service")
    service = unit["Service"]
    assert service["Environment"][:2] == ["PARLEY_HOST=127.0.0.1", "PARLEY_PORT=%i"]
    assert service["ExecStart"][0].endswith("parley serve")
    assert service["Restart"] == ["on-failure"]
    assert service["KillSignal"] == ["SIGTERM"]
    assert int(service["TimeoutStopSec"][0]) >= 15
    assert service["User"] == ["parley"]
    assert service["NoNewPrivileges"] == ["yes"]
    assert service["ProtectSystem"] == ["strict"]
    assert service["ReadWritePaths"] == ["/var/lib/parley"]
    assert service["CapabilityBoundingSet"] == [""]
    assert int(service["LimitNOFILE"][0]) >= 65536
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]
    env_example = (DEPLOY / "systemd" / "parley.env.example").read_text()
    for name in ("PARLEY_DATABASE_URL", "PARLEY_SECRET", "PARLEY_TURN_SECRET", "PARLEY_BROKER"):
        assert f"\n{name}=" in env_example


def test_systemd_unit_verifies(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (the directive test still ran)")
    parley = shutil.which("parley") or str(Path(sys.executable).parent / "parley")
    text = adapt(
        (DEPLOY / "systemd" / "parley@.service").read_text(),
        [("/opt/parley/venv/bin/parley", parley)],
    )
    unit = tmp_path / "parley@8001.service"
    unit.write_text(text)
    result = subprocess.run(
        [analyze, "verify", "--man=no", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = result.stdout + result.stderr
    # Only complaints about this unit count (the host's own units may be odd in a container).
    ours = [line for line in output.splitlines() if "parley@" in line]
    assert result.returncode == 0 or not ours, output
    assert not ours, output
