"""Mute, mute-all, remove (with and without a ban) and lock, end to end."""

from __future__ import annotations

from typing import Any

from tests.moderation.harness import Net, expect_system, quiet, rest, stored_system_lines
from tests.support.parley_process import ParleyProcess
from tests.support.ws_client import Client

BANNED_ADDR = "127.0.1.2"  # the banned client's own loopback address


def is_update(pid: str, **state: Any) -> Any:
    def pred(m: dict[str, Any]) -> bool:
        p = m["participant"]
        return bool(p["id"] == pid and all(p[k] == v for k, v in state.items()))

    return pred


async def media_on(c: Client, watchers: list[Client], **media: bool) -> None:
    await c.send({"type": "media", **media})
    for w in watchers:
        await w.expect("participant-updated", is_update(c.id, **media))


# -- mute ---------------------------------------------------------------------


async def test_host_mutes_a_participants_mic(mserver: ParleyProcess, net: Net, room: str) -> None:
    ada = await net.join(mserver, room, "Ada")
    bob = await net.join(mserver, room, "Bob")
    cy = await net.join(mserver, room, "Cy")
    everyone = [ada, bob, cy]
    await media_on(bob, everyone, mic=True, cam=True)
    await ada.send({"type": "mute", "to": bob.id, "kind": "mic"})
    muted = await bob.expect("muted")
    assert muted == {"type": "muted", "kind": "mic", "by": ada.id}
    for c in everyone:
        await c.expect("participant-updated", is_update(bob.id, mic=False, cam=True))
    await expect_system(everyone, "Ada", "Bob", "microphone")
    await quiet(ada, cy)
    assert not ada.of_type("muted") and not cy.of_type("muted")  # only the target is told
    # Only the person can turn it back on, with media.
    await media_on(bob, everyone, mic=True)


async def test_host_mutes_camera_and_screen(mserver: ParleyProcess, net: Net, room: str) -> None:
    ada = await net.join(mserver, room, "Ada")
    bob = await net.join(mserver, room, "Bob")
    await media_on(bob, [ada, bob], mic=True, cam=True, screen=True)
    await ada.send({"type": "mute", "to": bob.id, "kind": "cam"})
    assert (await bob.expect("muted"))["kind"] == "cam"
    await ada.expect("participant-updated", is_update(bob.id, mic=True, cam=False, screen=True))
    await expect_system([ada, bob], "Bob", "camera")
    await ada.send({"type": "mute", "to": bob.id, "kind": "screen"})
    assert (await bob.expect("muted"))["kind"] == "screen"
    await ada.expect("participant-updated", is_update(bob.id, mic=True, cam=False, screen=False))
    await expect_system([ada, bob], "Bob", "screen share")
    await media_on(bob, [ada], cam=True, screen=True)


async def test_mute_unknown_participant(mserver: ParleyProcess, net: Net, room: str) -> None:
    ada = await net.join(mserver, room, "Ada")
    await ada.send({"type": "mute", "to": "p_nobody", "kind": "mic", "ref": "x"})
    assert (await ada.expect("error"))["code"] == "no_such_participant"
    await ada.send({"type": "mute", "to": "p_nobody", "kind": "ears", "ref": "y"})
    assert (await ada.expect("error"))["code"] == "bad_message"


async def test_mute_all(mserver: ParleyProcess, net: Net, room: str) -> None:
    ada = await net.join(mserver, room, "Ada")
    bob = await net.join(mserver, room, "Bob")
    cy = await net.join(mserver, room, "Cy")
    everyone = [ada, bob, cy]
    for c in everyone:
        await media_on(c, everyone, mic=True)
    await ada.send({"type": "mute-all", "kind": "mic"})
    for target in (bob, cy):
        assert (await target.expect("muted")) == {"type": "muted", "kind": "mic", "by": ada.id}
        for c in everyone:
            await c.expect("participant-updated", is_update(target.id, mic=False))
    await expect_system(everyone, "Ada", "everyone", "microphone")
    await quiet(*everyone)
    assert not ada.of_type("muted")  # hosts are left alone
    # The host's own mic stayed on; a newcomer sees who is muted.
    dan = await net.join(mserver, room, "Dan")
    assert dan.welcome is not None
    mics = {p["id"]: p["mic"] for p in dan.welcome["participants"]}
    assert mics == {ada.id: True, bob.id: False, cy.id: False, dan.id: False}
    # Each can turn their own mic back on.
    await media_on(cy, everyone, mic=True)


