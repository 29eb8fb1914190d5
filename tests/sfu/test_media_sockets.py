"""``shared_ports.MediaSockets``: the SFU's ICE candidates on fixed UDP ports, shared.

Real aiortc peer connections in this process, all on 127.0.0.1: the "server" side is
attached to a :class:`MediaSockets`, the "client" side is plain aiortc; each pair
echoes a data-channel message, so ICE, DTLS and SCTP all run through the shared socket.
The public address of ``public_ip`` is never given to a client (its candidate lines are
removed from the answer first): no packet leaves 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import inspect
import socket

import aioice.ice
import aioice.stun
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from parley.sfu.aiortc import hooks, shared_ports
from tests.sfu.sfu_media import candidates, free_udp_ports, loopback_candidates

pytestmark = pytest.mark.timeout(60)

PUBLIC = "203.0.113.7"  # TEST-NET-3: only ever written into SDP, never sent to


@pytest.fixture(autouse=True)
def loopback(loopback_only: None) -> None:
    """Every test here: this process's peers on 127.0.0.1 (conftest's ``loopback_only``)."""


class Pair:
    """A server-side peer connection on ``sockets`` and a client echoing through it."""

    def __init__(self, sockets: shared_ports.MediaSockets) -> None:
        self.sockets = sockets
        self.server = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.client = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.echoed: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.answer = ""

    async def connect(self, text: str = "hi") -> None:
        channel = self.client.createDataChannel("echo")

        @self.server.on("datachannel")
        def on_datachannel(dc: object) -> None:
            @dc.on("message")  # type: ignore[attr-defined]
            def on_message(message: str) -> None:
                dc.send("echo:" + message)  # type: ignore[attr-defined]

        @channel.on("open")
        def on_open() -> None:
            channel.send(text)

        @channel.on("message")
        def on_message(message: str) -> None:
            if not self.echoed.done():
                self.echoed.set_result(message)

        await self.client.setLocalDescription(await self.client.createOffer())
        await self.server.setRemoteDescription(self.client.localDescription)
        self.sockets.attach(self.server)
        await self.server.setLocalDescription(await self.server.createAnswer())
        self.answer = self.server.localDescription.sdp
        await self.client.setRemoteDescription(
            RTCSessionDescription(loopback_candidates(self.answer), "answer")
        )

    def host_ports(self) -> set[int]:
        return {int(c[5]) for c in candidates(self.answer) if c[7] == "host"}

    async def close(self) -> None:
        await self.client.close()
        await self.server.close()


async def test_one_port_serves_several_connections() -> None:
    port = free_udp_ports(1)
    sockets = shared_ports.MediaSockets((port, port))
    pairs = [Pair(sockets) for _ in range(4)]
    try:
        for p in pairs:
            await p.connect()
            assert [(c[4], int(c[5]), c[7]) for c in candidates(p.answer)] == [
                ("127.0.0.1", port, "host")
            ]
        echoes = await asyncio.wait_for(asyncio.gather(*(p.echoed for p in pairs)), 20)
        assert echoes == ["echo:hi"] * 4
        [shared] = sockets.sockets()
        assert shared.load == 4
        # each client's address was learnt by exactly one connection
        assert len(shared.by_addr) == 4 and len(set(shared.by_addr.values())) == 4
        assert all(p.server.connectionState == "connected" for p in pairs)
    finally:
        for p in pairs:
            await p.close()
    assert shared.load == 0 and not shared.by_addr and not shared.by_ufrag
    sockets.close()


async def test_a_range_spreads_connections_then_shares() -> None:
    first = free_udp_ports(2)
    sockets = shared_ports.MediaSockets((first, first + 1))
    pairs = [Pair(sockets) for _ in range(3)]
    try:
        for p in pairs:
            await p.connect()
        # one port each while there are free ones, then the least used is shared
        assert [p.host_ports() for p in pairs[:2]] == [{first}, {first + 1}]
        assert pairs[2].host_ports() <= {first, first + 1}
        await asyncio.wait_for(asyncio.gather(*(p.echoed for p in pairs)), 20)
        assert sorted(s.load for s in sockets.sockets()) == [1, 2]
    finally:
        for p in pairs:
            await p.close()
        sockets.close()


async def test_public_ip_is_offered_besides_the_private_address() -> None:
    port = free_udp_ports(1)
    sockets = shared_ports.MediaSockets((port, port), PUBLIC)
    p = Pair(sockets)
    try:
        await p.connect()
        lines = candidates(p.answer)
        assert {(c[4], int(c[5]), c[7]) for c in lines} == {
            ("127.0.0.1", port, "host"),
            (PUBLIC, port, "srflx"),
        }
        [srflx] = [c for c in lines if c[7] == "srflx"]
        assert srflx[8:12] == ["raddr", "127.0.0.1", "rport", str(port)]
        # the private path still works (the public candidate was not given to the client)
        assert await asyncio.wait_for(p.echoed, 20) == "echo:hi"
    finally:
        await p.close()
        sockets.close()


async def test_public_ip_without_fixed_ports() -> None:
    sockets = shared_ports.MediaSockets(None, PUBLIC)
    p = Pair(sockets)
    try:
        await p.connect()
        lines = candidates(p.answer)
        [host] = [c for c in lines if c[7] == "host"]
        [srflx] = [c for c in lines if c[7] == "srflx"]
        assert host[4] == "127.0.0.1" and srflx[4] == PUBLIC and srflx[5] == host[5]
        assert not sockets.sockets()  # aioice's own socket: nothing shared
        assert await asyncio.wait_for(p.echoed, 20) == "echo:hi"
    finally:
        await p.close()


async def test_busy_port_fails_gathering_clearly_then_recovers() -> None:
    port = free_udp_ports(1)
    squatter = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    squatter.bind(("127.0.0.1", port))
    sockets = shared_ports.MediaSockets((port, port))
    p = Pair(sockets)
    try:
        why = f"--media-port {port} can be bound on 127.0.0.1 .port {port}: Address already in use"
        with pytest.raises(shared_ports.MediaPortsUnavailable, match=why):
            await p.connect()
    finally:
        squatter.close()
        await p.close()
    p = Pair(sockets)  # the port is free again: the next connection gets it
    try:
        await p.connect()
        assert p.host_ports() == {port}
        assert await asyncio.wait_for(p.echoed, 20) == "echo:hi"
    finally:
        await p.close()
        sockets.close()


async def test_strangers_are_not_routed() -> None:
    """A STUN check with a known ufrag but a wrong password reaches no connection."""
    port = free_udp_ports(1)
    sockets = shared_ports.MediaSockets((port, port))
    p = Pair(sockets)
    try:
        await p.connect()
        await asyncio.wait_for(p.echoed, 20)
        [shared] = sockets.sockets()
        [protocol] = list(shared.members)
        ufrag = protocol.receiver.local_username
        before = shared.unrouted
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as stranger:
            stranger.bind(("127.0.0.1", 0))
            check = aioice.stun.Message(
                message_method=aioice.stun.Method.BINDING,
                message_class=aioice.stun.Class.REQUEST,
            )
            check.attributes["USERNAME"] = f"{ufrag}:evil"
            check.add_message_integrity(b"not the password")
            stranger.sendto(bytes(check), ("127.0.0.1", port))
            stranger.sendto(b"\x80\x60" + b"\x00" * 30, ("127.0.0.1", port))  # "RTP"
            for _ in range(250):
                if shared.unrouted >= before + 2:
                    break
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.1)
            stranger.setblocking(False)
            with pytest.raises(BlockingIOError):
                stranger.recv(2048)  # no answer at all (not even 401)
            assert stranger.getsockname() not in shared.by_addr
        assert shared.unrouted == before + 2
        assert p.server.connectionState == "connected"
    finally:
        await p.close()
        sockets.close()


async def test_a_verified_check_teaches_its_address() -> None:
    """A check signed with a connection's password routes its source address there."""
    port = free_udp_ports(1)
    sockets = shared_ports.MediaSockets((port, port))
    pairs = [Pair(sockets) for _ in range(2)]
    try:
        for p in pairs:
            await p.connect()
        await asyncio.wait_for(asyncio.gather(*(p.echoed for p in pairs)), 20)
        [shared] = sockets.sockets()
        first, second = list(shared.members)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
            peer.bind(("127.0.0.1", 0))
            peer.settimeout(5)
            here = peer.getsockname()
            for protocol in (first, second):
                connection = protocol.receiver
                check = aioice.stun.Message(
                    message_method=aioice.stun.Method.BINDING,
                    message_class=aioice.stun.Class.REQUEST,
                )
                check.attributes["USERNAME"] = f"{connection.local_username}:peer"
                check.attributes["ICE-CONTROLLING"] = 1
                check.add_message_integrity(connection.local_password.encode())
                peer.sendto(bytes(check), ("127.0.0.1", port))
                for _ in range(250):
                    if shared.by_addr.get(here) is protocol:
                        break
                    await asyncio.sleep(0.02)
                assert shared.by_addr.get(here) is protocol
                assert here in shared.members[protocol]
            assert here not in shared.members[first]  # moved to the second connection
        assert all(p.server.connectionState == "connected" for p in pairs)
    finally:
        for p in pairs:
            await p.close()
        sockets.close()


