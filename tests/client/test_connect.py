"""Joining with the SDK: state, typed events, requests answered or refused."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from parley.client import Meeting, RequestRefused, connect, events
from parley.core import protocol
from tests.client.conftest import Meetings
from tests.support.parley_process import ParleyProcess


async def next_event(meeting: Meeting, kind: str, within: float = 10.0) -> events.Event:
    """The next event of type ``kind`` (others are skipped)."""
    async with asyncio.timeout(within):
        async for event in meeting:
            if event.type == kind:
                return event
    raise AssertionError(f"the meeting ended before a {kind!r} event")


async def chat_saying(meeting: Meeting, text: str, within: float = 10.0) -> events.Chat:
    """The next chat event with ``text`` (other events are skipped)."""
    async with asyncio.timeout(within):
        async for event in meeting:
            if event.type == "chat" and event.text == text:
                return event
    raise AssertionError(f"the meeting ended before a chat saying {text!r}")


async def test_the_readme_snippet_echoes_chat(server: ParleyProcess, room: str) -> None:
    ready = asyncio.Event()

    async def echo() -> None:
        async with connect(server.url, room=room, name="EchoBot") as meeting:
            ready.set()  # (what was said before its welcome is its history, not events)
            async for event in meeting:
                if event.type == "chat" and event.sender != meeting.id:
                    await meeting.say(f"echo: {event.text}")

    bot = asyncio.create_task(echo())
    try:
        await asyncio.wait_for(ready.wait(), 30)
        async with connect(server.url, room, "Ada") as ada:
            await ada.say("hello")
            seen = []
            while len(seen) < 2:
                if bot.done():  # the bot failed: say why
                    bot.result()
                chat = await next_event(ada, "chat")
                assert isinstance(chat, events.Chat)
                seen.append((chat.name, chat.text))
            assert seen == [("Ada", "hello"), ("EchoBot", "echo: hello")]
            assert not bot.done()
    finally:
        bot.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await bot


async def test_state_events_and_history(
    server: ParleyProcess, room: str, meetings: Meetings
) -> None:
    ada = await meetings.join(server, room, "Ada")
    assert ada.id.startswith("p_") and ada.role == "host"  # the first one in
    assert list(ada.participants) == [ada.id] and ada.history == []
    first = await ada.say("one")
    bob = await meetings.join(server, room, "Bob")
    assert bob.role == "participant"
    assert [m.text for m in bob.history] == ["one"] and bob.history[0].id == first
    assert set(bob.participants) == {ada.id, bob.id}

    joined = await next_event(ada, "participant-joined")
    assert isinstance(joined, protocol.ParticipantJoined)  # the protocol's own struct
    assert joined.participant.name == "Bob" and bob.id in ada.participants

    await bob.raise_hand()
    updated = await next_event(ada, "participant-updated")
    assert isinstance(updated, events.ParticipantUpdated) and updated.participant.hand
    assert ada.participants[bob.id].hand

    await bob.react("🎉")
    reaction = await next_event(ada, "reaction")
    assert isinstance(reaction, events.Reaction)
    assert (reaction.sender, reaction.emoji) == (bob.id, "🎉")

    await bob.say("psst", to=ada.id)
    chat = await next_event(ada, "chat")
    assert isinstance(chat, events.Chat) and isinstance(chat, protocol.ChatOut)
    assert (chat.sender, chat.text, chat.to, chat.message.text) == (bob.id, "psst", ada.id, "psst")

    await bob.leave()
    left = await next_event(ada, "participant-left")
    assert isinstance(left, events.ParticipantLeft) and left.id == bob.id
    assert bob.id not in ada.participants
    with pytest.raises(StopAsyncIteration):
        await anext(bob)


async def test_refused_requests_raise_with_their_code(
    server: ParleyProcess, room: str, meetings: Meetings
) -> None:
    ada = await meetings.join(server, room, "Ada")
    bob = await meetings.join(server, room, "Bob")
    with pytest.raises(RequestRefused) as refused:
        await bob.mute(ada.id)
    assert refused.value.code == "forbidden"
    with pytest.raises(RequestRefused) as refused:
        await bob.say("")
    assert refused.value.code == "empty"
    with pytest.raises(RequestRefused) as refused:
        await bob.react("💩")
    assert refused.value.code == "bad_reaction"
    # the meeting goes on, and a host's request succeeds
    await ada.mute(bob.id)
    muted = await next_event(bob, "muted")
    assert isinstance(muted, events.Muted) and muted.by == ada.id
    assert await bob.say("still here") > 0


async def test_host_ends_the_meeting(server: ParleyProcess, room: str, meetings: Meetings) -> None:
    ada = await meetings.join(server, room, "Ada")
    bob = await meetings.join(server, room, "Bob")
    await ada.end()
    ended = await next_event(bob, "meeting-ended")
    assert isinstance(ended, events.MeetingEnded) and ended.by == ada.id
    with pytest.raises(StopAsyncIteration):
        await anext(bob)
    assert bob.closed and bob.close_reason == "the meeting ended"


async def test_deleting_messages(server: ParleyProcess, room: str, meetings: Meetings) -> None:
    ada = await meetings.join(server, room, "Ada")  # the host
    bob = await meetings.join(server, room, "Bob")
    mine = await bob.say("typo")
    other = await ada.say("agenda")
    await chat_saying(bob, "agenda")

    # Bob deletes his own line: everyone is told, and it leaves the SDK's history.
    await bob.delete_message(mine)
    deleted = await next_event(ada, "message-deleted")
    assert isinstance(deleted, events.MessageDeleted)
    assert (deleted.id, deleted.room, deleted.by) == (mine, room, bob.id)
    assert [m.text for m in ada.history] == ["agenda"]
    assert [m.text for m in bob.history] == ["agenda"]
    # ... and from the stored history a newcomer gets.
    cy = await meetings.join(server, room, "Cy")
    assert [m.text for m in cy.history] == ["agenda"]

    # Bob may not delete the host's line; nor anything twice.
    with pytest.raises(RequestRefused) as refused:
        await bob.delete_message(other)
    assert refused.value.code == "forbidden"
    with pytest.raises(RequestRefused) as refused:
        await bob.delete_message(mine)
    assert refused.value.code == "no_such_message"
    # A host may delete anyone's public line.
    await ada.delete_message(other)
    assert (await next_event(cy, "message-deleted")).id == other  # type: ignore[union-attr]
    assert ada.history == [] and cy.history == []
