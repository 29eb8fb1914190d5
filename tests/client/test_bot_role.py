"""The ``bot`` role: given only by a join token (``parley token --role bot``), a participant
for permissions, never made one by ``set-role``, never the heir of the last host."""

from __future__ import annotations

import subprocess
import sys

import pytest

from parley.client import Forbidden, RequestRefused, connect
from tests.client.conftest import SECRET, Meetings, token
from tests.client.test_connect import next_event
from tests.support.parley_process import ParleyProcess, clean_env


def parley_token(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "parley", "token", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(PARLEY_JWT_SECRET=SECRET),
    )


async def test_a_bot_token_from_parley_token_joins_as_a_bot(
    server: ParleyProcess, room: str, meetings: Meetings
) -> None:
    minted = parley_token("--room", room, "--name", "Recorder", "--role", "bot")
    assert minted.returncode == 0, minted.stderr
    ada = await meetings.join(server, room, "Ada")
    bot = await meetings.join(server, room, "ignored", token=minted.stdout.strip(), role="bot")
    assert (bot.role, bot.name) == ("bot", "Recorder")
    joined = await next_event(ada, "participant-joined")
    assert joined.type == "participant-joined" and joined.participant.role == "bot"
    assert ada.participants[bot.id].role == "bot"
    # a participant's rights: chat yes, host actions no
    assert await bot.say("recording") > 0
    with pytest.raises(RequestRefused) as refused:
        await bot.mute(ada.id)
    assert refused.value.code == "forbidden"


async def test_only_a_token_gives_the_bot_role(
    server: ParleyProcess, room: str, meetings: Meetings
) -> None:
    ada = await meetings.join(server, room, "Ada")
    bob = await meetings.join(server, room, "Bob")
    with pytest.raises(RequestRefused) as refused:
        await ada.set_role(bob.id, "bot")
    assert refused.value.code == "forbidden"
    assert ada.participants[bob.id].role == "participant"
    # connect(role="bot") checks what the server gave: without a bot token, a refusal
    with pytest.raises(Forbidden) as wrong:
        await connect(server.url, room, "Mallory", role="bot")
    assert "joined as participant, not bot" in str(wrong.value)
    await ada.say("after")
    assert not any(p.name == "Mallory" for p in ada.participants.values())


async def test_the_last_host_leaving_hands_over_to_a_participant_not_a_bot(
    server: ParleyProcess, room: str, meetings: Meetings
) -> None:
    ada = await meetings.join(server, room, "Ada")
    bot = await meetings.join(server, room, "Bot", token=token(room, "Bot", "bot"))
    bob = await meetings.join(server, room, "Bob")
    await ada.leave()
    while bob.role != "host":
        await next_event(bob, "participant-updated")
    assert bob.participants[bot.id].role == "bot"
    await bob.leave()
    # with only the bot left, nobody is made host
    while bob.id in bot.participants:
        await next_event(bot, "participant-left")
    await bot.say("anyone?")
    assert bot.role == "bot" and [p.role for p in bot.participants.values()] == ["bot"]

