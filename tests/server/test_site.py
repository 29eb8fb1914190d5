"""The listening socket's options (``parley.server.site``), on real kernel sockets."""

from __future__ import annotations

import select
import socket

import pytest

from parley.server.site import defer_accept

pytestmark = pytest.mark.skipif(
    not hasattr(socket, "TCP_DEFER_ACCEPT"), reason="TCP_DEFER_ACCEPT is Linux's"
)


def test_a_connection_reaches_accept_with_its_first_bytes_not_before() -> None:
    # Every client of Parley's port speaks first (HTTP request, TLS hello): the server
    # wakes once for the connection and its request, not once for each.
    with socket.create_server(("127.0.0.1", 0)) as listener:
        assert defer_accept(listener)
        port = listener.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port)) as client:
            # Connected from the client's side, yet nothing to accept: it has not spoken.
            ready, _, _ = select.select([listener], [], [], 0.3)
            assert ready == []
            client.sendall(b"GET /healthz HTTP/1.1\r\n\r\n")
            ready, _, _ = select.select([listener], [], [], 10.0)
            assert ready == [listener]
            conn, _ = listener.accept()
            with conn:
                conn.settimeout(10.0)
                assert conn.recv(100).startswith(b"GET /healthz")


def test_unix_sockets_are_left_alone() -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        assert not defer_accept(sock)
