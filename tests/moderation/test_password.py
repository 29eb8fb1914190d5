"""Room passwords end to end: required, wrong, right, throttled per address, cleared.

The shared server runs with ``--max-join-failures 3``.  Wrong guesses are made
from loopback addresses of their own, so the throttle never hits other tests.
"""

from __future__ import annotations

import asyncio
import json

from tests.moderation.harness import Net, expect_system, rest
from tests.support.parley_process import ParleyProcess
from tests.support.ws_client import Client

PASSWORD = "correct horse battery staple"
HASH_MARKERS = ("$argon2", "argon2id", "password_hash")


def assert_no_secret(clients: list[Client], *extra: str) -> None:
    """Neither the hash nor the plain password appears in anything the server sent."""
    for c in clients:
        for frame in c.raw:
            for needle in (*HASH_MARKERS, PASSWORD, *extra):
                assert needle not in frame, f"{needle!r} leaked in {frame[:300]}"


async def set_password(host: Client, others: list[Client], password: str) -> None:
    await host.send({"type": "room-settings", "password": password})
    for c in [host, *others]:
        upd = await c.expect("room-updated")
        assert upd["settings"]["has_password"] is (password != "")


async def test_password_required_wrong_right_and_cleared(
    mserver: ParleyProcess, net: Net, room: str
) -> None:
    ada = await net.join(mserver, room, "Ada")
    bob = await net.join(mserver, room, "Bob")
    assert ada.welcome is not None
    assert ada.welcome["room"]["settings"]["has_password"] is False
    await set_password(ada, [bob], PASSWORD)
    await expect_system([ada, bob], "Ada", "set a room password")

    missing = await net.refused(mserver, room, "Cy", "password_required")
    await net.refused(mserver, room, "Cy", "bad_password", addr="127.0.1.10", password="nope")
    await net.refused(mserver, room, "Cy", "bad_password", addr="127.0.1.10", password="")
    cy = await net.join(mserver, room, "Cy", password=PASSWORD)
    assert cy.welcome is not None
    assert cy.welcome["room"]["settings"]["has_password"] is True
    await ada.expect("participant-joined", lambda m: m["participant"]["id"] == cy.id)
    # Members already inside are not asked again (a resume skips the check too).
    assert bob.welcome is not None
    await bob.close()
    bob2 = await net.join(mserver, room, "Bob", resume=bob.welcome["resume"])
    assert bob2.welcome is not None and bob2.welcome["resumed"] is True

    # Clearing the password: "" removes it.
    await set_password(ada, [bob2, cy], "")
    await expect_system([ada, bob2, cy], "Ada", "removed the room password")
    await missing.send({"type": "join", "room": room, "name": "Cy2", "v": 1})
    w = await missing.expect("welcome")
    assert w["room"]["settings"]["has_password"] is False

    # The hash never leaves the server: not in any frame, not over REST.
    assert_no_secret([ada, bob, bob2, cy, missing])
    for path in (f"/api/v1/rooms/{room}", f"/api/v1/rooms/{room}/messages?limit=200"):
        status, body = await rest(mserver, path)
        assert status == 200
        text = json.dumps(body)
        for needle in (*HASH_MARKERS, PASSWORD):
            assert needle not in text


async def test_wrong_guesses_are_throttled_per_address(
    mserver: ParleyProcess, net: Net, room: str
) -> None:
    guesser = "127.0.0.3"
    ada = await net.join(mserver, room, "Ada")
    await set_password(ada, [], PASSWORD)
    for i in range(3):  # --max-join-failures 3
        await net.refused(mserver, room, "Eve", "bad_password", addr=guesser, password=f"guess{i}")
    # Now even the right password is refused from that address ...
    throttled = await net.refused(
        mserver, room, "Eve", "rate_limited", addr=guesser, password=PASSWORD
    )
    await throttled.roundtrip()  # the connection itself stays usable
    await net.refused(mserver, room, "Eve", "rate_limited", addr=guesser, password="guess9")
    # ... while another address is not affected.
    ok = await net.join(mserver, room, "Fay", addr="127.0.1.11", password=PASSWORD)
    assert ok.welcome is not None
    # A join without a password costs no attempt and is answered as usual.
    await net.refused(mserver, room, "Eve", "password_required", addr=guesser)
    assert_no_secret([ada, ok, throttled])


async def test_password_too_long_is_refused(mserver: ParleyProcess, net: Net, room: str) -> None:
    ada = await net.join(mserver, room, "Ada")
    await ada.send({"type": "room-settings", "password": "x" * 129, "ref": "long"})
    assert (await ada.expect("error", lambda m: m.get("ref") == "long"))["code"] == "bad_message"
    await ada.send({"type": "room-settings", "password": "x" * 128, "ref": "ok"})
    assert (await ada.expect("room-updated"))["settings"]["has_password"] is True


async def test_parallel_guesses_do_not_bypass_the_throttle(
    mserver: ParleyProcess, net: Net, room: str
) -> None:
    """Guesses sent at the same moment on many connections count against the same budget."""
    attacker = "127.0.1.4"
    ada = await net.join(mserver, room, "Ada")
    await set_password(ada, [], PASSWORD)
    conns = [await net.connect(mserver, attacker) for _ in range(12)]
    await asyncio.gather(
        *(
            c.send({"type": "join", "room": room, "name": "Eve", "v": 1, "password": f"g{i}"})
            for i, c in enumerate(conns)
        )
    )
    codes = [(await c.expect("error"))["code"] for c in conns]
    assert set(codes) <= {"bad_password", "rate_limited"}, codes
    assert codes.count("bad_password") <= 3, (
        f"{codes.count('bad_password')} password guesses were checked from one address "
        f"(limit 3): {codes}"
    )
