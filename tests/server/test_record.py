"""The meeting record against a real server: export, search, deletion, retention, access."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import aiohttp

from tests.cluster.harness import eventually
from tests.server.harness import get_json
from tests.support.parley_process import ParleyProcess
from tests.support.ws_client import Clients


async def _get(server: ParleyProcess, path: str, bearer: str | None = None) -> tuple[int, Any, Any]:
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    async with aiohttp.ClientSession() as s, s.get(server.url + path, headers=headers) as r:
        return r.status, r.headers, await r.read()


async def test_export_in_three_formats_with_private_lines_for_their_two_only(
    server: ParleyProcess, clients: Clients, room: str
) -> None:
    ada, bob = await clients.join_all(room, (server, "Ada"), (server, "Bob"))
    carol = await clients.join(server, room, "Carol")
    await ada.chat("<script>alert(1)</script> & *bold* [link](javascript:x)")
    await ada.chat("just for Bob", to=bob.id)
    ada_token = ada.welcome["resume"]
    carol_token = carol.welcome["resume"]

    status, headers, body = await _get(
        server, f"/api/v1/rooms/{room}/export?format=json", ada_token
    )
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    assert f'filename="parley-chat-{room}-' in headers["Content-Disposition"]
    doc = json.loads(body)
    assert doc["room"] == room
    texts = [m["text"] for m in doc["messages"]]
    assert "just for Bob" in texts
    # The record has attendance: who joined, as system entries.
    kinds = {m.get("kind") for m in doc["messages"] if m.get("system")}
    assert "joined" in kinds
    assert any(m["text"] == "Carol joined" for m in doc["messages"])
    private = next(m for m in doc["messages"] if m["text"] == "just for Bob")
    assert private["to"] == bob.id and private["to_name"] == "Bob"

    # Carol reads the same record, without the private line.
    status, _, body = await _get(server, f"/api/v1/rooms/{room}/export?format=md", carol_token)
    md = body.decode()
    assert status == 200 and "just for Bob" not in md
    assert "\\<script\\>" in md and "\\*bold\\*" in md

    status, headers, body = await _get(
        server, f"/api/v1/rooms/{room}/export?format=html", carol_token
    )
    page = body.decode()
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt; &amp;" in page
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"


async def test_export_and_search_follow_the_history_access_rule(
    server: ParleyProcess, clients: Clients, room: str
) -> None:
    host = await clients.join(server, room, "Host")
    await host.chat("the launch date is secret")
    # Open room: readable by anyone, as joining would show the same.
    status, body = await get_json(server, f"/api/v1/rooms/{room}/messages/search?q=launch")
    assert status == 200 and [m["text"] for m in body["messages"]] == ["the launch date is secret"]
    await host.send({"type": "room-settings", "password": "pw-of-the-room"})
    await host.expect("room-updated")
    for path in (f"/api/v1/rooms/{room}/export", f"/api/v1/rooms/{room}/messages/search?q=launch"):
        status, _, body = await _get(server, path)
        assert status == 401 and b"secret" not in body
        status, _, body = await _get(server, path, "forged.token")
        assert status == 401 and b"secret" not in body
        status, _, body = await _get(server, path, host.welcome["resume"])
        assert status == 200 and b"secret" in body
    status, body = await get_json(server, "/api/v1/rooms/no-such-room-x/export")
    assert status == 404 and body["error"]["code"] == "not_found"


async def test_search_bad_input_is_a_typed_error_or_a_literal_search(
    server: ParleyProcess, clients: Clients, room: str
) -> None:
    ada = await clients.join(server, room, "Ada")
    await ada.chat('the "plan" (draft) is NEAR done -- text:final *')
    base = f"/api/v1/rooms/{room}/messages/search"
    status, body = await get_json(server, f"{base}?q={'x' * 10_000}")
    assert status == 400 and body["error"]["code"] == "too_long"
    status, body = await get_json(server, f"{base}?q=")
    assert status == 400 and body["error"]["code"] == "empty"
    status, body = await get_json(server, f"{base}?q=plan&limit=abc")
    assert status == 400 and body["error"]["code"] == "bad_request"
    for q in ['"plan', "NEAR(plan draft)", "pla*", "(plan OR", "-plan", "text:plan", "plan^"]:
        status, body = await get_json(server, f"{base}?q={quote(q)}")
        # Operators are taken as words: the message has them all, or the search finds none.
        assert status == 200, (q, body)
        assert len(body["messages"]) <= 1
    status, body = await get_json(server, f"{base}?q={quote('near PLAN')}")
    assert status == 200 and len(body["messages"]) == 1
    status, body = await get_json(server, f"/api/v1/rooms/{room}/export?format=exe")
    assert status == 400 and body["error"]["code"] == "bad_request"


async def test_deleting_a_message_updates_everyone_and_the_record(
    server: ParleyProcess, clients: Clients, room: str
) -> None:
    host, bob, carol = await clients.join_all(
        room, (server, "Host"), (server, "Bob"), (server, "Carol")
    )
    mine = await bob.chat("bob's regrettable budget remark")
    other = await carol.chat("carol's budget line")
    private = await carol.chat("carol to bob", to=bob.id)
    # Nobody deletes what is not theirs (the host only public ones, nobody unseen ones).
    await carol.send({"type": "delete-message", "id": mine["id"], "ref": "d1"})
    err = await carol.expect("error")
    assert err["code"] == "forbidden" and err["ref"] == "d1"
    await host.send({"type": "delete-message", "id": private["id"], "ref": "d2"})
    err = await host.expect("error")
    assert err["code"] == "no_such_message"
    await host.send({"type": "delete-message", "id": 987654321, "ref": "d3"})
    assert (await host.expect("error"))["code"] == "no_such_message"
    # The author deletes theirs; everyone sees the tombstone.
    await bob.send({"type": "delete-message", "id": mine["id"]})
    for c in (host, bob, carol):
        gone = await c.expect("message-deleted")
        assert gone["id"] == mine["id"] and gone["by"] == bob.id
    # A host deletes someone's public message.
    await host.send({"type": "delete-message", "id": other["id"]})
    for c in (host, bob, carol):
        assert (await c.expect("message-deleted"))["id"] == other["id"]
    # Gone from history, search and export.
    status, body = await get_json(server, f"/api/v1/rooms/{room}/messages")
    assert [m["text"] for m in body["messages"] if not m.get("system")] == []
    status, body = await get_json(server, f"/api/v1/rooms/{room}/messages/search?q=budget")
    assert status == 200 and body["messages"] == []
    status, _, export = await _get(server, f"/api/v1/rooms/{room}/export?format=md")
    assert b"budget" not in export
    # A private deletion reaches only its two participants.
    await carol.send({"type": "delete-message", "id": private["id"]})
    assert (await bob.expect("message-deleted"))["id"] == private["id"]
    assert (await carol.expect("message-deleted"))["id"] == private["id"]
    await host.roundtrip()
    assert [m["id"] for m in host.of_type("message-deleted")] == [mine["id"], other["id"]]


async def test_only_hosts_set_retention_and_it_is_noted(
    server: ParleyProcess, clients: Clients, room: str
) -> None:
    host, bob = await clients.join_all(room, (server, "Host"), (server, "Bob"))
    await bob.send({"type": "set-retention", "days": 3, "ref": "r1"})
    assert (await bob.expect("error"))["code"] == "forbidden"
    await host.send({"type": "set-retention", "days": 0, "ref": "r2"})
    assert (await host.expect("error"))["code"] == "bad_message"
    await host.send({"type": "set-retention", "days": 7})
    note = await bob.expect("chat", lambda m: m["message"].get("system", False))
    assert note["message"]["text"] == "Host set the chat history to be kept 7 days"
    assert note["message"]["kind"] == "note"
    # The settings dialog reads it back (the same right as reading the history).
    path = f"/api/v1/rooms/{room}/retention"
    assert await get_json(server, path) == (200, {"days": 7, "default_days": 0})
    await host.send({"type": "set-retention", "days": None})
    note = await bob.expect("chat", lambda m: "server's retention" in m["message"]["text"])
    assert await get_json(server, path) == (200, {"days": None, "default_days": 0})
    await host.send({"type": "room-settings", "password": "pw-of-the-room"})
    await host.expect("room-updated")
    status, _, _ = await _get(server, path)
    assert status == 401
    status, _, body = await _get(server, path, bob.welcome["resume"])
    assert status == 200 and json.loads(body) == {"days": None, "default_days": 0}


async def test_history_retention_deletes_old_messages_at_start(
    parley_server: Callable[..., ParleyProcess], clients: Clients, room: str
) -> None:
    srv = parley_server()
    ada = await clients.join(srv, room, "Ada")
    await ada.chat("from last month")
    await ada.chat("from today")
    await ada.send({"type": "leave"})
    await ada.wait_closed()
    srv.stop()
    # Age one message by 40 days, as if the server had been running since.
    db = sqlite3.connect(srv.data_dir / "parley.db")
    with db:
        db.execute("UPDATE messages SET ts = ts - 40 * 86400000 WHERE text = 'from last month'")
    db.close()
    again = parley_server("--history-retention-days", "30", data_dir=srv.data_dir, port=srv.port)

    async def swept() -> bool:  # the first sweep runs in the background once started
        status, body = await get_json(again, f"/api/v1/rooms/{room}/messages")
        assert status == 200
        return [m["text"] for m in body["messages"]] == ["from today"]

    await eventually(swept, 15, "the message older than 30 days is deleted")
    status, body = await get_json(again, f"/api/v1/rooms/{room}/retention")
    assert (status, body) == (200, {"days": None, "default_days": 30})
    status, body = await get_json(again, f"/api/v1/rooms/{room}/messages/search?q=month")
    assert status == 200 and body["messages"] == []
