"""Who gets in, and who may read what (issue 11: the outside attack's authorization holes).

* A resume token restores only an identity the server still holds, in its current
  role: an old host token is no key to a room protected since.
* The history and the names of a protected room are for those with the right to be
  in it; the room info says only what the pre-join page needs.
* Settings of an emptied room expire unless the room is managed (a token-holding
  host or the operator), so a passer-by cannot hold a room name hostage.
* One address cannot fill the server with rooms; rooms that leave nothing are pruned.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from parley.auth import mint_token
from tests.moderation.harness import Fleet, Net, rest
from tests.support.parley_process import ParleyProcess
from tests.support.ws_client import fetch_json

ADMIN = "an-admin-token-long-enough-0123456789"


def roles(welcome: dict[str, Any] | None) -> dict[str, str]:
    assert welcome is not None
    return {x["name"]: x["role"] for x in welcome["participants"]}


async def get(server: ParleyProcess, path: str, bearer: str | None = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {bearer}"} if bearer is not None else {}
    return await fetch_json(server.url + path, headers=headers)


# -- 1. resume tokens ----------------------------------------------------------------------


async def test_old_host_token_does_not_take_over_a_protected_room(
    mserver: ParleyProcess, net: Net, room: str
) -> None:
    first = await net.join(mserver, room, "First", addr="127.0.3.1")  # host: first in
    real = await net.join(mserver, room, "Real host", addr="127.0.3.2")
    assert roles(first.welcome)["First"] == "host" and first.welcome is not None
    token = first.welcome["resume"]
    await first.send({"type": "leave"})
    await first.wait_closed()
    await real.expect("participant-updated", lambda m: m["participant"]["role"] == "host")
    await real.send({"type": "room-settings", "password": "s3cret", "locked": True, "lobby": True})
    await real.expect("room-updated")

    # The old host token and no password: stopped at the lock, like anyone else.
    await net.refused(mserver, room, "First", "locked", addr="127.0.3.1", resume=token)
    await real.send({"type": "room-settings", "locked": False})
    await real.expect("room-updated", lambda m: m["settings"]["locked"] is False)
    await net.refused(mserver, room, "First", "password_required", addr="127.0.3.1", resume=token)
    # With the password the holder knocks like a newcomer: a new identity, in the lobby.
    knock = await net.send_join(
        mserver, room, "First", addr="127.0.3.1", resume=token, password="s3cret"
    )
    await knock.expect("lobby-wait")
    lobby = await real.expect("lobby")
    assert [w["name"] for w in lobby["waiting"]] == ["First"]
    assert lobby["waiting"][0]["id"] != first.id
    # and the real host is still the only host, with nobody removed.
    await real.roundtrip()
    assert not real.of_type("removed")


async def test_demoted_then_removed_host_comes_back_as_nobody_special(
    mserver: ParleyProcess, net: Net, room: str
) -> None:
    ada = await net.join(mserver, room, "Ada", addr="127.0.3.3")
    bob = await net.join(mserver, room, "Bob", addr="127.0.3.4")
    await ada.send({"type": "set-role", "to": bob.id, "role": "host"})
    await bob.expect("participant-updated", lambda m: m["participant"]["role"] == "host")
    await bob.send({"type": "set-role", "to": ada.id, "role": "participant"})
    await ada.expect("participant-updated", lambda m: m["participant"]["role"] == "participant")
    await bob.send({"type": "remove", "to": ada.id})
    assert await ada.wait_closed() == 4001
    assert ada.welcome is not None
    back = await net.join(mserver, room, "Ada", addr="127.0.3.3", resume=ada.welcome["resume"])
    assert back.welcome is not None and back.welcome["resumed"] is False
    assert back.id != ada.id and roles(back.welcome) == {"Bob": "host", "Ada": "participant"}
    await back.send({"type": "remove", "to": bob.id, "ref": "try"})
    refused = await back.expect("error")
    assert (refused["code"], refused["ref"]) == ("forbidden", "try")


async def test_waiting_in_the_lobby_answers_history_with_its_ref(
    mserver: ParleyProcess, net: Net, room: str
) -> None:
    host = await net.join(mserver, room, "Host", addr="127.0.3.5")
    await host.send({"type": "room-settings", "lobby": True})
    await host.expect("room-updated")
    guest = await net.send_join(mserver, room, "Guest", addr="127.0.3.6")
    await guest.expect("lobby-wait")
    await guest.send({"type": "history", "ref": "h1"})
    err = await guest.expect("error")
    assert (err["code"], err["ref"]) == ("waiting", "h1")


# -- 2. what REST reveals --------------------------------------------------------------------


async def test_protected_room_history_and_names_need_the_right_to_join(
    mserver: ParleyProcess, net: Net, room: str
) -> None:
    host = await net.join(mserver, room, "Host", addr="127.0.3.7")
    guest = await net.join(mserver, room, "Guest", addr="127.0.3.8")
    await host.chat("the launch date is secret")
    await host.send({"type": "chat", "text": "psst", "to": guest.id})
    await host.expect("chat-ack")
    # Open room: anyone could join and read it, so REST shows it.
    status, body = await rest(mserver, f"/api/v1/rooms/{room}/messages")
    assert status == 200 and "the launch date is secret" in [m["text"] for m in body["messages"]]
    await host.send({"type": "room-settings", "password": "pw-of-the-room"})
    await host.expect("room-updated")

    status, body = await rest(mserver, f"/api/v1/rooms/{room}/messages")
    assert status == 401 and body["error"]["code"] == "unauthorized"
    assert "secret" not in str(body)
    status, info = await rest(mserver, f"/api/v1/rooms/{room}")
    assert status == 200
    assert "participants" not in info and "Host" not in str(info)
    assert info["protected"] is True and info["password"] is True
    assert info["participant_count"] == 2 and info["media"] in ("sfu", "mesh")

    # A current member's resume token is the right: public lines and their own private ones.
    assert guest.welcome is not None
    status, body = await get(mserver, f"/api/v1/rooms/{room}/messages", guest.welcome["resume"])
    assert status == 200
    assert [m["text"] for m in body["messages"] if not m.get("system")] == [
        "the launch date is secret",
        "psst",
    ]
    status, info = await get(mserver, f"/api/v1/rooms/{room}", guest.welcome["resume"])
    assert sorted(x["name"] for x in info["participants"]) == ["Guest", "Host"]
    # A forged or foreign token is no right, and neither is a member's once gone.
    assert (await get(mserver, f"/api/v1/rooms/{room}/messages", "forged.token"))[0] == 401
    await guest.send({"type": "leave"})
    await guest.wait_closed()
    status, _ = await get(mserver, f"/api/v1/rooms/{room}/messages", guest.welcome["resume"])
    assert status == 401


async def test_lobby_and_token_rooms_are_protected_too(fleet: Fleet, net: Net, room: str) -> None:
    host_token = mint_token(fleet.jwt_secret, room, "Host", "host", 600)
    host = await net.join(fleet.hs256, room, "Host", token=host_token)
    await host.chat("for invited eyes only")
    status, body = await rest(fleet.hs256, f"/api/v1/rooms/{room}/messages")
    assert status == 401 and "invited" not in str(body)
    status, info = await rest(fleet.hs256, f"/api/v1/rooms/{room}")
    assert info["token_required"] is True and "participants" not in info
    # A join token for this room is the right to read it; one for another room is not.
    reader = mint_token(fleet.jwt_secret, room, "Reader", "participant", 600)
    status, body = await get(fleet.hs256, f"/api/v1/rooms/{room}/messages", reader)
    assert status == 200 and "for invited eyes only" in [m["text"] for m in body["messages"]]
    other = mint_token(fleet.jwt_secret, room + "-x", "Reader", "participant", 600)
    assert (await get(fleet.hs256, f"/api/v1/rooms/{room}/messages", other))[0] == 401


# -- 3. squatting ------------------------------------------------------------------------------


async def test_settings_of_a_passer_by_expire_when_the_room_empties(
    mserver: ParleyProcess, net: Net, room: str
) -> None:
    squatter = await net.join(mserver, room, "Mallory", addr="127.0.3.9")
    await squatter.send({"type": "room-settings", "password": "mine", "max_participants": 1})
    await squatter.expect("room-updated")
    await net.refused(mserver, room, "Alice", "password_required", addr="127.0.3.10")
    await squatter.send({"type": "leave"})
    await squatter.wait_closed()
    alice = await net.join(mserver, room, "Alice", addr="127.0.3.10")
    assert alice.welcome is not None
    assert alice.welcome["room"]["settings"]["has_password"] is False
    assert alice.welcome["room"]["max_participants"] > 1
    assert roles(alice.welcome) == {"Alice": "host"}


async def test_invited_hosts_settings_outlive_the_meeting(
    fleet: Fleet, net: Net, room: str
) -> None:
    host = await net.join(
        fleet.hs256, room, "Host", token=mint_token(fleet.jwt_secret, room, "Host", "host", 600)
    )
    await host.send({"type": "room-settings", "password": "standing-pw", "locked": True})
    await host.expect("room-updated")
    await host.send({"type": "leave"})
    await host.wait_closed()
    guest = mint_token(fleet.jwt_secret, room, "Guest", "participant", 600)
    # A managed room keeps its password; its lock ends with the meeting.
    await net.refused(fleet.hs256, room, "Guest", "password_required", token=guest)
    joined = await net.join(fleet.hs256, room, "Guest", token=guest, password="standing-pw")
    assert joined.welcome is not None
    assert joined.welcome["room"]["settings"]["locked"] is False


async def test_admin_resets_and_manages_a_room(
    mserver_factory: Callable[..., ParleyProcess], net: Net, room: str
) -> None:
    srv = mserver_factory("--admin-token", ADMIN)
    auth = {"Authorization": f"Bearer {ADMIN}"}
    owner = await net.join(srv, room, "Owner")
    await owner.send({"type": "room-settings", "password": "held", "locked": True})
    await owner.expect("room-updated")
    # Reset: the meeting ends and its settings go.
    async with net.session().post(srv.url + f"/api/v1/admin/rooms/{room}/reset") as r:
        assert r.status == 401  # the admin token is required
    async with net.session().post(srv.url + f"/api/v1/admin/rooms/{room}/reset", headers=auth) as r:
        assert r.status == 200 and (await r.json()) == {"reset": room}
    await owner.expect("meeting-ended")
    fresh = await net.join(srv, room, "Fresh")
    assert fresh.welcome is not None
    assert fresh.welcome["room"]["settings"]["has_password"] is False
    await fresh.send({"type": "leave"})
    await fresh.wait_closed()
    # Managed settings, set by the operator, hold across meetings.
    async with net.session().put(
        srv.url + f"/api/v1/admin/rooms/{room}/settings",
        headers=auth,
        json={"password": "operator-pw", "max_participants": 3, "stage": True, "chat": "questions"},
    ) as r:
        assert r.status == 200
        assert (await r.json())["settings"]["has_password"] is True
    await net.refused(srv, room, "Later", "password_required")
    later = await net.join(srv, room, "Later", password="operator-pw")
    await later.send({"type": "leave"})
    await later.wait_closed()
    again = await net.join(srv, room, "Again", password="operator-pw")
    assert again.welcome is not None and again.welcome["room"]["max_participants"] == 3
    stage = again.welcome["room"]["settings"]
    assert (stage["stage"], stage["chat"]) == (True, "questions")  # a town hall, prepared
    async with net.session().put(
        srv.url + f"/api/v1/admin/rooms/{room}/settings", headers=auth, json={"max_participants": 0}
    ) as r:
        assert r.status == 400


# -- 7. room-creation flood ---------------------------------------------------------------------


async def test_one_address_cannot_fill_the_server_with_rooms(
    mserver_factory: Callable[..., ParleyProcess], net: Net, room: str
) -> None:
    srv = mserver_factory("--rooms-per-address", "3", "--max-rooms", "4", "--resume-grace", "60")
    flood = "127.0.4.1"
    for i in range(3):  # join and drop the socket: each room is held by the resume grace
        c = await net.join(srv, f"{room}-{i}", "Flood", addr=flood)
        await c.close()
    await net.refused(srv, f"{room}-3", "Flood", "rate_limited", addr=flood)
    # Someone else still opens rooms; past max_rooms, rooms held only by a grace give way.
    for i in range(3):
        await net.join(srv, f"{room}-other-{i}", "Alice", addr=f"127.0.4.{10 + i}")
    status, body = await rest(srv, "/healthz")
    assert status == 200


async def test_rooms_that_leave_nothing_are_pruned(
    mserver: ParleyProcess, net: Net, room: str
) -> None:
    quiet = await net.join(mserver, room + "-quiet", "Ada", addr="127.0.3.11")
    await quiet.send({"type": "leave"})
    await quiet.wait_closed()
    assert (await rest(mserver, f"/api/v1/rooms/{room}-quiet"))[0] == 404
    talked = await net.join(mserver, room + "-talked", "Ada", addr="127.0.3.11")
    await talked.chat("worth keeping")
    await talked.send({"type": "leave"})
    await talked.wait_closed()
    status, body = await rest(mserver, f"/api/v1/rooms/{room}-talked/messages")
    assert status == 200 and [m["text"] for m in body["messages"]] == ["worth keeping"]
