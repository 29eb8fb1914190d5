"""Policy timers in a cluster: every node runs them, but each room is acted for by one
node only, and that node knows when the meeting started even if another node opened it."""

from __future__ import annotations

import asyncio
import textwrap
import time
from pathlib import Path

import pytest

from tests.cluster.harness import Cluster, unique_room
from tests.support.parley_process import ParleyProcess
from tests.support.ws_client import Client, Clients

pytestmark = pytest.mark.timeout(120)

POLICY = """
from parley.policy import every

said = set()

@every(0.3)
async def once_per_room(actions):
    for r in actions.rooms():
        # Once both are in: before Bob, node pol-b acts for the room (only Ada, on pol-b),
        # and a policy's memory is its node's, so pol-a would say it again after him.
        if r.room not in said and len(actions.participants(r.room)) >= 2:
            said.add(r.room)
            await actions.say(r.room, f"started at {r.opened_at}")
"""


async def test_a_timer_acts_once_per_room_cluster_wide_and_knows_when_it_started(
    cluster: Cluster, clients: Clients, tmp_path: Path
) -> None:
    policy = tmp_path / "policy.py"
    policy.write_text(textwrap.dedent(POLICY))
    flags = ("--policy", str(policy), "--media", "mesh")
    b = cluster.node("pol-b", *flags).wait_ready()
    a = cluster.node("pol-a", *flags).wait_ready()
    room = unique_room("timers")
    before = int(time.time() * 1000)
    # Ada opens the room on node pol-b; Bob joins on pol-a, the lowest node id: from then
    # on pol-a acts for the room, though it did not open it.
    ada = await clients.join(b, room, "Ada")
    opened = int(time.time() * 1000)
    bob = await clients.join(a, room, "Bob")
    note = await bob.expect(
        "chat", lambda m: m["message"].get("system") and "started at" in m["message"]["text"], 20
    )
    started = int(note["message"]["text"].rsplit(" ", 1)[1])
    assert before <= started <= opened  # when Ada opened it, as node pol-b saw it
    # Ada on the other node hears it too (through the broker: slower on a busy machine).
    await ada.expect(
        "chat", lambda m: m["message"].get("system") and "started at" in m["message"]["text"], 20
    )
    await asyncio.sleep(1.5)  # five more timer rounds on each node
    await ada.roundtrip()
    said = [
        m["message"]["text"]
        for m in ada.of_type("chat")
        if m["message"].get("system") and "started at" in m["message"]["text"]
    ]
    assert said == [note["message"]["text"]]  # once, not once per node


SLOW_JOIN = """
import asyncio

async def on_join(join):
    # The first joiner of a room is held longer than the period (3 s) in which a node
    # stops following the rooms it serves nobody in, and longer than a room lock lives
    # unless renewed (5 s): an outside check that is slow.
    if not join.participants:
        await asyncio.sleep(6)
"""


async def test_a_join_held_by_a_slow_hook_is_the_one_host_and_hears_of_the_next(
    cluster: Cluster, clients: Clients, tmp_path: Path
) -> None:
    """Regressions, while one admission waits seconds for the hook: (1) its node had
    nobody in the room yet, so its sweep unsubscribed from the room: the first joiner got
    a welcome, then nothing from the other node (the second's join, his chat); (2) the
    room lock expired under it, and a join on the other node went ahead on an empty room:
    two hosts."""
    policy = tmp_path / "slow_join.py"
    policy.write_text(textwrap.dedent(SLOW_JOIN))
    flags = ("--policy", str(policy), "--policy-budget", "10000", "--media", "mesh")
    a = cluster.node("slow-a", *flags).wait_ready()
    b = cluster.node("slow-b", *flags).wait_ready()
    room = unique_room("slowjoin")

    async def join(node: ParleyProcess, name: str) -> Client:
        c = await clients.join(node, room, name, expect="")
        c.welcome = await c.expect("welcome", within=45)
        return c

    first = asyncio.create_task(join(a, "Ada"))
    await asyncio.sleep(1)  # Ada's admission has the lock and waits for the hook
    bob = await join(b, "Bob")
    ada = await first
    roles = {
        p["name"]: p["role"] for c in (ada, bob) for p in c.welcome["participants"]  # type: ignore[index]
        if p["id"] == c.id
    }  # fmt: skip
    assert roles == {"Ada": "host", "Bob": "participant"}
    assert [p["name"] for p in ada.welcome["participants"]] == ["Ada"]  # type: ignore[index]
    assert sorted(p["name"] for p in bob.welcome["participants"]) == ["Ada", "Bob"]  # type: ignore[index]
    joined = await ada.expect("participant-joined", within=15)
    assert joined["participant"]["id"] == bob.id
    await bob.send({"type": "chat", "text": "can you hear me?"})
    said = await ada.expect("chat", lambda m: not m["message"].get("system"), 15)
    assert said["message"]["text"] == "can you hear me?"
