"""Room settings set by a host survive a server restart (SIGTERM, same data dir)."""

from __future__ import annotations

from tests.moderation.harness import Fleet, Net

PASSWORD = "persisted-pw"


async def test_settings_survive_restart(fleet: Fleet, net: Net) -> None:
    srv = fleet.plain
    guarded, locked = "guarded", "locked-room"

    ada = await net.join(srv, guarded, "Ada")
    await ada.send(
        {"type": "room-settings", "password": PASSWORD, "lobby": True, "max_participants": 4}
    )
    upd = await ada.expect("room-updated")
    assert upd["settings"] == {
        "locked": False,
        "lobby": True,
        "has_password": True,
        "max_participants": 4,
    }
    bob = await net.join(srv, locked, "Bob")
    await bob.send({"type": "room-settings", "locked": True})
    assert (await bob.expect("room-updated"))["settings"]["locked"] is True

    assert srv.stop() == 0
    await ada.wait_closed()
    await bob.wait_closed()
    assert ada.close_code == 1001 and bob.close_code == 1001
    srv.start()

    # The password is still required, and still checked.
    await net.refused(srv, guarded, "Cy", "password_required")
    await net.refused(srv, guarded, "Cy", "bad_password", addr="127.0.1.20", password="nope")
    cy = await net.join(srv, guarded, "Cy", password=PASSWORD)
    assert cy.welcome is not None
    assert cy.welcome["room"]["settings"] == {
        "locked": False,
        "lobby": True,
        "has_password": True,
        "max_participants": 4,
    }
    assert cy.welcome["room"]["max_participants"] == 4
    assert cy.welcome["participants"][0]["role"] == "host"  # first in after the restart
    # The lobby is still on: the next joiner (with the password) waits.
    dan = await net.send_join(srv, guarded, "Dan", password=PASSWORD)
    assert (await dan.expect("lobby-wait"))["room"] == guarded
    lobby = await cy.expect("lobby")
    assert [w["name"] for w in lobby["waiting"]] == ["Dan"]
    # A host change is saved again: clear the password, restart, and it stays cleared.
    await cy.send({"type": "room-settings", "password": "", "lobby": False})
    assert (await cy.expect("room-updated"))["settings"]["has_password"] is False
    await dan.expect("welcome")  # lobby off admitted Dan

    # The locked room stays locked (checked before anyone may enter).
    await net.refused(srv, locked, "Eve", "locked")

    assert srv.stop() == 0
    srv.start()
    fay = await net.join(srv, guarded, "Fay")
    assert fay.welcome is not None
    assert fay.welcome["room"]["settings"] == {
        "locked": False,
        "lobby": False,
        "has_password": False,
        "max_participants": 4,
    }
