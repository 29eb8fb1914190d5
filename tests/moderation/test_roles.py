"""Roles end to end: host, participant, observer; who may moderate; host hand-over."""

from __future__ import annotations

import asyncio

from tests.moderation.harness import Net, expect_system, quiet, rest, stored_system_lines
from tests.support.parley_process import ParleyProcess


def role_of(welcome: dict, pid: str) -> str:  # type: ignore[type-arg]
    return next(p["role"] for p in welcome["participants"] if p["id"] == pid)


async def test_first_joiner_is_host_second_participant(
    mserver: ParleyProcess, net: Net, room: str
) -> None:
    ada = await net.join(mserver, room, "Ada")
    assert ada.welcome is not None
    assert role_of(ada.welcome, ada.id) == "host"
    bob = await net.join(mserver, room, "Bob")
    assert bob.welcome is not None
    assert role_of(bob.welcome, bob.id) == "participant"
    assert role_of(bob.welcome, ada.id) == "host"
    joined = await ada.expect("participant-joined")
    assert joined["participant"]["id"] == bob.id
    assert joined["participant"]["role"] == "participant"
    # Nobody else is made host along the way.
    await quiet(ada, bob)
    assert not ada.of_type("participant-updated") and not bob.of_type("participant-updated")


async def test_host_makes_another_host(mserver: ParleyProcess, net: Net, room: str) -> None:
    ada = await net.join(mserver, room, "Ada")
    bob = await net.join(mserver, room, "Bob")
    cy = await net.join(mserver, room, "Cy")
    await ada.send({"type": "set-role", "to": bob.id, "role": "host", "ref": "r1"})
    for c in (ada, bob, cy):
        upd = await c.expect("participant-updated", lambda m: m["participant"]["id"] == bob.id)
        assert upd["participant"]["role"] == "host"
    await expect_system([ada, bob, cy], "Ada", "Bob", "host")
    # The new host can moderate now: Bob mutes Cy.
    await cy.send({"type": "media", "mic": True})
    await bob.expect(
        "participant-updated", lambda m: m["participant"]["id"] == cy.id and m["participant"]["mic"]
    )
    await bob.send({"type": "mute", "to": cy.id, "kind": "mic"})
    muted = await cy.expect("muted")
    assert muted["kind"] == "mic" and muted["by"] == bob.id
    # A late joiner sees both hosts in its welcome.
    dan = await net.join(mserver, room, "Dan")
    assert dan.welcome is not None
    assert role_of(dan.welcome, ada.id) == "host"
    assert role_of(dan.welcome, bob.id) == "host"
    assert role_of(dan.welcome, dan.id) == "participant"


async def test_non_host_gets_forbidden_for_every_action_and_nothing_changes(
    mserver: ParleyProcess, net: Net, room: str
) -> None:
    ada = await net.join(mserver, room, "Ada")
    bob = await net.join(mserver, room, "Bob")
    cy = await net.join(mserver, room, "Cy")
    await cy.send({"type": "media", "mic": True, "cam": True})
    await cy.send({"type": "hand", "raised": True})
    for c in (ada, bob, cy):
        await c.expect("participant-updated", lambda m: m["participant"]["hand"])
    await quiet(ada, bob, cy)
    before_received = {id(c): len(c.received) for c in (ada, bob, cy)}

    attempts = [
        {"type": "mute", "to": cy.id, "kind": "mic"},
        {"type": "mute", "to": ada.id, "kind": "cam"},
        {"type": "mute-all", "kind": "mic"},
        {"type": "remove", "to": cy.id},
        {"type": "remove", "to": ada.id, "ban": True},
        {"type": "set-role", "to": bob.id, "role": "host"},
        {"type": "set-role", "to": cy.id, "role": "host"},
        {"type": "set-role", "to": ada.id, "role": "observer"},
        {"type": "lower-hand", "to": cy.id},
        {"type": "room-settings", "locked": True},
        {"type": "room-settings", "lobby": True},
        {"type": "room-settings", "password": "hunter2"},
        {"type": "room-settings", "password": ""},
        {"type": "room-settings", "max_participants": 2},
        {"type": "admit", "to": cy.id},
        {"type": "deny", "to": cy.id},
        {"type": "end-meeting"},
    ]
    for i, msg in enumerate(attempts):
        ref = f"f{i}"
        await bob.send({**msg, "ref": ref})
        err = await bob.expect("error", lambda m, ref=ref: m.get("ref") == ref)
        assert err["code"] == "forbidden", (msg, err)

    # Nothing changed: nobody else heard anything, everyone is still in, unchanged.
    await asyncio.sleep(0.2)
    await quiet(ada, cy)
    for c in (ada, cy):
        new = c.received[before_received[id(c)] :]
        assert [m["type"] for m in new] == ["pong"], new
    new_bob = bob.received[before_received[id(bob)] :]
    assert {m["type"] for m in new_bob} == {"error"}, new_bob
    assert not ada.closed.is_set() and not cy.closed.is_set()
    dan = await net.join(mserver, room, "Dan")  # not locked, no password, no lobby
    w = dan.welcome
    assert w is not None
    assert w["room"]["settings"] == {
        "locked": False,
        "lobby": False,
        "has_password": False,
        "max_participants": 50,  # the default media, the SFU: rooms of 50
    }
    people = {p["id"]: p for p in w["participants"]}
    assert set(people) == {ada.id, bob.id, cy.id, dan.id}
    assert people[ada.id]["role"] == "host"
    assert people[bob.id]["role"] == "participant"
    assert people[cy.id]["role"] == "participant"
    assert people[cy.id]["mic"] is True and people[cy.id]["cam"] is True
    assert people[cy.id]["hand"] is True
    assert await stored_system_lines(mserver, room) == []
    status, info = await rest(mserver, f"/api/v1/rooms/{room}")
    assert status == 200 and info["participant_count"] == 4