# -- remove ---------------------------------------------------------------------


async def test_remove_without_ban_can_come_back(
    mserver: ParleyProcess, net: Net, room: str
) -> None:
    ada = await net.join(mserver, room, "Ada")
    bob = await net.join(mserver, room, "Bob")
    cy = await net.join(mserver, room, "Cy")
    await ada.send({"type": "remove", "to": bob.id})
    removed = await bob.expect("removed")
    assert removed == {"type": "removed", "by": ada.id, "ban": False}
    assert await bob.wait_closed() == 4001
    for c in (ada, cy):
        left = await c.expect("participant-left")
        assert left == {"type": "participant-left", "id": bob.id, "reason": "removed"}
    await expect_system([ada, cy], "Ada", "removed", "Bob")
    assert not bob.of_type("participant-left")
    status, info = await rest(mserver, f"/api/v1/rooms/{room}")
    assert status == 200 and bob.id not in {p["id"] for p in info["participants"]}
    # Not barred: Bob joins again (fresh).  His old resume token restores nothing: the
    # server no longer holds that identity, so it is a fresh join too, with a new id.
    again = await net.join(mserver, room, "Bob")
    assert again.welcome is not None and again.id != bob.id
    await ada.expect("participant-joined", lambda m: m["participant"]["id"] == again.id)
    assert bob.welcome is not None
    resumed = await net.join(mserver, room, "Bob", resume=bob.welcome["resume"])
    assert resumed.welcome is not None and resumed.welcome["resumed"] is False
    assert resumed.id not in (bob.id, again.id)


async def test_remove_with_ban_bars_identity_and_address(
    mserver: ParleyProcess, net: Net, room: str
) -> None:
    ada = await net.join(mserver, room, "Ada")
    cy = await net.join(mserver, room, "Cy")
    bob = await net.join(mserver, room, "Bob", addr=BANNED_ADDR)
    assert bob.welcome is not None
    await ada.send({"type": "remove", "to": bob.id, "ban": True})
    assert await bob.expect("removed") == {"type": "removed", "by": ada.id, "ban": True}
    assert await bob.wait_closed() == 4001
    for c in (ada, cy):
        left = await c.expect("participant-left")
        assert left == {"type": "participant-left", "id": bob.id, "reason": "removed"}
    await expect_system([ada, cy], "Ada", "removed and barred", "Bob")
    # The same identity cannot come back by resuming, even from another address ...
    await net.refused(
        mserver, room, "Bob", "banned", addr="127.0.0.1", resume=bob.welcome["resume"]
    )
    # ... nor a new connection from the same address.
    await net.refused(mserver, room, "Robert", "banned", addr=BANNED_ADDR)
    # Others from other addresses are unaffected, and the ban is for this meeting only.
    dan = await net.join(mserver, room, "Dan")
    assert dan.welcome is not None
    elsewhere = await net.join(mserver, room + "-other", "Bob", addr=BANNED_ADDR)
    assert elsewhere.welcome is not None
    await quiet(ada)
    joined = [m["participant"]["name"] for m in ada.of_type("participant-joined")]
    assert joined == ["Cy", "Bob", "Dan"]  # the refused attempts never got in


async def test_remove_unknown_participant(mserver: ParleyProcess, net: Net, room: str) -> None:
    ada = await net.join(mserver, room, "Ada")
    await ada.send({"type": "remove", "to": "p_doesnotexist0000", "ref": "r"})
    assert (await ada.expect("error"))["code"] == "no_such_participant"


# -- lock -------------------------------------------------------------------------


