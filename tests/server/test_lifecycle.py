"""Resume, heartbeat timeout, graceful shutdown, restarts and slow readers, on the real server."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
from collections.abc import Callable
from typing import Any

import aiohttp

from tests.server.harness import get_json
from tests.support.parley_process import ParleyProcess
from tests.support.ws_client import Client, Clients


def joins_or_leaves(client: Client, pid: str) -> list[dict[str, object]]:
    return [
        m
        for m in client.received
        if (m["type"] == "participant-left" and m["id"] == pid)
        or (m["type"] == "participant-joined" and m["participant"]["id"] == pid)  # type: ignore[index]
    ]


async def rejoin(clients: Clients, srv: ParleyProcess, room: str, old: Client) -> Client:
    assert old.welcome is not None
    return await clients.join(srv, room, "Ada", resume=old.welcome["resume"])


async def test_resume_within_grace_keeps_identity_silently(
    quick_server: ParleyProcess, clients: Clients, room: str
) -> None:
    ada = await clients.join(quick_server, room, "Ada")
    bob = await clients.join(quick_server, room, "Bob")
    await ada.send({"type": "media", "mic": True})
    await bob.expect("participant-updated")
    ada.drop()
    await ada.wait_closed()
    again = await rejoin(clients, quick_server, room, ada)
    assert again.welcome is not None
    assert again.welcome["resumed"] is True
    assert again.id == ada.id
    me = next(x for x in again.welcome["participants"] if x["id"] == ada.id)
    assert me["mic"] is True  # state kept
    # well past the grace period, Bob has seen no leave/join of Ada
    await asyncio.sleep(3)
    await bob.roundtrip()
    assert joins_or_leaves(bob, ada.id) == []
    # and the resumed connection works both ways
    ack = await again.chat("back")
    assert (await bob.expect("chat"))["message"]["id"] == ack["id"]
    assert (await again.expect("chat"))["message"]["sender"] == ada.id


async def test_resume_replaces_a_still_open_socket(
    quick_server: ParleyProcess, clients: Clients, room: str
) -> None:
    ada = await clients.join(quick_server, room, "Ada")
    bob = await clients.join(quick_server, room, "Bob")
    again = await rejoin(clients, quick_server, room, ada)
    assert again.id == ada.id and again.welcome is not None and again.welcome["resumed"]
    assert await ada.wait_closed() == 4000  # the old socket is retired ("replaced")
    await asyncio.sleep(2.5)
    await bob.roundtrip()
    assert joins_or_leaves(bob, ada.id) == []
    await again.roundtrip()


async def test_after_grace_others_saw_left_and_the_token_restores_nothing(
    quick_server: ParleyProcess, clients: Clients, room: str
) -> None:
    ada = await clients.join(quick_server, room, "Ada")
    bob = await clients.join(quick_server, room, "Bob")
    await ada.close()  # a clean close without leave also counts as a drop
    left = await bob.expect("participant-left", within=10)
    assert left == {"type": "participant-left", "id": ada.id, "reason": "disconnected"}
    # The token still names Ada, but the server no longer holds her: she joins as
    # someone new (a new id, not "resumed"), announced as a join.
    again = await rejoin(clients, quick_server, room, ada)
    assert again.id != ada.id and again.welcome is not None
    assert again.welcome["resumed"] is False
    joined = await bob.expect("participant-joined")
    assert joined["participant"]["id"] == again.id


async def test_heartbeat_timeout_announced_as_timeout(
    quick_server: ParleyProcess, clients: Clients, room: str
) -> None:
    bob = await clients.join(quick_server, room, "Bob")
    dead = await clients.connect(quick_server, autoping=False)  # never answers pings
    await dead.send({"type": "join", "room": room, "name": "Zombie", "v": 1})
    dead.welcome = await dead.expect("welcome")
    left = await bob.expect("participant-left", within=10)
    assert left == {"type": "participant-left", "id": dead.id, "reason": "timeout"}
    # Bob (who answers pings) is still connected
    await bob.roundtrip()
    _, info = await get_json(quick_server, f"/api/v1/rooms/{room}")
    assert [x["name"] for x in info["participants"]] == ["Bob"]


async def test_bad_resume_then_fresh_join(
    quick_server: ParleyProcess, clients: Clients, room: str
) -> None:
    ada = await clients.join(quick_server, room, "Ada")
    assert ada.welcome is not None
    token = ada.welcome["resume"]
    body, sig = token.split(".")
    c = await clients.connect(quick_server)
    await c.send({"type": "join", "room": room, "name": "X", "v": 1, "resume": body + ".AAAA"})
    await c.error("bad_resume")
    await c.send({"type": "join", "room": room, "name": "X", "v": 1})
    w = await c.expect("welcome")
    assert w["id"] != ada.id and w["resumed"] is False


async def test_graceful_shutdown_and_restart(
    parley_server: Callable[..., ParleyProcess], clients: Clients, room: str
) -> None:
    srv = parley_server()
    ada = await clients.join(srv, room, "Ada")
    bob = await clients.join(srv, room, "Bob")
    ack = await ada.chat("last words")
    assert srv.proc is not None
    srv.proc.send_signal(signal.SIGTERM)
    for c in (ada, bob):
        assert await c.wait_closed(within=15) == 1001
        assert c.close_reason == "server shutting down"
    assert await asyncio.to_thread(srv.proc.wait, 15) == 0
    await asyncio.to_thread(srv.start)
    status, page = await get_json(srv, f"/api/v1/rooms/{room}/messages")
    assert status == 200
    assert [m["id"] for m in page["messages"]] == [ack["id"]]
    # after a restart the resume token is still good: same identity
    again = await rejoin(clients, srv, room, ada)
    assert again.id == ada.id
    assert again.welcome is not None
    assert [m["id"] for m in again.welcome["history"]] == [ack["id"]]


async def test_acknowledged_chat_survives_sigterm_and_sigkill(
    parley_server: Callable[..., ParleyProcess], clients: Clients, room: str
) -> None:
    srv = parley_server("--no-rate-limits")
    acked: list[int] = []

    async def burst(n: int, kill_after: int | None) -> None:
        c = await clients.join(srv, room, "Writer")
        for i in range(n):
            await c.send({"type": "chat", "text": f"msg {len(acked)} {i}", "ref": str(i)})
        got = 0
        while got < (kill_after or n):
            m = await c.take(lambda x: x["type"] in ("chat-ack", "error"), "ack", 15)
            assert m["type"] == "chat-ack", m
            acked.append(m["id"])
            got += 1
        if kill_after is not None:
            assert srv.proc is not None
            srv.proc.kill()  # SIGKILL while later messages are still in flight
            await c.wait_closed()
            # acks that raced the kill count too
            acked.extend(m["id"] for m in c.pending if m["type"] == "chat-ack")

    async def stored_ids() -> set[int]:
        ids: set[int] = set()
        before = ""
        while True:
            status, page = await get_json(srv, f"/api/v1/rooms/{room}/messages?limit=200{before}")
            assert status == 200, page
            ids |= {m["id"] for m in page["messages"]}
            if not page["more"]:
                return ids
            before = f"&before={page['messages'][0]['id']}"

    await burst(50, None)
    assert srv.stop(signal.SIGTERM) == 0
    await asyncio.to_thread(srv.start)
    assert set(acked) <= await stored_ids()

    await burst(400, kill_after=150)
    assert srv.proc is not None and srv.proc.wait(10) == -signal.SIGKILL
    await asyncio.to_thread(srv.start)
    stored = await stored_ids()
    missing = set(acked) - stored
    assert not missing, f"{len(missing)} acknowledged messages lost after SIGKILL"
    assert len(acked) >= 200


def flood_size(message_bytes: int) -> int:
    try:
        wmem = int(open("/proc/sys/net/ipv4/tcp_wmem").read().split()[2])  # noqa: SIM115
    except (OSError, ValueError, IndexError):
        wmem = 4 * 1024 * 1024
    return max(2000, int(1.5 * wmem / message_bytes) + 500)


def small_receive_buffer(addr_info: tuple[Any, ...]) -> socket.socket:
    family, type_, proto = addr_info[0], addr_info[1], addr_info[2]
    sock = socket.socket(family, type_, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    return sock


async def test_slow_reader_is_dropped_room_keeps_flowing(
    parley_server: Callable[..., ParleyProcess], clients: Clients, room: str
) -> None:
    srv = parley_server("--no-rate-limits", "--max-outgoing-buffer", "65536")
    sender = await clients.join(srv, room, "Sender")
    bystander = await clients.join(srv, room, "Bystander")
    # the slow reader: joins, reads its welcome, then never reads again (with a small
    # kernel receive buffer, so the server's buffer for it fills up quickly)
    connector = aiohttp.TCPConnector(socket_factory=small_receive_buffer)
    async with aiohttp.ClientSession(connector=connector) as session:
        slow = await session.ws_connect(srv.ws_url, max_msg_size=0)
        await slow.send_str(json.dumps({"type": "join", "room": room, "name": "Slow", "v": 1}))
        while True:
            first = await slow.receive(timeout=10)
            if first.type == aiohttp.WSMsgType.TEXT and json.loads(first.data)["type"] == "welcome":
                break

        # more than the kernel may buffer towards the slow reader (its send buffer
        # can grow to tcp_wmem's maximum), so the server's own buffer must overflow
        n, text = flood_size(3000), "y" * 3000
        window = 200  # keep at most this many un-acked chats in flight
        sent = acked = 0
        while acked < n:
            while sent < n and sent - acked < window:
                await sender.send({"type": "chat", "text": text, "ref": str(sent)})
                sent += 1
            m = await sender.take(lambda x: x["type"] in ("chat-ack", "error"), "ack", 30)
            assert m["type"] == "chat-ack", m
            acked += 1
        assert acked == n

        # the bystander got every message, in order
        got: list[int] = []
        while len(got) < n:
            m = await bystander.expect("chat", within=30)
            got.append(m["message"]["id"])
        assert got == sorted(got) and len(set(got)) == n

        # the slow reader was dropped: reading now, it finds the end of its socket
        # well before all of the messages (close 1008 "too slow", or a reset)
        chats, end = 0, None
        while end is None:
            msg = await slow.receive(timeout=30)
            if msg.type == aiohttp.WSMsgType.TEXT:
                chats += json.loads(msg.data)["type"] == "chat"
            else:
                end = msg
        assert chats < n
        assert end.type in (
            aiohttp.WSMsgType.CLOSE,
            aiohttp.WSMsgType.CLOSED,
            aiohttp.WSMsgType.ERROR,
        )
        if end.type == aiohttp.WSMsgType.CLOSE:
            assert end.data == 1008 and end.extra == "too slow"
    # the room still works for the others, and the slow one is gone from it
    ack = await sender.chat("after")
    await bystander.expect("chat", lambda m: m["message"]["id"] == ack["id"])


async def test_roles_survive_a_restart(
    parley_server: Callable[..., ParleyProcess], clients: Clients, room: str
) -> None:
    """After a restart the host is still the host, whoever reconnects first."""
    srv = parley_server()
    ada = await clients.join(srv, room, "Ada")  # the first in: host
    bob = await clients.join(srv, room, "Bob")
    cy = await clients.join(srv, room, "Cy")
    assert ada.welcome is not None and bob.welcome is not None and cy.welcome is not None
    # Ada makes Cy a host as well: Cy is handed a resume token that says so.
    await ada.send({"type": "set-role", "to": cy.id, "role": "host"})
    renewed = await cy.expect("resume-token")
    assert renewed["token"] != cy.welcome["resume"]
    assert not bob.of_type("resume-token")  # nobody else's role changed
    assert srv.proc is not None
    srv.proc.send_signal(signal.SIGTERM)
    for c in (ada, bob, cy):
        assert await c.wait_closed(within=15) == 1001
    assert await asyncio.to_thread(srv.proc.wait, 15) == 0
    await asyncio.to_thread(srv.start)

    def roles(c: Client) -> dict[str, str]:
        assert c.welcome is not None
        return {x["name"]: x["role"] for x in c.welcome["participants"]}

    # Bob is back first; before, the first one back became the host.
    bob2 = await clients.join(srv, room, "Bob", resume=bob.welcome["resume"])
    assert bob2.id == bob.id and roles(bob2) == {"Bob": "participant"}
    cy2 = await clients.join(srv, room, "Cy", resume=renewed["token"])
    ada2 = await clients.join(srv, room, "Ada", resume=ada.welcome["resume"])
    assert roles(ada2) == {"Bob": "participant", "Cy": "host", "Ada": "host"}
    # and the host's powers are real: Ada can mute Bob
    await ada2.send({"type": "mute", "to": bob2.id})
    await bob2.expect("muted")
    assert cy2.id == cy.id


async def test_after_a_restart_roles_come_from_stored_state_not_from_tokens(
    parley_server: Callable[..., ParleyProcess], clients: Clients, room: str
) -> None:
    """A host token outlives a demotion; the stored meeting does not forget it."""
    srv = parley_server()
    ada = await clients.join(srv, room, "Ada")  # host: her token says "host"
    bob = await clients.join(srv, room, "Bob")
    assert ada.welcome is not None and bob.welcome is not None
    await ada.send({"type": "set-role", "to": bob.id, "role": "host"})
    await bob.expect("participant-updated", lambda m: m["participant"]["role"] == "host")
    await bob.send({"type": "set-role", "to": ada.id, "role": "participant"})
    await ada.expect("participant-updated", lambda m: m["participant"]["role"] == "participant")
    await bob.send({"type": "room-settings", "password": "after-restart"})
    await bob.expect("room-updated")
    assert srv.proc is not None
    srv.proc.send_signal(signal.SIGTERM)
    for c in (ada, bob):
        assert await c.wait_closed(within=15) == 1001
    assert await asyncio.to_thread(srv.proc.wait, 15) == 0
    await asyncio.to_thread(srv.start)

    # Ada's first token (the "host" one) brings her back first, as what she was last:
    # a participant of the interrupted meeting (no password asked: she was in it).
    ada2 = await clients.join(srv, room, "Ada", resume=ada.welcome["resume"])
    assert ada2.id == ada.id and ada2.welcome is not None and ada2.welcome["resumed"]
    assert {x["name"]: x["role"] for x in ada2.welcome["participants"]} == {"Ada": "participant"}
    bob2 = await clients.join(srv, room, "Bob", resume=bob.welcome["resume"])
    assert bob2.welcome is not None
    assert {x["name"]: x["role"] for x in bob2.welcome["participants"]}["Bob"] == "host"
    # A stranger still needs the password.
    stranger = await clients.connect(srv)
    await stranger.send({"type": "join", "room": room, "name": "Eve", "v": 1})
    assert (await stranger.expect("error"))["code"] == "password_required"
