"""The real server over a real WebSocket: join, presence, chat, history, signal, REST."""

from __future__ import annotations

import asyncio

from tests.server.harness import get_json
from tests.support.parley_process import ParleyProcess
from tests.support.ws_client import Clients, assert_clean


async def test_healthz(server: ParleyProcess) -> None:
    status, body = await get_json(server, "/healthz")
    assert status == 200
    assert body["status"] == "ok"
    assert body["version"] == "0.1.0"
    assert isinstance(body["uptime"], (int, float)) and body["uptime"] >= 0


async def test_join_welcome_fields(server: ParleyProcess, clients: Clients, room: str) -> None:
    ada = await clients.join(server, room, "  Ada  ")
    w = ada.welcome
    assert w is not None
    assert w["type"] == "welcome"
    assert w["v"] == 1
    assert isinstance(w["id"], str) and w["id"].startswith("p_") and len(w["id"]) == 18
    assert isinstance(w["resume"], str) and w["resume"]
    assert w["resumed"] is False
    assert w["room"]["name"] == room
    assert w["room"]["media"] == "sfu"  # the default: the server forwards media
    assert w["room"]["max_participants"] == 50  # rooms of an SFU can be bigger than a mesh
    assert isinstance(w["room"]["created_at"], int)
    assert w["room"]["created_at"] > 1_600_000_000_000
    assert len(w["participants"]) == 1
    me = w["participants"][0]
    assert {k: me[k] for k in ("id", "name", "mic", "cam", "screen", "hand", "hand_at")} == {
        "id": w["id"],
        "name": "Ada",  # trimmed
        "mic": False,
        "cam": False,
        "screen": False,
        "hand": False,
        "hand_at": None,
    }
    assert isinstance(me["joined_at"], int) and me["joined_at"] > 1_600_000_000_000
    assert w["history"] == [] and w["history_more"] is False
    assert w["ice_servers"] == []
    assert w["limits"] == {
        "chat_max_chars": 4000,
        "display_name_max": 64,
        "max_frame_bytes": 65536,
        "max_participants": 50,
    }
    await ada.roundtrip()


async def test_media_mode_sfu_by_default_mesh_on_request(
    server: ParleyProcess, mesh_server: ParleyProcess, clients: Clients, room: str
) -> None:
    """Plain ``parley serve`` forwards media through its SFU; ``--media mesh`` opts out.

    Both say so in ``welcome.room.media`` (what the client's badge shows) and in the
    room's REST info; the room size follows the mode (50 for the SFU, 6 for a mesh).
    """
    for srv, media, size in ((server, "sfu", 50), (mesh_server, "mesh", 6)):
        ada = await clients.join(srv, room, "Ada")
        assert ada.welcome is not None
        assert ada.welcome["room"]["media"] == media, srv.args
        assert ada.welcome["room"]["max_participants"] == size, srv.args
        assert ada.welcome["limits"]["max_participants"] == size, srv.args
        status, info = await get_json(srv, f"/api/v1/rooms/{room}")
        assert status == 200 and info["media"] == media, srv.args
    assert server.args == () and mesh_server.args == ("--media", "mesh")


async def test_presence_joined_updated_left(
    server: ParleyProcess, clients: Clients, room: str
) -> None:
    ada = await clients.join(server, room, "Ada")
    bob = await clients.join(server, room, "Bob")
    assert bob.welcome is not None
    assert {p["name"] for p in bob.welcome["participants"]} == {"Ada", "Bob"}

    joined = await ada.expect("participant-joined")
    assert joined["participant"]["id"] == bob.id
    assert joined["participant"]["name"] == "Bob"

    # media: partial update, everyone (sender included) sees the whole state
    await bob.send({"type": "media", "mic": True})
    for c in (ada, bob):
        upd = await c.expect("participant-updated")
        assert upd["participant"]["id"] == bob.id
        assert (upd["participant"]["mic"], upd["participant"]["cam"]) == (True, False)
    await bob.send({"type": "media", "cam": True, "screen": True})
    upd = await ada.expect("participant-updated")
    assert upd["participant"]["mic"] is True  # unchanged when absent
    assert upd["participant"]["cam"] is True and upd["participant"]["screen"] is True

    # hand
    await bob.send({"type": "hand", "raised": True})
    upd = await ada.expect("participant-updated")
    assert upd["participant"]["hand"] is True and isinstance(upd["participant"]["hand_at"], int)
    await bob.send({"type": "hand", "raised": False})
    upd = await ada.expect("participant-updated")
    assert upd["participant"]["hand"] is False and upd["participant"]["hand_at"] is None

    # rename (trimmed)
    await bob.send({"type": "rename", "name": "  Robert "})
    upd = await ada.expect("participant-updated")
    assert upd["participant"]["name"] == "Robert"
    status, info = await get_json(server, f"/api/v1/rooms/{room}")
    assert status == 200
    assert info["participant_count"] == 2
    assert sorted(p["name"] for p in info["participants"]) == ["Ada", "Robert"]

    # leave
    await bob.send({"type": "leave"})
    assert await bob.wait_closed() == 1000
    left = await ada.expect("participant-left")
    assert left == {"type": "participant-left", "id": bob.id, "reason": "left"}
    status, info = await get_json(server, f"/api/v1/rooms/{room}")
    assert info["participant_count"] == 1


