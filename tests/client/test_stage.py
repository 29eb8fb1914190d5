"""The SDK's stage helpers: a bot host turns stage mode and questions on, invites a raised
hand to the stage and moves it back (docs/sdk.md, "Stage and audience")."""

from __future__ import annotations

import pytest

from parley.client import RequestRefused
from tests.client.conftest import Meetings
from tests.client.test_connect import chat_saying, next_event
from tests.support.parley_process import ParleyProcess


async def test_a_bot_host_runs_a_stage(
    server: ParleyProcess, room: str, meetings: Meetings
) -> None:
    host = await meetings.join(server, room, "Host")
    await host.update_settings(stage=True, chat="questions")
    aud = await meetings.join(server, room, "Aud")
    assert aud.role == "observer"  # a joiner enters the audience
    with pytest.raises(RequestRefused) as refused:
        await aud.invite_to_stage(aud.id)
    assert refused.value.code == "forbidden"
    await aud.say("When is lunch?")
    question = await chat_saying(host, "When is lunch?")
    assert question.message.to == "stage"

    await aud.raise_hand()
    while not host.participants[aud.id].hand:
        await next_event(host, "participant-updated")
    await host.invite_to_stage(aud.id)
    while aud.role != "participant":
        await next_event(aud, "participant-updated")
    await aud.set_media(mic=True)  # on stage: allowed
    await host.move_to_audience(aud.id)
    while aud.role != "observer":
        await next_event(aud, "participant-updated")
    with pytest.raises(RequestRefused):
        await aud.set_media(mic=True)
