"""A refused join raises the JoinRefused subclass of its code; the lobby waits for a host."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from parley.client import (
    BadName,
    BadPassword,
    BadRoom,
    BadToken,
    Banned,
    ConnectionLost,
    Denied,
    JoinRefused,
    Locked,
    PasswordRequired,
    RoomFull,
    TokenRequired,
    connect,
    events,
)
from tests.client.conftest import Meetings, token
from tests.client.test_connect import next_event
from tests.support.parley_process import ParleyProcess
from tests.support.processes import free_port


async def refused(srv: ParleyProcess, room: str, name: str = "Eve", **kwargs: str) -> JoinRefused:
    with pytest.raises(JoinRefused) as info:
        await connect(srv.url, room, name, **kwargs)  # type: ignore[arg-type]
    return info.value


async def test_password_lock_size_and_ban_refusals(
    server: ParleyProcess, room: str, meetings: Meetings
) -> None:
    ada = await meetings.join(server, room, "Ada")
    await ada.update_settings(password="sesame")
    err = await refused(server, room)
    assert type(err) is PasswordRequired and err.code == "password_required"
    err = await refused(server, room, password="wrong")
    assert type(err) is BadPassword and err.code == "bad_password"
    bob = await meetings.join(server, room, "Bob", password="sesame")

    await ada.update_settings(max_participants=2)
    err = await refused(server, room, password="sesame")
    assert type(err) is RoomFull and err.code == "room_full"

    await ada.update_settings(locked=True, max_participants=10)
    err = await refused(server, room, password="sesame")
    assert type(err) is Locked and err.code == "locked"

    await ada.update_settings(locked=False)
    await ada.remove(bob.id, ban=True)
    removed = await next_event(bob, "removed")
    assert isinstance(removed, events.Removed) and removed.ban
    with pytest.raises(StopAsyncIteration):
        await anext(bob)
    assert bob.close_reason == "removed by a host"
    err = await refused(server, room, "Bob", password="sesame")
    assert type(err) is Banned and err.code == "banned"


async def test_bad_names_and_rooms(server: ParleyProcess, room: str) -> None:
    err = await refused(server, room, "Eve\u202e")
    assert type(err) is BadName and "U+202E" in err.message
    err = await refused(server, "no spaces here", "Eve")
    assert type(err) is BadRoom


async def test_token_refusals(
    parley_server: Callable[..., ParleyProcess], room: str, meetings: Meetings
) -> None:
    invited = parley_server("--require-token", "--no-rate-limits")
    err = await refused(invited, room)
    assert type(err) is TokenRequired and err.code == "token_required"
    err = await refused(invited, room, token=token("another-room", "Eve"))
    assert type(err) is BadToken and "another-room" in err.message
    ada = await meetings.join(invited, room, "typed", token=token(room, "Ada", "host"))
    assert (ada.name, ada.role) == ("Ada", "host")


async def test_an_unreachable_server_is_one_clear_error(room: str) -> None:
    port = free_port()
    with pytest.raises(ConnectionLost) as lost:
        await connect(f"http://127.0.0.1:{port}", room, "Eve")
    assert f"ws://127.0.0.1:{port}/ws" in str(lost.value)


async def test_the_lobby_waits_until_a_host_admits(
    server: ParleyProcess, room: str, meetings: Meetings
) -> None:
    ada = await meetings.join(server, room, "Ada")
    await ada.update_settings(lobby=True)
    joining = asyncio.create_task(meetings.join(server, room, "Carol"))
    lobby = await next_event(ada, "lobby")
    assert isinstance(lobby, events.Lobby) and [w.name for w in lobby.waiting] == ["Carol"]
    assert not joining.done()  # connect() is still waiting
    assert [w.name for w in ada.lobby] == ["Carol"]
    await ada.admit(lobby.waiting[0].id)
    carol = await asyncio.wait_for(joining, 10)
    assert carol.id == lobby.waiting[0].id and set(carol.participants) == {ada.id, carol.id}
    assert await carol.say("thanks") > 0

    denied = asyncio.create_task(meetings.join(server, room, "Dave"))
    while [w.name for w in ada.lobby] != ["Dave"]:
        await next_event(ada, "lobby")
    await ada.deny(ada.lobby[0].id)
    with pytest.raises(Denied):
        await asyncio.wait_for(denied, 10)