async def test_chat_ack_then_fanout_to_everyone(
    server: ParleyProcess, clients: Clients, room: str
) -> None:
    ada = await clients.join(server, room, "Ada")
    bob = await clients.join(server, room, "Bob")
    await ada.send({"type": "chat", "text": "hello 🌍", "ref": "c1"})
    ack = await ada.expect("chat-ack")
    assert ack["ref"] == "c1"
    assert isinstance(ack["id"], int) and isinstance(ack["ts"], int)
    mine = await ada.expect("chat")
    theirs = await bob.expect("chat")
    assert ada.received.index(ack) < ada.received.index(mine)  # ack before the fan-out
    expected = {
        "id": ack["id"],
        "ts": ack["ts"],
        "room": room,
        "sender": ada.id,
        "name": "Ada",
        "text": "hello 🌍",
    }
    assert mine["message"] == expected
    assert theirs["message"] == expected
    # stored before it was acknowledged
    status, page = await get_json(server, f"/api/v1/rooms/{room}/messages")
    assert status == 200
    assert page["messages"] == [expected] and page["more"] is False


async def test_private_chat_only_sender_and_recipient(
    server: ParleyProcess, clients: Clients, room: str
) -> None:
    ada = await clients.join(server, room, "Ada")
    bob = await clients.join(server, room, "Bob")
    cat = await clients.join(server, room, "Cat")
    ack = await ada.chat("psst", to=bob.id)
    for c in (ada, bob):
        m = await c.expect("chat")
        assert m["message"]["id"] == ack["id"]
        assert m["message"]["to"] == bob.id and m["message"]["text"] == "psst"
    # a public one afterwards: Cat sees that one but never the private one
    pub = await ada.chat("everyone")
    m = await cat.expect("chat")
    assert m["message"]["id"] == pub["id"]
    assert all(x["message"]["id"] != ack["id"] for x in cat.received if x["type"] == "chat")
    # REST history is public only
    _, page = await get_json(server, f"/api/v1/rooms/{room}/messages")
    assert [m["id"] for m in page["messages"]] == [pub["id"]]
    # WS history includes the private messages this participant sent/received
    for c, sees_private in ((ada, True), (bob, True), (cat, False)):
        await c.send({"type": "history", "ref": "h"})
        h = await c.expect("history")
        ids = [m["id"] for m in h["messages"]]
        assert ids == ([ack["id"], pub["id"]] if sees_private else [pub["id"]])
        assert h["ref"] == "h"
    # private chat to oneself goes to oneself only
    self_ack = await cat.chat("note to self", to=cat.id)
    m = await cat.expect("chat")
    assert m["message"]["id"] == self_ack["id"]
    await ada.roundtrip()
    assert all(x["message"]["id"] != self_ack["id"] for x in ada.received if x["type"] == "chat")


