"""The SDK in a big room: presence frames keep ``meeting.participants`` up to date and
come out as ``Presence`` events (a server whose presence threshold makes any room big)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from parley.client import events
from tests.client.conftest import Meetings
from tests.support.parley_process import ParleyProcess


async def presence_event(meeting: object, within: float = 10.0) -> events.Presence:
    async with asyncio.timeout(within):
        async for event in meeting:  # type: ignore[attr-defined]
            if event.type == "presence":
                assert isinstance(event, events.Presence)
                return event
    raise AssertionError("the meeting ended before a presence event")


async def test_presence_frames_update_the_participants(
    parley_server: Callable[..., ParleyProcess], meetings: Meetings, room: str
) -> None:
    srv = parley_server("--presence-threshold", "1")
    ada = await meetings.join(srv, room, "Ada")
    bob = await meetings.join(srv, room, "Bob")
    joined = await presence_event(ada)
    assert [p.name for p in joined.joined] == ["Bob"] and joined.count == 2
    assert {p.name for p in ada.participants.values()} == {"Ada", "Bob"}
    bob_id = bob.id
    await bob.leave()
    left = await presence_event(ada)
    assert [d.id for d in left.left] == [bob_id] and left.count == 1
    assert [p.name for p in ada.participants.values()] == ["Ada"]