async def test_lock_refuses_new_joins_and_unlock(
    mserver: ParleyProcess, net: Net, room: str
) -> None:
    ada = await net.join(mserver, room, "Ada")
    bob = await net.join(mserver, room, "Bob")
    await ada.send({"type": "room-settings", "locked": True})
    for c in (ada, bob):
        upd = await c.expect("room-updated")
        assert upd["settings"] == {
            "locked": True,
            "lobby": False,
            "has_password": False,
            "max_participants": 50,  # the default media, the SFU: rooms of 50
        }
    await expect_system([ada, bob], "Ada", "locked the room")
    cy = await net.refused(mserver, room, "Cy", "locked")
    # Existing members are unaffected.
    await bob.chat("still here")
    await ada.expect("chat", lambda m: m["message"]["text"] == "still here")
    await bob.send({"type": "media", "mic": True})
    await ada.expect("participant-updated", is_update(bob.id, mic=True))
    # A member whose socket dropped may still resume into the locked room.
    assert bob.welcome is not None
    await bob.close()
    bob2 = await net.join(mserver, room, "Bob", resume=bob.welcome["resume"])
    assert bob2.welcome is not None and bob2.welcome["resumed"] is True
    # Unlock: the refused client can now join on the same connection.
    await ada.send({"type": "room-settings", "locked": False})
    upd = await bob2.expect("room-updated")
    assert upd["settings"]["locked"] is False
    await expect_system([ada, bob2], "Ada", "unlocked the room")
    await cy.send({"type": "join", "room": room, "name": "Cy", "v": 1})
    w = await cy.expect("welcome")
    assert w["room"]["settings"]["locked"] is False


async def test_max_participants_setting(mserver: ParleyProcess, net: Net, room: str) -> None:
    ada = await net.join(mserver, room, "Ada")
    bob = await net.join(mserver, room, "Bob")
    await ada.send({"type": "room-settings", "max_participants": 2})
    upd = await bob.expect("room-updated")
    assert upd["settings"]["max_participants"] == 2
    await expect_system([ada, bob], "limited the room to 2")
    await net.refused(mserver, room, "Cy", "room_full")
    await ada.send({"type": "room-settings", "max_participants": 99, "ref": "big"})
    assert (await ada.expect("error", lambda m: m.get("ref") == "big"))["code"] == "bad_message"


async def test_every_moderation_action_is_a_stored_system_line(
    mserver: ParleyProcess, net: Net, room: str
) -> None:
    """Each action yields one system chat line for everyone, also in the REST history."""
    ada = await net.join(mserver, room, "Ada")
    bob = await net.join(mserver, room, "Bob")
    cy = await net.join(mserver, room, "Cy")
    dan = await net.join(mserver, room, "Dan")
    everyone = [ada, bob, cy, dan]
    await cy.send({"type": "hand", "raised": True})
    await ada.expect("participant-updated", is_update(cy.id, hand=True))
    steps: list[tuple[dict[str, Any], tuple[str, ...]]] = [
        ({"type": "mute", "to": bob.id, "kind": "mic"}, ("Ada", "Bob", "microphone")),
        ({"type": "mute-all", "kind": "cam"}, ("Ada", "everyone", "camera")),
        ({"type": "set-role", "to": bob.id, "role": "host"}, ("Ada", "made Bob a host")),
        ({"type": "lower-hand", "to": cy.id}, ("Ada", "lowered", "Cy")),
        ({"type": "room-settings", "locked": True}, ("Ada", "locked")),
        ({"type": "room-settings", "locked": False}, ("Ada", "unlocked")),
        ({"type": "room-settings", "password": "pw"}, ("Ada", "set a room password")),
        ({"type": "room-settings", "password": ""}, ("Ada", "removed the room password")),
        ({"type": "room-settings", "lobby": True}, ("Ada", "lobby on")),
        ({"type": "room-settings", "lobby": False}, ("Ada", "lobby off")),
        ({"type": "room-settings", "max_participants": 5}, ("Ada", "limited")),
    ]
    for msg, fragments in steps:
        await ada.send(msg)
        await expect_system(everyone, *fragments)
    await ada.send({"type": "remove", "to": dan.id})
    await expect_system([ada, bob, cy], "Ada", "removed", "Dan")
    await ada.send({"type": "end-meeting"})
    await expect_system([ada, bob, cy], "Ada", "ended the meeting")
    stored = await stored_system_lines(mserver, room)
    assert len(stored) == len(steps) + 2, stored
    for (_msg, fragments), line in zip(steps, stored, strict=False):
        assert all(f in line for f in fragments), (fragments, line)
    assert "removed" in stored[-2] and "ended the meeting" in stored[-1]
    # The REST history marks them as system lines with the server as sender.
    status, body = await rest(mserver, f"/api/v1/rooms/{room}/messages?limit=200")
    assert status == 200
    for m in body["messages"]:
        assert m["system"] is True and m["sender"] == "system"
