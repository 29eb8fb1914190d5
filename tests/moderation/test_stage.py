"""Stage and audience end to end, over real WebSockets: a server whose rooms are in stage
mode past 2 people (``--stage-threshold 2``) and whose rooms chat at most 6 messages per
10 s, everyone together (``--room-chat-rate 6``).

What an audience member tries beyond its rights (publishing, promoting, chatting past
the room's setting) is refused with a typed error, logged, and nobody else hears of it.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.moderation.harness import Net, expect_system, quiet
from tests.support.parley_process import ParleyProcess
from tests.support.ws_client import Client


@pytest.fixture(scope="module")
def stage_server(mserver_factory: Callable[..., ParleyProcess]) -> ParleyProcess:
    return mserver_factory("--stage-threshold", "2", "--room-chat-rate", "6")


def role_of(client: Client, pid: str) -> str:
    assert client.welcome is not None
    return str(next(p["role"] for p in client.welcome["participants"] if p["id"] == pid))


def heard(client: Client) -> int:
    """Messages received but pongs (``quiet`` sends pings)."""
    return sum(1 for m in client.received if m["type"] != "pong")


async def stage_room(net: Net, srv: ParleyProcess, room: str) -> tuple[Client, Client, Client]:
    """The host, and two joiners of the audience."""
    host = await net.join(srv, room, "Host")
    aud = await net.join(srv, room, "Aud")
    bea = await net.join(srv, room, "Bea")
    assert host.welcome is not None and host.welcome["room"]["settings"]["stage"] is True
    assert role_of(aud, aud.id) == "observer" and role_of(bea, bea.id) == "observer"
    await quiet(host, aud, bea)
    return host, aud, bea


async def test_the_audience_cannot_publish_or_promote_and_nobody_is_disturbed(
    stage_server: ParleyProcess, net: Net, room: str
) -> None:
    host, aud, bea = await stage_room(net, stage_server, room)
    seen = [heard(c) for c in (host, bea)]
    attempts = [
        {"type": "signal", "to": "sfu", "payload": {"sfu": "publish", "sdp": "v=0"}},
        {"type": "media", "mic": True, "cam": True},
        {"type": "set-role", "to": aud.id, "role": "participant"},
        {"type": "set-role", "to": bea.id, "role": "host"},
        {"type": "room-settings", "stage": False},
        {"type": "lower-hand", "to": bea.id},
    ]
    for i, attempt in enumerate(attempts):
        await aud.send({**attempt, "ref": f"a{i}"})
        error = await aud.error("forbidden")
        assert error["ref"] == f"a{i}"
    await quiet(host, aud, bea)
    # Nothing changed, and nobody else received anything.
    assert [heard(c) for c in (host, bea)] == seen
    late = await net.join(stage_server, room, "Late")
    assert role_of(late, aud.id) == "observer" and role_of(late, bea.id) == "observer"
    assert not next(p for p in late.welcome["participants"] if p["id"] == aud.id)["mic"]  # type: ignore[index]
    assert late.welcome["room"]["settings"]["stage"] is True  # type: ignore[index]
    # Logged on the server, with who tried.
    log = stage_server.full_log()
    assert f"refused {aud.id} in {room}: observers cannot send media" in log
    assert f"refused {aud.id} in {room}: only hosts can do that" in log


async def test_a_raised_hand_is_invited_to_the_stage_and_moved_back(
    stage_server: ParleyProcess, net: Net, room: str
) -> None:
    host, aud, bea = await stage_room(net, stage_server, room)
    await aud.send({"type": "hand", "raised": True})
    up = await host.expect("participant-updated", lambda m: m["participant"]["hand"])
    assert up["participant"]["id"] == aud.id
    await host.send({"type": "set-role", "to": aud.id, "role": "participant"})
    for c in (host, aud, bea):
        upd = await c.expect(
            "participant-updated", lambda m: m["participant"]["role"] == "participant"
        )
        assert upd["participant"]["id"] == aud.id and upd["participant"]["hand"] is False
    await expect_system([host, aud, bea], "Host invited Aud to the stage")
    await aud.expect("resume-token")
    # On stage: Aud may turn the microphone on, and the SFU takes the publish offer
    # (a real offer is the browser test's; here: no "forbidden" any more).
    await aud.send({"type": "media", "mic": True})
    await bea.expect("participant-updated", lambda m: m["participant"]["mic"] is True)
    # Back to the audience: the microphone is off, and publishing is refused again.
    await host.send({"type": "set-role", "to": aud.id, "role": "observer"})
    upd = await bea.expect("participant-updated", lambda m: m["participant"]["role"] == "observer")
    assert upd["participant"]["mic"] is False
    await expect_system([host, aud, bea], "Host moved Aud to the audience")
    await aud.send({"type": "signal", "to": "sfu", "payload": {"sfu": "publish", "sdp": "v=0"}})
    await aud.error("forbidden")


async def test_chat_limited_to_the_stage_and_to_questions(
    stage_server: ParleyProcess, net: Net, room: str
) -> None:
    host, aud, bea = await stage_room(net, stage_server, room)
    await host.send({"type": "room-settings", "chat": "stage"})
    for c in (host, aud, bea):
        upd = await c.expect("room-updated")
        assert upd["settings"]["chat"] == "stage"
    await expect_system([host, aud, bea], "Host limited the chat to the stage")
    await aud.send({"type": "chat", "text": "let me in", "ref": "c1"})
    assert (await aud.error("forbidden"))["ref"] == "c1"
    await aud.send({"type": "chat", "text": "psst", "to": host.id, "ref": "c2"})
    await aud.error("forbidden")
    await host.chat("Welcome, everyone")
    await bea.expect("chat", lambda m: m["message"]["text"] == "Welcome, everyone")

    await host.send({"type": "room-settings", "chat": "questions"})
    await expect_system([host, aud, bea], "questions to the stage")
    await aud.chat("When is lunch?")
    question = await host.expect("chat", lambda m: m["message"]["text"] == "When is lunch?")
    assert question["message"]["to"] == "stage"
    await aud.expect("chat", lambda m: m["message"]["text"] == "When is lunch?")
    await quiet(bea)
    assert not bea.saw_chat("When is lunch?")  # another audience member does not see it
    # History: the stage and the asker read the question; the rest of the audience not.
    for client, sees in ((host, True), (aud, True), (bea, False)):
        await client.send({"type": "history", "ref": "h"})
        page = await client.expect("history")
        assert any(m["text"] == "When is lunch?" for m in page["messages"]) is sees
    late = await net.join(stage_server, room, "Late")
    assert late.welcome is not None
    assert late.welcome["room"]["settings"]["chat"] == "questions"
    assert all(m["text"] != "When is lunch?" for m in late.welcome["history"])


async def test_the_room_chat_rate_holds_everyone_together_but_hosts(
    stage_server: ParleyProcess, net: Net, room: str
) -> None:
    host, aud, bea = await stage_room(net, stage_server, room)
    for i in range(6):
        await (aud if i % 2 else bea).chat(f"m{i}")
    await aud.send({"type": "chat", "text": "one more", "ref": "late"})
    error = await aud.error("rate_limited")
    assert error["ref"] == "late" and "room's chat is busy" in error["message"]
    await bea.send({"type": "chat", "text": "me too"})
    await bea.error("rate_limited")
    await host.chat("hosts still speak")  # never held back by the room
    await aud.expect("chat", lambda m: m["message"]["text"] == "hosts still speak")
    await quiet(host, aud, bea)
    assert not host.saw_chat("one more") and not host.saw_chat("me too")
    # Another room is not held back by this one.
    other = await net.join(stage_server, room + "-b", "Other")
    await other.chat("a room of its own")
