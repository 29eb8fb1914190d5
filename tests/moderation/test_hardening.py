"""Hardening end to end: Origin checks, per-address limits, room limit, headers, TLS."""

from __future__ import annotations

import asyncio
import ssl

import aiohttp
import pytest

from tests.moderation.harness import Fleet, Net, rest
from tests.support.parley_process import ParleyProcess
from tests.support.ws_client import Client

# -- Origin ----------------------------------------------------------------------------


async def handshake_status(net: Net, server: ParleyProcess, origin: str | None, addr: str) -> int:
    """101 if the WebSocket opened (then it is closed again), else the HTTP status."""
    headers = {"Origin": origin} if origin is not None else None
    try:
        client = await net.connect(server, addr, headers=headers)
    except aiohttp.WSServerHandshakeError as exc:
        return exc.status
    await client.close()
    return 101


async def test_websocket_origin_check(mserver: ParleyProcess, net: Net, room: str) -> None:
    own = mserver.origin  # http://127.0.0.1:PORT
    port = mserver.port
    addr = "127.0.2.10"
    cases = {
        None: 101,  # scripts send no Origin
        own: 101,
        own + "/": 101,
        own.upper().replace("HTTP", "http"): 101,
        "http://good.example": 101,  # --allowed-origins
        "http://evil.example": 403,
        "null": 403,
        f"https://127.0.0.1:{port}": 403,  # other scheme
        f"http://127.0.0.1:{port + 1}": 403,  # other port
        f"http://127.0.0.1:{port}.evil.example": 403,
        "http://good.example.evil.example": 403,
        "http://localhost": 403,
    }
    for origin, expected in cases.items():
        assert await handshake_status(net, mserver, origin, addr) == expected, origin
    # An accepted foreign-listed origin really works end to end.
    c = await net.connect(mserver, headers={"Origin": "http://good.example"})
    await c.send({"type": "join", "room": room, "name": "Ada", "v": 1})
    await c.expect("welcome")
    # The refusal is logged, and the refused handshake never became a connection.
    assert "refused WebSocket from origin 'http://evil.example'" in mserver.full_log()


# -- connections per address ------------------------------------------------------------


async def test_connections_per_address_limit(fleet: Fleet, net: Net) -> None:
    srv = fleet.limits  # --max-connections-per-address 3
    addr = "127.0.2.1"
    conns = [await net.connect(srv, addr) for _ in range(3)]
    for c in conns:
        await c.roundtrip()
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await net.connect(srv, addr)
    assert info.value.status == 429
    # Other addresses are not affected.
    other = await net.connect(srv, "127.0.2.9")
    await other.roundtrip()
    # A closed connection frees its slot.
    await conns[0].close()
    for _ in range(200):
        try:
            again = await net.connect(srv, addr)
            break
        except aiohttp.WSServerHandshakeError as exc:
            assert exc.status == 429
            await asyncio.sleep(0.05)
    else:
        raise AssertionError("the slot of a closed connection was not freed")
    await again.roundtrip()


async def test_simultaneous_handshakes_respect_the_connection_limit(fleet: Fleet, net: Net) -> None:
    srv = fleet.limits  # --max-connections-per-address 3
    addr = "127.0.2.2"
    results = await asyncio.gather(
        *(net.connect(srv, addr) for _ in range(12)), return_exceptions=True
    )
    opened = [r for r in results if isinstance(r, Client)]
    refused = [r for r in results if isinstance(r, aiohttp.WSServerHandshakeError)]
    assert len(opened) + len(refused) == 12, results
    assert all(r.status == 429 for r in refused)
    assert len(opened) <= 3, f"{len(opened)} connections open from one address (limit 3)"


# -- rooms per server -----------------------------------------------------------------------


async def test_rooms_per_server_limit(fleet: Fleet, net: Net, room: str) -> None:
    srv = fleet.limits  # --max-rooms 2
    a = await net.join(srv, room + "-1", "Ada", addr="127.0.2.3")
    bob = await net.join(srv, room + "-2", "Bob", addr="127.0.2.4")
    third = await net.refused(srv, room + "-3", "Cy", "too_many", addr="127.0.2.5")
    # Joining one of the open rooms still works.
    dan = await net.join(srv, room + "-2", "Dan", addr="127.0.2.6")
    assert dan.welcome is not None
    # When a room closes (its last participant leaves), a new one may open.
    await a.send({"type": "leave"})
    await a.wait_closed()
    for _ in range(100):
        await third.send({"type": "join", "room": room + "-3", "name": "Cy", "v": 1})
        msg = await third.recv()
        if msg["type"] == "welcome":
            break
        assert msg["code"] == "too_many", msg
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("room slot not freed")
    # Leave properly, so the rooms close now (not after the resume grace period).
    await leave_all(bob, dan, third)


async def leave_all(*clients: Client) -> None:
    for c in clients:
        await c.send({"type": "leave"})
    for c in clients:
        await c.wait_closed()


async def join_when_a_slot_is_free(net: Net, srv: ParleyProcess, room: str, addr: str) -> Client:
    """Join ``room``, retrying while rooms of earlier tests are still closing."""
    c = await net.send_join(srv, room, "K", addr=addr)
    for _ in range(200):
        msg = await c.recv()
        if msg["type"] == "welcome":
            c.welcome = msg
            return c
        assert msg["code"] == "too_many", msg
        await asyncio.sleep(0.1)
        await c.send({"type": "join", "room": room, "name": "K", "v": 1})
    raise AssertionError("no room slot became free")


