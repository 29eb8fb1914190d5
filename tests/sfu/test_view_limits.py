"""``view`` messages name the subscriber's own video slots only (issue 11, item 8).

A client that named ever-new mids in ``{"sfu":"view"}`` grew the server's per-peer
state without bound (125 -> 188 MB in 20 s within the rate limits); a view must name
slots of its subscribe connection, anything else is refused and nothing is stored.
"""

from __future__ import annotations

from typing import Any

import pytest

from parley.sfu.peer import SfuRoom

pytestmark = pytest.mark.timeout(60)


async def subscribed(room: SfuRoom, pid: str) -> list[str]:
    """Ask for a subscribe offer; the mids of its video slots."""
    replies = await room.handle_signal(pid, {"sfu": "subscribe"})
    assert [r["sfu"] for r in replies] == ["subscribe-offer"], replies
    mids, kind = [], ""
    for line in replies[0]["sdp"].splitlines():
        if line.startswith("m="):
            kind = line[2:].split()[0]
        elif line.startswith("a=mid:") and kind == "video":
            mids.append(line[6:].strip())
    return mids


async def test_view_of_unknown_mids_is_refused_and_stores_nothing(loopback_only: None) -> None:
    room = SfuRoom(lambda pid, payload: None, last_n=3, audio_slots=2)
    try:
        mids = await subscribed(room, "bob")
        assert len(mids) == 3
        peer = room.peers["bob"]

        # the real slots: accepted
        ok = await room.handle_signal(
            "bob", {"sfu": "view", "slots": {m: {"w": 320, "h": 180} for m in mids}}
        )
        assert ok == []

        # an attacker's stream of fresh mids, 256 per message
        replies: list[dict[str, Any]] = []
        for batch in range(40):
            slots = {f"x{batch}-{i}": {"w": 1, "h": 1} for i in range(256)}
            replies += await room.handle_signal("bob", {"sfu": "view", "slots": slots})
        assert len(replies) == 40
        assert all(r["sfu"] == "error" and "unknown" in r["message"] for r in replies), replies[:2]
        assert "x0-0" in replies[0]["message"]
        # what the server holds for this peer: one size per real slot, no more
        assert set(peer._views) <= set(mids)
        assert peer._views[mids[0]] == (320, 180)

        # a view mixing a real slot and an unknown one changes nothing
        bad = await room.handle_signal(
            "bob", {"sfu": "view", "slots": {mids[0]: {"w": 10, "h": 10}, "nope": {"w": 1}}}
        )
        assert bad[0]["sfu"] == "error"
        assert peer._views[mids[0]] == (320, 180)

        # audio slots are no video slots
        audio = await room.handle_signal("bob", {"sfu": "view", "slots": {"0": {"w": 1, "h": 1}}})
        assert audio[0]["sfu"] == "error"
    finally:
        await room.close()


async def test_view_without_a_subscribe_connection_is_refused(loopback_only: None) -> None:
    room = SfuRoom(lambda pid, payload: None, last_n=2, audio_slots=1)
    try:
        replies = await room.handle_signal("ann", {"sfu": "view", "slots": {"1": {"w": 1, "h": 1}}})
        assert replies[0]["sfu"] == "error" and "subscribe" in replies[0]["message"]
        assert room.peers["ann"]._views == {}
    finally:
        await room.close()
