"""Helpers for the moderation/access-control/hardening end-to-end tests.

The servers are :class:`~tests.support.parley_process.ParleyProcess` (some over TLS),
launched together by ``conftest.fleet``; the clients
:class:`~tests.support.ws_client.Client`.  Here:

* :class:`Fleet`: the servers the tests share;
* :class:`Net`: WebSocket clients from a chosen loopback *source address*
  (``127.0.0.2`` …), so per-address state (bans, password throttling, rate and
  connection limits) hit only the client under test, and with chosen headers;
* small assertions for system chat lines and error replies.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from tests.support.parley_process import ParleyProcess
from tests.support.ws_client import Client, assert_clean, fetch_json

LOCAL = "127.0.0.1"


@dataclass
class Fleet:
    """The servers the moderation tests share (see conftest.fleet)."""

    main: ParleyProcess
    hs256: ParleyProcess  # --require-token --jwt-secret
    rs256: ParleyProcess  # --require-token --jwt-public-key
    limits: ParleyProcess  # --max-connections-per-address 3 --max-rooms 2
    tls: ParleyProcess  # --certfile --keyfile
    plain: ParleyProcess  # restarted by the persistence test
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
        server: ParleyProcess,
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
        self, server: ParleyProcess, room: str, name: str, addr: str = LOCAL, **extra: Any
    ) -> Client:
        """Connect and send ``join``; the caller reads the answer."""
        client = await self.connect(server, addr)
        await client.send({"type": "join", "room": room, "name": name, "v": 1, **extra})
        return client

    async def join(
        self, server: ParleyProcess, room: str, name: str, addr: str = LOCAL, **extra: Any
    ) -> Client:
        """Connect, join and return the client with its ``welcome`` read."""
        client = await self.send_join(server, room, name, addr, **extra)
        client.welcome = await client.expect("welcome")
        return client

    async def refused(
        self,
        server: ParleyProcess,
        room: str,
        name: str,
        code: str,
        addr: str = LOCAL,
        **extra: Any,
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


async def rest(server: ParleyProcess, path: str) -> tuple[int, Any]:
    return await fetch_json(server.url + path, ssl=False if server.tls else None)


async def stored_system_lines(server: ParleyProcess, room: str) -> list[str]:
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
