"""The ``Host`` header in the Content-Security-Policy: named when it is a host, never spliced.

connect-src names ``ws://HOST wss://HOST`` for older browsers; a Host header
is whatever the client sent, so one carrying ``;`` must not add directives.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.support.parley_process import ParleyProcess


async def csp_for(server: ParleyProcess, host: bytes) -> dict[str, list[str]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"GET / HTTP/1.1\r\nHost: " + host + b"\r\nConnection: close\r\n\r\n")
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    head = answer.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    assert head[0].startswith("HTTP/1.1 200"), head
    fields = [h.partition(": ") for h in head[1:]]
    (csp,) = [v for k, _, v in fields if k.lower() == "content-security-policy"]
    directives: dict[str, list[str]] = {}
    for d in csp.split(";"):
        name, *values = d.split()
        assert name not in directives, f"{name} twice in {csp!r}"
        directives[name] = values
    return directives


async def test_own_host_is_named_for_websockets(server: ParleyProcess) -> None:
    host = f"127.0.0.1:{server.port}"
    csp = await csp_for(server, host.encode())
    assert csp["connect-src"] == ["'self'", f"ws://{host}", f"wss://{host}"]
    # A proxy passing the public name (deploy/nginx: Host $http_host) gets that name.
    csp = await csp_for(server, b"meet.example.com")
    assert csp["connect-src"] == ["'self'", "ws://meet.example.com", "wss://meet.example.com"]


@pytest.mark.parametrize(
    "host",
    [
        b"x; script-src 'unsafe-inline' *; connect-src *",
        b"evil.example *",
        b"a,b",
        b"[::1]:8000",  # no CSP syntax for IPv6 literals: 'self' covers them
    ],
)
async def test_a_hostile_host_adds_nothing(server: ParleyProcess, host: bytes) -> None:
    csp = await csp_for(server, host)
    assert csp["connect-src"] == ["'self'"]
    assert csp["script-src"] == ["'self'"]
    assert csp["default-src"] == ["'self'"]
