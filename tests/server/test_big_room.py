"""A big room over real WebSockets (issue 16): 150 bots join one room of ``parley serve``.

Past ``--presence-threshold`` the people in the room learn of joins and leaves from
batched ``presence`` frames, not one ``participant-joined`` each; a newcomer's welcome
carries a first page, the count and a cursor, and ``roster`` pages (and searches) the
rest; it carries the latest 20 chat messages, and ``history`` the earlier ones.  Bad
roster requests are refused with a clear error and the socket stays usable.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

from tests.support.parley_process import ParleyProcess
from tests.support.ws_client import Client, Clients

THRESHOLD = 100
BOTS = 150
WAVE = 25


@pytest.fixture(scope="module")
def big_server(parley_server: Callable[..., ParleyProcess]) -> ParleyProcess:
    return parley_server(
        "--media", "mesh", "--max-participants", "1000",
        "--presence-threshold", str(THRESHOLD), "--max-connections-per-address", "400",
    )  # fmt: skip


@pytest.fixture
async def clients() -> AsyncIterator[Clients]:
    """Like the suite's ``clients``, on a session without aiohttp's 100-connection cap."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        c = Clients(session)
        yield c
        await c.close_all()


def known_ids(client: Client) -> set[str]:
    """Who ``client`` knows is in the room, from everything it received in order."""
    ids: set[str] = set()
    for m in client.received:
        if m["type"] == "welcome":
            ids = {p["id"] for p in m["participants"]}
        elif m["type"] == "participant-joined":
            ids.add(m["participant"]["id"])
        elif m["type"] == "participant-left":
            ids.discard(m["id"])
        elif m["type"] == "presence":
            assert not m["truncated"], "a wave of 25 fits one frame"
            ids -= {d["id"] for d in m["left"]}
            ids |= {p["id"] for p in m["joined"]}
    return ids


async def until(cond: Callable[[], bool], what: str, within: float = 15.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not cond():
        assert loop.time() < deadline, f"no {what} within {within} s"
        await asyncio.sleep(0.05)


async def test_150_bots_in_one_room_get_batched_presence_and_page_the_roster(
    clients: Clients, big_server: ParleyProcess, room: str
) -> None:
    host = await clients.join(big_server, room, "Host")
    bots: list[Client] = []

    async def wave(names: list[str]) -> None:
        bots.extend(await asyncio.gather(*(clients.join(big_server, room, n) for n in names)))

    names = [f"Bot {i:03d}" for i in range(BOTS - 1)] + ["Zed Unique"]
    small = THRESHOLD - 1  # the host and these fill the room up to the threshold
    for start in range(0, small, WAVE):
        await wave(names[start : min(start + WAVE, small)])
    for start in range(small, BOTS, WAVE):
        # Each wave waits until the host saw the last one: one wave per presence frame.
        await wave(names[start : start + WAVE])
        await until(lambda: known_ids(host) == {host.id} | {b.id for b in bots}, "presence")

    # Up to the threshold each join came alone; past it, only presence frames.
    assert len(host.of_type("participant-joined")) == THRESHOLD - 1
    frames = host.of_type("presence")
    assert frames and sum(len(f["joined"]) for f in frames) == BOTS + 1 - THRESHOLD
    assert frames[-1]["count"] == BOTS + 1

    # A chat longer than a big room's welcome carries (25 messages, from five bots: each
    # within its own rate limit).
    for i in range(25):
        await bots[i % 5].chat(f"note {i}")

    # A newcomer's welcome: a first page (the host first), the count, and a cursor; the
    # latest 20 messages, and the earlier ones by ``history``.
    late = await clients.join(big_server, room, "Late")
    welcome = late.welcome
    assert welcome is not None
    assert welcome["participant_count"] == BOTS + 2
    first = [p["id"] for p in welcome["participants"]]
    assert first[:2] == [late.id, host.id] and len(first) <= THRESHOLD + 1
    assert [m["text"] for m in welcome["history"]] == [f"note {i}" for i in range(5, 25)]
    assert welcome["history_more"] is True
    await late.send({"type": "history", "before": welcome["history"][0]["id"], "ref": "h"})
    earlier = await late.expect("history", lambda m: m.get("ref") == "h")
    assert [m["text"] for m in earlier["messages"]] == [f"note {i}" for i in range(5)]
    everyone = {host.id, late.id} | {b.id for b in bots}
    seen = set(first)
    after: Any = welcome["roster_next"]
    while after is not None:
        await late.send({"type": "roster", "after": after, "limit": 40, "ref": f"r{after}"})
        page = await late.expect("roster-page", lambda m, a=after: m["ref"] == f"r{a}")
        assert page["count"] == BOTS + 2 and len(page["participants"]) <= 40
        seen |= {p["id"] for p in page["participants"]}
        after = page.get("next")
    assert seen == everyone

    # Search by name: any case, anywhere in the name.
    await late.send({"type": "roster", "q": "zed uni", "ref": "search"})
    found = await late.expect("roster-page", lambda m: m["ref"] == "search")
    assert [p["name"] for p in found["participants"]] == ["Zed Unique"]

    # Bad requests: a clear error each, and the socket keeps working.
    for bad, code in (
        ({"limit": 10_000}, "bad_message"),
        ({"after": "not-a-cursor"}, "bad_message"),
        ({"q": "x" * 65}, "too_long"),
        ({"limit": "all"}, "bad_message"),
    ):
        await late.send({"type": "roster", **bad})
        await late.error(code)
    await late.roundtrip()

    # A leave in the big room reaches the others in a presence frame.
    gone = bots.pop()
    await gone.send({"type": "leave"})
    await host.expect("presence", lambda m: gone.id in {d["id"] for d in m["left"]})
    assert gone.id not in known_ids(host)
