"""A bot sent back to the lobby by the room's policy, and let in again by a host: the SDK
says so with events and keeps ``participants`` right."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from parley.client import RequestRefused
from tests.client.conftest import Meetings
from tests.client.test_connect import next_event
from tests.support.parley_process import ParleyProcess

POLICY = """
async def on_chat(msg, actions):
    if msg.text.startswith("!lobby "):
        for pid, name, _role in actions.participants(msg.room):
            if name == msg.text.split(" ", 1)[1]:
                await actions.to_lobby(msg.room, pid)
        return None
    return msg
"""


async def test_sent_to_the_lobby_then_let_back_in(
    parley_server: Callable[..., ParleyProcess], tmp_path: Path, meetings: Meetings, room: str
) -> None:
    policy = tmp_path / "policy.py"
    policy.write_text(POLICY)
    srv = parley_server("--no-rate-limits", "--media", "mesh", "--policy", str(policy))
    host = await meetings.join(srv, room, "Host")
    bot = await meetings.join(srv, room, "Bot")
    assert set(bot.participants) == {host.id, bot.id}
    with pytest.raises(RequestRefused):  # the policy takes the command off the chat
        await host.say("!lobby Bot")
    wait = await next_event(bot, "lobby-wait")
    assert wait.type == "lobby-wait"
    assert bot.waiting and set(bot.participants) == {bot.id}
    left = await next_event(host, "participant-left")
    assert left.type == "participant-left" and (left.id, left.reason) == (bot.id, "lobby")
    await host.admit(bot.id)
    back = await next_event(bot, "welcome")
    assert back.type == "welcome" and back.id == bot.id
    assert not bot.waiting and set(bot.participants) == {host.id, bot.id}
    await bot.say("back in")  # and it can talk again