async def test_history_in_welcome_and_paging(
    fast_server: ParleyProcess, clients: Clients, room: str
) -> None:
    server = fast_server
    ada = await clients.join(server, room, "Ada")
    ids = [(await ada.chat(f"m{i}"))["id"] for i in range(55)]
    assert ids == sorted(ids)

    late = await clients.join(server, room, "Late")
    w = late.welcome
    assert w is not None
    assert [m["id"] for m in w["history"]] == ids[-50:]  # latest page, oldest first
    assert [m["text"] for m in w["history"]] == [f"m{i}" for i in range(5, 55)]
    assert w["history_more"] is True

    # WS paging
    await late.send({"type": "history", "before": ids[5], "limit": 3, "ref": "p1"})
    h = await late.expect("history")
    assert [m["id"] for m in h["messages"]] == ids[2:5]
    assert h["more"] is True and h["ref"] == "p1"
    await late.send({"type": "history", "before": ids[2], "limit": 10})
    h = await late.expect("history")
    assert [m["id"] for m in h["messages"]] == ids[:2] and h["more"] is False
    # limit clamped to at least 1 and at most 200
    await late.send({"type": "history", "limit": 0})
    h = await late.expect("history")
    assert [m["id"] for m in h["messages"]] == ids[-1:]
    await late.send({"type": "history", "limit": 100000})
    h = await late.expect("history")
    assert [m["id"] for m in h["messages"]] == ids and h["more"] is False

    # REST paging
    status, page = await get_json(server, f"/api/v1/rooms/{room}/messages?limit=10")
    assert status == 200
    assert [m["id"] for m in page["messages"]] == ids[-10:] and page["more"] is True
    status, page = await get_json(
        server, f"/api/v1/rooms/{room}/messages?before={ids[10]}&limit=20"
    )
    assert [m["id"] for m in page["messages"]] == ids[:10] and page["more"] is False
    status, page = await get_json(server, f"/api/v1/rooms/{room}/messages")
    assert len(page["messages"]) == 50 and page["more"] is True
    status, page = await get_json(server, f"/api/v1/rooms/{room}/messages?before=&limit=")
    assert status == 200 and len(page["messages"]) == 50


async def test_rest_errors_are_json(server: ParleyProcess, clients: Clients, room: str) -> None:
    await clients.join(server, room, "Ada")
    cases = [
        (f"/api/v1/rooms/{room}/messages?before=abc", 400, "bad_request"),
        (f"/api/v1/rooms/{room}/messages?limit=1.5", 400, "bad_request"),
        (f"/api/v1/rooms/{room}/messages?limit=0", 400, "bad_request"),
        (f"/api/v1/rooms/{room}/messages?limit=-3", 400, "bad_request"),
        ("/api/v1/rooms/bad%20room/messages", 400, "bad_room"),
        ("/api/v1/rooms/bad%21room", 400, "bad_room"),
        ("/api/v1/rooms/" + "a" * 65, 400, "bad_room"),
        ("/api/v1/rooms/" + "a" * 65 + "/messages", 400, "bad_room"),
        ("/api/v1/rooms/never-existed-" + room, 404, "not_found"),
        ("/api/v1/rooms/never-existed-" + room + "/messages", 404, "not_found"),
        ("/api/v1/nothing-here", 404, "not_found"),
    ]
    for path, status, code in cases:
        got_status, body = await get_json(server, path)
        assert got_status == status, (path, got_status, body)
        assert isinstance(body, dict), (path, body)
        assert body["error"]["code"] == code, (path, body)
        assert isinstance(body["error"]["message"], str)
        assert_clean(body)
    # 64 characters is a valid (unknown) room: 404, not 400
    status, body = await get_json(server, "/api/v1/rooms/" + "a" * 64)
    assert status == 404 and body["error"]["code"] == "not_found"


async def test_room_info_rest(server: ParleyProcess, clients: Clients, room: str) -> None:
    ada = await clients.join(server, room, "Ada")
    await clients.join(server, room, "Bob")
    status, info = await get_json(server, f"/api/v1/rooms/{room}")
    assert status == 200
    assert ada.welcome is not None
    assert info["name"] == room
    assert info["created_at"] == ada.welcome["room"]["created_at"]
    assert info["participant_count"] == 2
    assert sorted(p["name"] for p in info["participants"]) == ["Ada", "Bob"]
    assert ada.id in {p["id"] for p in info["participants"]}
    assert info["media"] == "sfu"
    # the room is remembered after everyone left
    for c in list(clients.opened):
        await c.send({"type": "leave"})
        await c.wait_closed()
    status, info = await get_json(server, f"/api/v1/rooms/{room}")
    assert status == 200 and info["participant_count"] == 0 and info["participants"] == []


