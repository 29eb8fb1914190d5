"""Helpers for the moderation/access-control/hardening end-to-end tests (and the fuzz tests).

Modelled on ``tests/server/server_harness.py`` (not importing it; both build on tests/support):

* :class:`ModServer`: the real ``parley serve`` as a subprocess, stopped by PID,
  optionally over TLS (``--certfile``), launched and awaited separately so several
  start in parallel;
* :class:`Client`: an aiohttp WebSocket whose frames a background task collects;
* :class:`Net`: WebSocket clients from a chosen loopback *source address*
  (``127.0.0.2`` …), so per-address state (bans, password throttling, rate and
  connection limits) hit only the client under test, and with chosen headers;
* small assertions for system chat lines and error replies.
"""

from __future__ import annotations

import signal
import ssl
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
from processes import (  # noqa: E402
    free_port,  # noqa: F401 - re-exported to tests
    healthz_ok,
    kill_process,
    launch_parley,
    stop_returncode,
    wait_ready,
)
from ws_client import CLOSED, Client, assert_clean, fetch_json  # noqa: E402, F401 - re-exported

TIMEOUT = 10.0  # generous bound for any single expected event
LOCAL = "127.0.0.1"


@dataclass
class ModServer:
    """``parley serve`` as a subprocess (stopped by PID), optionally with TLS (``tls=True``)."""

    port: int
    data_dir: Path
    args: tuple[str, ...]
    log_path: Path
    tls: bool = False
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"{'wss' if self.tls else 'ws'}://127.0.0.1:{self.port}/ws"

    @property
    def origin(self) -> str:
        return self.url

    def start(self, timeout: float = 180.0) -> ModServer:
        return self.launch().wait_ready(timeout)

    def launch(self) -> ModServer:
        """Start the process without waiting (see :meth:`wait_ready`)."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.proc = launch_parley(self.port, self.data_dir, self.args, self.log_path)
        return self

    def wait_ready(self, timeout: float = 180.0) -> ModServer:
        """Wait until ``/healthz`` answers (the machine may be busy: be patient)."""
        assert self.proc is not None
        context = None
        if self.tls:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        why = wait_ready(self.proc, lambda: healthz_ok(self.url, 2, context), timeout)
        if why is not None:
            self.kill()
            pytest.fail(f"parley serve {why}:\n{self.log()}")
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int | None:
        """Signal the server by PID and wait; SIGKILL if it does not exit."""
        return stop_returncode(self.proc, sig, timeout)

    def kill(self) -> None:
        kill_process(self.proc)

    def log(self) -> str:
        return self.full_log()[-6000:]

    def full_log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


@dataclass
class Fleet:
    """The servers the moderation tests share (see conftest.fleet)."""

    main: ModServer
    hs256: ModServer  # --require-token --jwt-secret
    rs256: ModServer  # --require-token --jwt-public-key
    limits: ModServer  # --max-connections-per-address 3 --max-rooms 2
    tls: ModServer  # --certfile --keyfile
    plain: ModServer  # restarted by the persistence test
    jwt_secret: str
    rsa_private_pem: bytes
    rsa_public_pem: bytes
    certfile: Path


@dataclass
class Net:
    """WebSocket clients from chosen loopback source addresses; all closed at teardown."""

    sessions: dict[tuple[str, bool], aiohttp.ClientSession] = field(default_factory=dict)
    opened: list[Client] = field(default_factory=list)

    def session(self, addr: str = LOCAL, tls: bool = False) -> aiohttp.ClientSession:
        key = (addr, tls)
        s = self.sessions.get(key)
        if s is None:
            connector = aiohttp.TCPConnector(local_addr=(addr, 0), force_close=True, limit=0)
            s = self.sessions[key] = aiohttp.ClientSession(connector=connector)
        return s

    async def connect(
        self,
        server: ModServer,
        addr: str = LOCAL,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> Client:
        kwargs.setdefault("max_msg_size", 0)
        if server.tls:
            kwargs.setdefault("ssl", False)
        ws = await self.session(addr, server.tls).ws_connect(
            server.ws_url, headers=headers, **kwargs
        )
        client = Client(ws).start()
        self.opened.append(client)
        return client

    async def send_join(
        self, server: ModServer, room: str, name: str, addr: str = LOCAL, **extra: Any
    ) -> Client:
        """Connect and send ``join``; the caller reads the answer."""
        client = await self.connect(server, addr)
        await client.send({"type": "join", "room": room, "name": name, "v": 1, **extra})
        return client

    async def join(
        self, server: ModServer, room: str, name: str, addr: str = LOCAL, **extra: Any
    ) -> Client:
        """Connect, join and return the client with its ``welcome`` read."""
        client = await self.send_join(server, room, name, addr, **extra)
        client.welcome = await client.expect("welcome")
        return client

    async def refused(
        self, server: ModServer, room: str, name: str, code: str, addr: str = LOCAL, **extra: Any
    ) -> Client:
        """Join and expect ``error code`` (and no welcome); returns the still-open client."""
        client = await self.send_join(server, room, name, addr, **extra)
        msg = await client.expect("error")
        assert msg["code"] == code, msg
        assert_clean(msg)
        assert not client.of_type("welcome"), client.received
        return client

    async def close(self) -> None:
        for client in self.opened:
            await client.close()
        for s in self.sessions.values():
            await s.close()


async def quiet(*clients: Client, ref: str | None = None) -> None:
    """A ping round trip on each client: everything the server sent before is in."""
    ref = ref or "q" + uuid.uuid4().hex[:8]
    for c in clients:
        await c.roundtrip(ref)


def system_lines(client: Client) -> list[str]:
    """Texts of the system chat lines this client has received so far."""
    return [
        m["message"]["text"]
        for m in client.received
        if m["type"] == "chat" and m["message"].get("system")
    ]


async def expect_system(clients: list[Client], *fragments: str) -> list[dict[str, Any]]:
    """Each client receives a system chat line containing all ``fragments``."""
    out = []
    for c in clients:
        msg = await c.expect(
            "chat",
            lambda m: (
                bool(m["message"].get("system"))
                and all(f in m["message"]["text"] for f in fragments)
            ),
        )
        record = msg["message"]
        assert record["system"] is True
        assert record["sender"] == "system", record
        assert "to" not in record, record
        out.append(record)
    # The very same line (same stored id) for everyone.
    assert len({r["id"] for r in out}) == 1, out
    return out


async def rest(server: ModServer, path: str) -> tuple[int, Any]:
    return await fetch_json(server.url + path, ssl=False if server.tls else None)


async def stored_system_lines(server: ModServer, room: str) -> list[str]:
    status, body = await rest(server, f"/api/v1/rooms/{room}/messages?limit=200")
    assert status == 200, body
    return [m["text"] for m in body["messages"] if m.get("system")]


# -- key material -------------------------------------------------------------------------


def rsa_keypair_pem() -> tuple[bytes, bytes]:
    """A fresh RSA-2048 key pair as (private PEM, public PEM)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public


def self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1/localhost; returns (certfile, keyfile)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    certfile, keyfile = directory / "cert.pem", directory / "key.pem"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return certfile, keyfile