async def test_refused_room_is_not_created(fleet: Fleet, net: Net, room: str) -> None:
    srv = fleet.limits
    # Fill the two room slots with this test's own rooms.
    keep = [
        await join_when_a_slot_is_free(net, srv, f"{room}-k{i}", f"127.0.2.{20 + i}")
        for i in range(2)
    ]
    await net.refused(srv, room + "-never", "Cy", "too_many", addr="127.0.2.22")
    status, body = await rest(srv, f"/api/v1/rooms/{room}-never")
    await leave_all(*keep)
    assert status == 404, body


# -- per-address message rate ---------------------------------------------------------------


async def test_per_address_message_rate(mserver: ParleyProcess, net: Net, room: str) -> None:
    """15 connections from one address, each under its own limit, together over 600/10 s."""
    addr = "127.0.2.30"
    conns = []
    for i in range(15):
        conns.append(await net.join(mserver, f"{room}-{i // 5}", f"P{i}", addr=addr))
    bystander = await net.join(mserver, room + "-b", "Bystander")

    async def flood(c: Client, n: int) -> None:
        for k in range(n):
            await c.send({"type": "ping", "ref": f"p{k}"})

    await asyncio.gather(*(flood(c, 59) for c in conns))  # 59 < the 60/10 s per connection
    limited = 0
    for c in conns:
        for _ in range(1000):  # every ping is answered: a pong or a refusal
            if len(c.of_type("pong")) + len(c.of_type("error")) >= 59:
                break
            await asyncio.sleep(0.02)
        limited += sum(1 for m in c.received if m.get("code") == "rate_limited")
        assert len(c.of_type("pong")) + len(c.of_type("error")) == 59
        assert {m["code"] for m in c.of_type("error")} <= {"rate_limited"}
        assert c.close_code is None  # refused, not disconnected (under the error budget)
    assert limited > 0
    # Another address is unaffected.
    await bystander.roundtrip()
    await bystander.chat("fine")


# -- HTTP security headers ------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/r/some-room", "/healthz", "/api/v1/rooms/nope"])
async def test_security_headers(mserver: ParleyProcess, path: str) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.get(mserver.url + path) as r:
            headers = r.headers
            await r.read()
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "no-referrer"
    csp = headers["Content-Security-Policy"]
    directives = {d.split()[0]: d.split()[1:] for d in csp.split(";") if d.strip()}
    assert directives["script-src"] == ["'self'"]
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp
    assert directives["object-src"] == ["'none'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert directives["base-uri"] == ["'none'"]
    assert "*" not in directives["default-src"] + directives["connect-src"]


# -- frames --------------------------------------------------------------------------------


async def test_oversized_frame_closes_1009(mserver: ParleyProcess, net: Net, room: str) -> None:
    c = await net.join(mserver, room, "Ada")
    await c.send_raw('{"type":"chat","text":"' + "x" * 70_000 + '"}')
    assert await c.wait_closed() == 1009


async def test_rest_history_huge_before_is_a_bad_request(
    mserver: ParleyProcess, net: Net, room: str
) -> None:
    c = await net.join(mserver, room, "Ada")
    await c.chat("hello")
    status, body = await rest(mserver, f"/api/v1/rooms/{room}/messages?before={2**70}")
    assert status == 400, (status, body)  # (was a 500 with an OverflowError traceback)
    assert body["error"]["code"] == "bad_request"


# -- TLS -----------------------------------------------------------------------------------


async def test_tls_https_and_wss(fleet: Fleet, net: Net, room: str) -> None:
    srv = fleet.tls
    trusted = ssl.create_default_context(cafile=str(fleet.certfile))
    async with aiohttp.ClientSession() as s:
        async with s.get(srv.url + "/healthz", ssl=trusted) as r:
            assert r.status == 200
            assert (await r.json())["status"] == "ok"
            assert r.headers["X-Frame-Options"] == "DENY"
            assert f"wss://127.0.0.1:{srv.port}" in r.headers["Content-Security-Policy"]
        # The same certificate is not trusted by default: it really is TLS.
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            async with s.get(srv.url + "/healthz") as r:
                pass
        # WSS, with the page's own (https) origin.
        ws = await s.ws_connect(srv.ws_url, ssl=trusted, headers={"Origin": srv.origin})
        ada = Client(ws).start()
        net.opened.append(ada)
        await ada.send({"type": "join", "room": room, "name": "Ada", "v": 1})
        await ada.expect("welcome")
        bob = await net.join(srv, room, "Bob")  # (unverified TLS client)
        await ada.expect("participant-joined")
        await bob.chat("over wss")
        got = await ada.expect("chat")
        assert got["message"]["text"] == "over wss"
        # An http:// origin is not the server's own origin on a TLS server.
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await s.ws_connect(
                srv.ws_url, ssl=trusted, headers={"Origin": f"http://127.0.0.1:{srv.port}"}
            )
        assert info.value.status == 403
    # Plain HTTP to the TLS port does not work.
    with pytest.raises(aiohttp.ClientError):
        async with aiohttp.ClientSession() as s:
            async with s.get(f"http://127.0.0.1:{srv.port}/healthz") as r:
                await r.read()
                assert r.status != 200