async def test_signal_relay_byte_exact_and_unknown_target(
    mesh_server: ParleyProcess, clients: Clients, room: str
) -> None:
    """Mesh signalling: participants negotiate with each other through the server."""
    ada = await clients.join(mesh_server, room, "Ada")
    bob = await clients.join(mesh_server, room, "Bob")
    cat = await clients.join(mesh_server, room, "Cat")
    payload = '{"sdp" : "v=0\\r\\no=- 1 2 IN IP4 127.0.0.1", "n":[1, 2.50, null] }'
    await ada.send_raw(
        '{"type":"signal","to":"' + bob.id + '","payload":' + payload + ',"ref":"s1"}'
    )
    sig = await bob.expect("signal")
    assert sig["from"] == ada.id
    raw = next(r for r in bob.raw if '"type":"signal"' in r)
    assert payload in raw  # relayed unchanged, byte for byte
    # not to anyone else
    await cat.roundtrip()
    await ada.roundtrip()
    assert not [m for m in cat.received + ada.received if m["type"] == "signal"]

    # to an id not in the room: typed error with the ref, connection keeps working
    await ada.send({"type": "signal", "to": "p_nobodyhere12345", "payload": {}, "ref": "s2"})
    err = await ada.error("no_such_participant")
    assert err["ref"] == "s2"
    await ada.roundtrip()


async def test_signal_to_participant_of_another_room_is_refused(
    mesh_server: ParleyProcess, clients: Clients, room: str
) -> None:
    ada = await clients.join(mesh_server, room, "Ada")
    other = await clients.join(mesh_server, room + "-other", "Other")
    await ada.send({"type": "signal", "to": other.id, "payload": {"x": 1}})
    await ada.error("no_such_participant")
    await ada.send({"type": "chat", "text": "hi", "to": other.id, "ref": "pc"})
    err = await ada.error("no_such_participant")
    assert err["ref"] == "pc"
    await other.roundtrip()
    assert not [m for m in other.received if m["type"] in ("signal", "chat")]


async def test_reaction(server: ParleyProcess, clients: Clients, room: str) -> None:
    ada = await clients.join(server, room, "Ada")
    bob = await clients.join(server, room, "Bob")
    await ada.send({"type": "reaction", "emoji": "🎉"})
    for c in (ada, bob):
        r = await c.expect("reaction")
        assert r == {"type": "reaction", "from": ada.id, "emoji": "🎉"}
    await ada.send({"type": "reaction", "emoji": "💩", "ref": "r2"})
    err = await ada.error("bad_reaction")
    assert err["ref"] == "r2"
    await ada.roundtrip()
    # not stored
    _, page = await get_json(server, f"/api/v1/rooms/{room}/messages")
    assert page["messages"] == []


async def test_room_full(small_server: ParleyProcess, clients: Clients, room: str) -> None:
    srv = small_server
    a = await clients.join(srv, room, "A")
    assert a.welcome is not None and a.welcome["room"]["max_participants"] == 2
    await clients.join(srv, room, "B")
    c = await clients.connect(srv)
    await c.send({"type": "join", "room": room, "name": "C", "v": 1, "ref": "j"})
    err = await c.error("room_full")
    assert err["ref"] == "j"
    await c.roundtrip()  # still connected, may join another room
    await c.send({"type": "join", "room": room + "-b", "name": "C", "v": 1})
    await c.expect("welcome")


async def test_configured_chat_limit(
    small_server: ParleyProcess, clients: Clients, room: str
) -> None:
    srv = small_server
    a = await clients.join(srv, room, "A")
    assert a.welcome is not None and a.welcome["limits"]["chat_max_chars"] == 10
    await a.chat("x" * 10)
    await a.send({"type": "chat", "text": "x" * 11, "ref": "long"})
    err = await a.error("too_long")
    assert err["ref"] == "long"
    await a.chat("ok")


async def test_many_clients_concurrently(
    server: ParleyProcess, clients: Clients, room: str
) -> None:
    members = await asyncio.gather(*(clients.join(server, room, f"U{i}") for i in range(6)))
    acks = await asyncio.gather(*(m.chat(f"from {i}") for i, m in enumerate(members)))
    ids = {a["id"] for a in acks}
    for m in members:
        got: set[int] = set()
        while got != ids:
            got.add((await m.expect("chat"))["message"]["id"])
