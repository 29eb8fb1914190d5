"""Webhooks end to end: a real server, a real receiver, real failures.

What a receiver relies on: every event signed with the shared secret, ids strictly
increasing, delivered in order at least once (after errors, a receiver that hangs, and a
SIGKILL of the server), and the log readable afterwards to catch up.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest

from parley.core.events import EVENT_TYPES
from tests.support.loopback_netns import loopback_namespace
from tests.support.parley_process import ParleyProcess, clean_env
from tests.support.processes import free_port
from tests.support.webhook_receiver import Receiver
from tests.support.ws_client import Clients, fetch_json
from tests.webhooks.conftest import ADMIN, SECRET

pytestmark = pytest.mark.timeout(180)

ALL = ",".join(EVENT_TYPES)


def strictly_increasing(ids: list[int]) -> bool:
    return all(a < b for a, b in zip(ids, ids[1:], strict=False))


async def test_a_meeting_is_told_signed_and_in_order(
    serve: Callable[..., ParleyProcess], receiver: Receiver, clients: Clients, room: str
) -> None:
    srv = serve(receiver.url, args=("--webhook-events", ALL))
    ada = await clients.join(srv, room, "Ada")
    bob = await clients.join(srv, room, "Bob")
    await ada.send({"type": "set-role", "to": bob.id, "role": "host"})
    await bob.expect("participant-updated")
    ack = await bob.chat("hello, hooks")
    await bob.send({"type": "leave"})
    await ada.expect("participant-left")
    await ada.send({"type": "leave"})
    events = await receiver.wait_types(
        "room.started",
        "participant.joined",
        "participant.joined",
        "role.changed",
        "chat.message",
        "participant.left",
        "participant.left",
        "room.finished",
    )
    assert [e["type"] for e in events] == [
        "room.started",
        "participant.joined",
        "participant.joined",
        "role.changed",
        "chat.message",
        "participant.left",
        "participant.left",
        "room.finished",
    ]
    assert {e["room"] for e in events} == {room}
    assert strictly_increasing([e["id"] for e in events])
    for r in receiver.requests:
        assert receiver.signed(r), r.headers
        assert r.headers["X-Parley-Event-Id"] == str(r.event["id"])
        assert r.headers["Content-Type"] == "application/json"
        assert set(r.event) == {"id", "type", "room", "at", "data"}
        assert isinstance(r.event["at"], int) and r.event["at"] > 1_700_000_000_000
    joined = [e["data"]["participant"] for e in events if e["type"] == "participant.joined"]
    assert [(p["id"], p["name"]) for p in joined] == [(ada.id, "Ada"), (bob.id, "Bob")]
    role = next(e["data"] for e in events if e["type"] == "role.changed")
    assert role["participant"]["id"] == bob.id and role["role"] == "host"
    assert role["by"]["id"] == ada.id
    chat = next(e["data"]["message"] for e in events if e["type"] == "chat.message")
    assert (chat["id"], chat["text"], chat["sender"]) == (ack["id"], "hello, hooks", bob.id)
    left = [e["data"] for e in events if e["type"] == "participant.left"]
    assert [(d["participant"]["id"], d["reason"]) for d in left] == [
        (bob.id, "left"),
        (ada.id, "left"),
    ]

    # The same log over REST, with the admin token only.
    status, page = await fetch_json(f"{srv.url}/api/v1/events?after=0&limit=1000")
    assert status == 401
    auth = {"Authorization": f"Bearer {ADMIN}"}
    status, page = await fetch_json(f"{srv.url}/api/v1/events?after=0&limit=1000", headers=auth)
    assert status == 200
    assert [e["id"] for e in page["events"]] == [e["id"] for e in events]
    assert page["events"] == events
    second = events[1]["id"]
    status, page = await fetch_json(f"{srv.url}/api/v1/events?after={second}&limit=2", headers=auth)
    assert [e["id"] for e in page["events"]] == [e["id"] for e in events[2:4]]
    assert page["next"] == events[3]["id"]
    for bad in ("after=-1", "after=x", "limit=0", "limit=1001", "after=" + "9" * 30):
        status, body = await fetch_json(f"{srv.url}/api/v1/events?{bad}", headers=auth)
        assert status == 400 and body["error"]["code"] == "bad_request", (bad, body)


async def test_chat_is_opt_in_and_the_end_of_a_meeting_is_told(
    serve: Callable[..., ParleyProcess], receiver: Receiver, clients: Clients, room: str
) -> None:
    srv = serve(receiver.url)  # the default event types: no chat.message
    ada = await clients.join(srv, room, "Ada")
    bob = await clients.join(srv, room, "Bob")
    await ada.chat("not for the webhook")
    await ada.send({"type": "end-meeting"})
    events = await receiver.wait_types("meeting.ended", "room.finished")
    types = [e["type"] for e in events]
    assert "chat.message" not in types
    ended = next(e["data"] for e in events if e["type"] == "meeting.ended")
    assert ended["by"] == {"id": ada.id, "name": "Ada"}
    left = {
        e["data"]["participant"]["id"]: e["data"]["reason"]
        for e in events
        if e["type"] == "participant.left"
    }
    assert left == {ada.id: "ended", bob.id: "ended"}


async def test_errors_and_a_hanging_receiver_are_retried_and_nothing_is_lost(
    serve: Callable[..., ParleyProcess], receiver: Receiver, clients: Clients, room: str
) -> None:
    receiver.script = [500, 503, "hang", 404]
    srv = serve(receiver.url, args=("--webhook-timeout", "1"))
    ada = await clients.join(srv, room, "Ada")
    # The meeting does not wait for the receiver: people keep joining and talking.
    bob = await clients.join(srv, room, "Bob")
    await bob.chat("still here")
    events = await receiver.wait_types("room.started", "participant.joined", "participant.joined")
    ids = [e["id"] for e in events]
    assert strictly_increasing(ids)
    assert ids == sorted(set(ids))
    first = receiver.requests[0].event["id"]
    # The first event was tried five times (500, 503, no answer, 404, then 200), same body.
    tries = [r for r in receiver.requests if r.event["id"] == first]
    assert [r.status for r in tries] == [500, 503, 0, 404, 200]
    assert len({r.body for r in tries}) == 1
    log = srv.log_path.read_text()
    assert "event" in log and "not delivered: HTTP 500" in log
    assert "not delivered: no answer within 1 s" in log
    # The URL's query may hold a secret: the server's lines never show it (the harness
    # writes the command line at the top of the log).
    server_lines = [line for line in log.splitlines() if "parley." in line]
    assert not [line for line in server_lines if "token=in-the-query" in line]
    assert ada.id in {e["data"]["participant"]["id"] for e in events[1:]}


async def test_delivery_resumes_after_sigkill_and_the_log_fills_the_gap(
    serve: Callable[..., ParleyProcess], receiver: Receiver, clients: Clients, room: str
) -> None:
    srv = serve(receiver.url)
    ada = await clients.join(srv, room, "Ada")
    await receiver.wait_types("room.started", "participant.joined")
    # The receiver goes down; joins go on and are logged; then the server is killed.
    receiver.script = [503] * 10_000
    names = [f"P{i}" for i in range(5)]
    for name in names:
        await clients.join(srv, room, name)
    assert srv.proc is not None
    srv.proc.send_signal(signal.SIGKILL)
    assert await asyncio.to_thread(srv.proc.wait, 15) == -signal.SIGKILL
    receiver.script = []
    await asyncio.to_thread(srv.start)
    # After the restart: every join, delivered, none skipped (the resumed participants'
    # leave is told when their resume grace runs out, later).
    events = await receiver.wait_for(
        lambda evs: {e["data"].get("participant", {}).get("name") for e in evs} >= set(names),
        "the joins made while the receiver was down",
    )
    joined = [e for e in events if e["type"] == "participant.joined"]
    assert [e["data"]["participant"]["name"] for e in joined] == ["Ada", *names]
    ids = sorted({e["id"] for e in events})
    assert ids == list(range(ids[0], ids[0] + len(ids)))  # no gap
    auth = {"Authorization": f"Bearer {ADMIN}"}
    status, page = await fetch_json(f"{srv.url}/api/v1/events?after=0", headers=auth)
    assert status == 200
    assert [e["id"] for e in page["events"]][: len(ids)] == ids
    del ada


async def test_an_unreachable_receiver_is_logged_and_the_meeting_goes_on(
    serve: Callable[..., ParleyProcess], receiver: Receiver, clients: Clients, room: str
) -> None:
    await receiver.close()  # nobody listens on that port any more
    srv = serve(receiver.url, args=("--webhook-events", ALL))
    ada = await clients.join(srv, room, "Ada")
    bob = await clients.join(srv, room, "Bob")
    ack = await ada.chat("the meeting goes on")
    await bob.expect("chat")
    assert ack["type"] == "chat-ack"
    deadline = asyncio.get_running_loop().time() + 20
    while "cannot connect" not in srv.log_path.read_text():
        assert asyncio.get_running_loop().time() < deadline, srv.log(2000)
        await asyncio.sleep(0.2)
    auth = {"Authorization": f"Bearer {ADMIN}"}
    status, page = await fetch_json(f"{srv.url}/api/v1/events", headers=auth)
    assert status == 200
    assert "chat.message" in [e["type"] for e in page["events"]]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--webhook-url", "http://127.0.0.1:9/x"), "--webhook-url needs --webhook-secret"),
        (
            ("--webhook-url", "ftp://example/x", "--webhook-secret", "s"),
            "use an http:// or https://",
        ),
        (("--webhook-events", "room.started,room.exploded"), "unknown event type room.exploded"),
        (("--event-retention-days", "0"), "must be more than 0"),
    ],
)
def test_bad_webhook_settings_stop_the_start_with_one_line(
    tmp_path: Path, args: tuple[str, ...], says: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "parley", "serve", "--data-dir", str(tmp_path), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(),
    )
    assert done.returncode != 0
    assert says in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_a_receiver_name_that_does_not_resolve_is_logged_and_the_meeting_goes_on(
    tmp_path: Path,
) -> None:
    # The server runs where only lo exists: the lookup fails without a packet leaving.
    with loopback_namespace() as ns:
        srv = ParleyProcess(
            port=ns.call(free_port),
            data_dir=tmp_path / "data",
            log_path=tmp_path / "server.log",
            args=(
                "--webhook-url",
                "http://hooks.parley-test.invalid/events",
                "--webhook-secret",
                SECRET,
            ),
            ns=ns,
        )
        try:
            srv.start()

            async def meeting() -> tuple[str, str]:
                async with aiohttp.ClientSession() as session:
                    c = Clients(session)
                    ada = await c.join(srv, "unresolvable", "Ada")
                    bob = await c.join(srv, "unresolvable", "Bob")
                    ack = await ada.chat("the meeting goes on")
                    got = await bob.expect("chat")
                    await c.close_all()
                    return ack["type"], got["message"]["text"]

            assert ns.call(asyncio.run, meeting(), timeout=60) == (
                "chat-ack",
                "the meeting goes on",
            )
            deadline = time.monotonic() + 20
            line = ""
            while not line:
                assert time.monotonic() < deadline, srv.log(3000)
                found = [
                    ln for ln in srv.log_path.read_text().splitlines() if "cannot connect" in ln
                ]
                line = found[0] if found else ""
                time.sleep(0.2)
            assert "http://hooks.parley-test.invalid/events" in line
            assert "event 1 (room.started) not delivered" in line
            assert srv.alive()
        finally:
            srv.stop()