async def test_last_host_leaving_hands_host_to_longest_present(
    mserver: ParleyProcess, net: Net, room: str
) -> None:
    ada = await net.join(mserver, room, "Ada")
    bob = await net.join(mserver, room, "Bob")
    await asyncio.sleep(0.01)  # distinct joined_at
    cy = await net.join(mserver, room, "Cy")
    await ada.send({"type": "leave"})
    assert await ada.wait_closed() == 1000
    for c in (bob, cy):
        left = await c.expect("participant-left")
        assert left["id"] == ada.id and left["reason"] == "left"
        upd = await c.expect("participant-updated")
        assert upd["participant"]["id"] == bob.id
        assert upd["participant"]["role"] == "host"
    await expect_system([bob, cy], "Bob", "is now a host")
    # Bob really is host now; Cy still is not.
    await bob.send({"type": "room-settings", "locked": False, "ref": "ok"})
    await bob.expect("room-updated")
    await cy.send({"type": "room-settings", "locked": True, "ref": "no"})
    assert (await cy.expect("error", lambda m: m.get("ref") == "no"))["code"] == "forbidden"


async def test_hand_over_skips_observers(mserver: ParleyProcess, net: Net, room: str) -> None:
    ada = await net.join(mserver, room, "Ada")
    obs = await net.join(mserver, room, "Obs")
    await asyncio.sleep(0.01)
    cy = await net.join(mserver, room, "Cy")
    await ada.send({"type": "set-role", "to": obs.id, "role": "observer"})
    await cy.expect("participant-updated", lambda m: m["participant"]["role"] == "observer")
    await ada.send({"type": "leave"})
    upd = await cy.expect("participant-updated", lambda m: m["participant"]["role"] == "host")
    assert upd["participant"]["id"] == cy.id  # the observer, although older, is skipped


async def test_cannot_demote_the_last_host(mserver: ParleyProcess, net: Net, room: str) -> None:
    ada = await net.join(mserver, room, "Ada")
    await net.join(mserver, room, "Bob")
    await ada.send({"type": "set-role", "to": ada.id, "role": "participant", "ref": "d"})
    assert (await ada.expect("error", lambda m: m.get("ref") == "d"))["code"] == "forbidden"


async def test_observer_cannot_publish_media(mserver: ParleyProcess, net: Net, room: str) -> None:
    ada = await net.join(mserver, room, "Ada")
    bob = await net.join(mserver, room, "Bob")
    await bob.send({"type": "media", "mic": True, "cam": True})
    await ada.expect(
        "participant-updated", lambda m: m["participant"]["cam"] and m["participant"]["mic"]
    )
    await ada.send({"type": "set-role", "to": bob.id, "role": "observer"})
    for c in (ada, bob):
        upd = await c.expect(
            "participant-updated", lambda m: m["participant"]["role"] == "observer"
        )
        p = upd["participant"]
        assert p["id"] == bob.id
        assert (p["mic"], p["cam"], p["screen"]) == (False, False, False)
    await expect_system([ada, bob], "Ada", "made Bob an observer")
    await quiet(ada, bob)
    n_updates = len(ada.of_type("participant-updated"))
    for i, media in enumerate(
        [{"mic": True}, {"cam": True}, {"screen": True}, {"mic": False, "cam": True}]
    ):
        await bob.send({"type": "media", **media, "ref": f"m{i}"})
        err = await bob.expect("error", lambda m, i=i: m.get("ref") == f"m{i}")
        assert err["code"] == "forbidden"
    await quiet(ada)
    assert len(ada.of_type("participant-updated")) == n_updates  # nothing went out
    # Turning things off is fine, and an observer can still chat and raise a hand.
    await bob.send({"type": "media", "mic": False})
    await ada.expect("participant-updated", lambda m: m["participant"]["id"] == bob.id)
    await bob.chat("I can still talk in chat")
    await bob.send({"type": "hand", "raised": True})
    await ada.expect("participant-updated", lambda m: m["participant"]["hand"])
    # Back to participant: media allowed again.
    await ada.send({"type": "set-role", "to": bob.id, "role": "participant"})
    await bob.expect("participant-updated", lambda m: m["participant"]["role"] == "participant")
    await bob.send({"type": "media", "mic": True})
    await ada.expect(
        "participant-updated",
        lambda m: m["participant"]["id"] == bob.id and m["participant"]["mic"] is True,
    )