def test_the_aioice_internals_media_sockets_use() -> None:
    hooks.check_compat()
    conn = aioice.ice.Connection
    assert list(inspect.signature(conn.get_component_candidates).parameters) == [
        "self",
        "component",
        "addresses",
        "timeout",
    ]
    # gathering goes through the (instance-overridable) method, for every component
    assert "self.get_component_candidates(" in inspect.getsource(conn.gather_candidates)
    # our host protocols must be in _protocols: pairing and close() iterate it
    assert "self._protocols" in inspect.getsource(conn.__init__)
    assert "for protocol in self._protocols" in inspect.getsource(conn._pair_remote_candidate)
    assert "for protocol in self._protocols" in inspect.getsource(conn.close)
    # StunProtocol: its receiver, transactions and the transport calls it makes
    proto = aioice.ice.StunProtocol
    assert "self.receiver = receiver" in inspect.getsource(proto.__init__)
    assert "self.transactions" in inspect.getsource(proto.__init__)
    received = inspect.getsource(proto.datagram_received)
    assert "self.receiver.request_received(message, addr, self)" in received
    assert "self.transactions[message.transaction_id]" in received
    # what it does with a datagram that is not STUN (the shared socket does the same)
    assert "self.receiver.data_received(data, self.local_candidate.component)" in received
    close = inspect.getsource(proto.close)
    assert "self.transport.close()" in close and "await self.__closed" in close
    assert "self.__closed.set_result(True)" in inspect.getsource(proto.connection_lost)
    # request_received authenticates with the local password we check too
    assert "check_message_integrity(self.local_password" in inspect.getsource(conn.request_received)


def test_missing_gather_hook_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(aioice.ice.Connection, "get_component_candidates")
    with pytest.raises(hooks.AiortcIncompatible, match="get_component_candidates"):
        hooks.check_compat()
    with pytest.raises(hooks.AiortcIncompatible):
        shared_ports.MediaSockets((40000, 40000))


def test_changed_gather_signature_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    async def changed(self: object, component: int) -> list[object]:
        return []

    monkeypatch.setattr(aioice.ice.Connection, "get_component_candidates", changed)
    with pytest.raises(hooks.AiortcIncompatible, match="component, addresses, timeout"):
        hooks.check_compat()
