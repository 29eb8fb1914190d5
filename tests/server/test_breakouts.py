"""Breakout rooms over real WebSockets against the real server: the same sockets move
into breakouts and back; a resume lands back in the breakout."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.support.parley_process import ParleyProcess
from tests.support.ws_client import Client, Clients

#: Seconds of the close warning on this module's server (the default, 30 s, is the
#: core's: tests/core/test_breakouts.py); short, so the suite does not wait.
WARNING = 5


@pytest.fixture(scope="module")
def server(parley_server: Callable[..., ParleyProcess]) -> ParleyProcess:
    return parley_server("--breakout-close-warning", str(WARNING))


def in_room(client: Client, room: str, within: float | None = None) -> Any:
    return client.expect("welcome", lambda m: m["room"]["name"] == room, within=within)


async def test_open_move_visit_broadcast_help_and_close(
    server: ParleyProcess, clients: Clients, room: str
) -> None:
    host = await clients.join(server, room, "Host")
    ann = await clients.join(server, room, "Ann")
    bob = await clients.join(server, room, "Bob")
    cy = await clients.join(server, room, "Cy")
    await host.send(
        {
            "type": "breakouts-open",
            "names": ["Red", "Blue"],
            "assign": {ann.id: 0, bob.id: 1},
            "auto": True,
            "ref": "o",
        }
    )
    # The same sockets get a welcome for their breakout, with its name.
    ann_w = await in_room(ann, f"{room}~1")
    assert ann_w["breakout"] == {"main": room, "index": 0, "title": "Red"}
    assert sorted(p["name"] for p in ann_w["participants"]) in (["Ann"], ["Ann", "Cy"])
    bob_w = await in_room(bob, f"{room}~2")
    assert bob_w["breakout"]["title"] == "Blue"
    cy_w = await in_room(cy, f"{room}~1")  # the emptiest room at the time: Red
    assert sorted(p["name"] for p in cy_w["participants"]) == ["Ann", "Cy"]
    assert ann.id == ann_w["id"] and cy.id == cy_w["id"]  # the same identities
    state = await host.expect("breakouts", lambda m: len(m["state"]["rooms"][0]["members"]) == 2)
    assert state["state"]["open"] is True
    assert [r["title"] for r in state["state"]["rooms"]] == ["Red", "Blue"]
    assert set(state["state"]["rooms"][0]["members"]) == {ann.id, cy.id}

    # Chat stays in its room: Red's message reaches Red only, under Red's history.
    await ann.chat("hello red")
    red = await cy.expect("chat", lambda m: m["message"]["text"] == "hello red")
    assert red["message"]["room"] == f"{room}~1"
    await bob.roundtrip()
    assert not bob.saw_chat("hello red") and not host.saw_chat("hello red")

    await bob.send({"type": "breakout-help"})
    call = await host.expect("breakout-help")
    assert (call["from"], call["title"]) == (bob.id, "Blue")

    await host.send({"type": "breakout-visit", "room": 1})
    visit = await in_room(host, f"{room}~2")
    assert sorted(p["name"] for p in visit["participants"]) == ["Bob", "Host"]
    await host.send({"type": "breakout-broadcast", "text": "Two minutes"})
    for client in (ann, bob, cy):
        msg = await client.expect("breakout-message")
        assert (msg["name"], msg["text"]) == ("Host", "Two minutes")

    await host.send({"type": "breakout-assign", "to": bob.id, "room": 0})
    await in_room(bob, f"{room}~1")
    await host.send({"type": "breakout-visit", "room": None})
    await in_room(host, room)

    await host.send({"type": "breakouts-close"})
    closing = await ann.expect("breakouts", lambda m: "closing_at" in m["state"])
    assert closing["state"]["open"] is True
    # The countdown everyone sees is the server's warning (same clock: one machine).
    left = closing["state"]["closing_at"] / 1000 - time.time()
    assert WARNING - 3 < left <= WARNING, left
    # Everyone returns on their own after the warning.
    for client in (ann, bob, cy):
        back = await in_room(client, room, within=WARNING + 15)
        assert "breakout" not in back
        assert len(back["participants"]) == 4
    done = await host.expect("breakouts", lambda m: m["state"]["open"] is False, within=40)
    assert done["state"] == {"main": room, "open": False}


async def test_a_resume_lands_back_in_the_breakout_and_a_duration_ends_it(
    server: ParleyProcess, clients: Clients, room: str
) -> None:
    host = await clients.join(server, room, "Host")
    ann = await clients.join(server, room, "Ann")
    await host.send({"type": "breakouts-open", "names": ["Only"], "duration": 10})
    first = await in_room(ann, f"{room}~1")
    ann.drop()
    # The page rejoins by the main room's name, with the token from the breakout's welcome.
    back = await clients.resume(server, ann, room)
    assert back.welcome is not None
    assert back.welcome["room"]["name"] == f"{room}~1"
    assert back.welcome["id"] == first["id"] and back.welcome["resumed"] is True
    assert back.welcome["breakout"]["title"] == "Only"
    # A late joiner stays in the main room until a host assigns them.
    late = await clients.join(server, room, "Late")
    assert late.welcome["room"]["name"] == room
    assert (await late.expect("breakouts"))["state"]["open"] is True
    # The duration ends: everyone is back, no host needed.
    await back.expect("welcome", lambda m: m["room"]["name"] == room, within=20)
    await host.expect("participant-joined", lambda m: m["participant"]["id"] == back.id)


async def test_bad_breakout_requests_are_refused_and_disturb_nobody(
    server: ParleyProcess, clients: Clients, room: str
) -> None:
    host = await clients.join(server, room, "Host")
    ann = await clients.join(server, room, "Ann")
    await ann.send({"type": "breakouts-open", "names": ["a"], "ref": "n"})
    assert (await ann.error("forbidden"))["ref"] == "n"
    await host.send({"type": "breakouts-open", "names": ["a"], "assign": {ann.id: 3}, "ref": "x"})
    assert (await host.error("no_such_breakout"))["ref"] == "x"
    await host.send({"type": "breakouts-open", "names": ["a"] * 21})
    await host.error("bad_message")
    await host.send({"type": "breakouts-close"})
    await host.error("no_breakouts")
    await host.send({"type": "breakout-visit", "room": 0})
    await host.error("no_breakouts")
    await host.roundtrip()
    await ann.roundtrip()
    assert ann.of_type("welcome") == [ann.welcome]


async def test_from_a_breakout_the_main_room_chat_stays_readable(
    server: ParleyProcess, clients: Clients, room: str
) -> None:
    host = await clients.join(server, room, "Host")
    ann = await clients.join(server, room, "Ann")
    await ann.chat("before the breakouts")
    await host.send({"type": "breakouts-open", "names": ["A", "B"], "assign": {ann.id: 0}})
    await in_room(ann, f"{room}~1")
    await ann.send({"type": "history", "room": room, "ref": "main"})
    main = await ann.expect("history", lambda m: m.get("ref") == "main")
    assert main["room"] == room
    assert "before the breakouts" in [m["text"] for m in main["messages"]]
    # Another breakout's chat, or another meeting's, is not readable from here.
    for other in (f"{room}~2", "elsewhere"):
        await ann.send({"type": "history", "room": other, "ref": "x"})
        assert (await ann.error("forbidden"))["ref"] == "x"
