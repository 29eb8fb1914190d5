"""Bad input gets a typed error and loses nothing; protocol violations close only that socket."""

from __future__ import annotations

import asyncio
import json

from tests.server.harness import get_json
from tests.support.parley_process import ParleyProcess
from tests.support.ws_client import Client, Clients, assert_clean

JOIN = {"type": "join", "name": "Ada", "v": 1}


async def refused(client: Client, frame: str, code: str) -> dict[str, object]:
    await client.send_raw(frame)
    err = await client.error(code)
    assert set(err) <= {"type", "code", "message", "ref"}
    assert isinstance(err["message"], str) and err["message"]
    return err


async def test_malformed_and_mistyped_messages_before_and_after_join(
    server: ParleyProcess, clients: Clients, room: str
) -> None:
    c = await clients.connect(server)
    cases = [
        ("{not json", "bad_json"),
        ("", "bad_json"),
        ('{"type":"ping"', "bad_json"),
        ("[1,2]", "bad_message"),
        ('"hello"', "bad_message"),
        ("42", "bad_message"),
        ("null", "bad_message"),
        ("{}", "unknown_type"),
        ('{"type":"dance"}', "unknown_type"),
        ('{"type":7}', "unknown_type"),
        ('{"type":"join","room":5,"name":"x","v":1}', "bad_message"),
        ('{"type":"join","room":"r","name":"x","v":"1"}', "bad_message"),
    ]
    for frame, code in cases:
        await refused(c, frame, code)
        await c.roundtrip()
    # messages before join
    for msg in (
        {"type": "chat", "text": "hi", "ref": "nj"},
        {"type": "signal", "to": "p_x", "payload": {}, "ref": "nj"},
        {"type": "media", "mic": True, "ref": "nj"},
        {"type": "hand", "raised": True, "ref": "nj"},
        {"type": "rename", "name": "Z", "ref": "nj"},
        {"type": "reaction", "emoji": "🎉", "ref": "nj"},
        {"type": "history", "ref": "nj"},
        {"type": "leave", "ref": "nj"},
    ):
        err = await refused(c, json.dumps(msg), "not_joined")
        assert err["ref"] == "nj"
    # the connection is still usable: join works
    await c.send({**JOIN, "room": room})
    c.welcome = await c.expect("welcome")
    after = cases + [
        ('{"type":"chat","text":5,"ref":"w1"}', "bad_message"),
        ('{"type":"chat","text":"x","to":5}', "bad_message"),
        ('{"type":"hand","raised":"yes"}', "bad_message"),
        ('{"type":"media","mic":"on"}', "bad_message"),
        ('{"type":"history","before":"x"}', "bad_message"),
        ('{"type":"signal","to":["p_x"],"payload":1}', "bad_message"),
        ('{"type":"ping","ref":12}', "bad_message"),
        ('{"type":"join","room":"x","name":"y","v":1,"ref":"aj"}', "already_joined"),
        ('{"type":"chat","text":"","ref":"e"}', "empty"),
        ('{"type":"chat","text":"   \\n ","ref":"e"}', "empty"),
        ('{"type":"chat","ref":"e"}', "empty"),  # missing text
        ('{"type":"signal","payload":{}}', "no_such_participant"),  # missing to
        ('{"type":"rename","name":"   "}', "bad_name"),
        ('{"type":"rename"}', "bad_name"),
        ('{"type":"reaction"}', "bad_reaction"),
    ]
    for frame, code in after:
        err = await refused(c, frame, code)
        sent = json.loads(frame) if frame.startswith("{") and frame.endswith("}") else {}
        ref = sent.get("ref")
        if isinstance(ref, str):
            assert err["ref"] == ref
        await c.roundtrip()
    ack = await c.chat("still here")
    assert isinstance(ack["id"], int)
    # nothing refused was stored
    _, page = await get_json(server, f"/api/v1/rooms/{room}/messages")
    assert [m["text"] for m in page["messages"]] == ["still here"]


async def test_bad_join_requests(server: ParleyProcess, clients: Clients, room: str) -> None:
    c = await clients.connect(server)
    for msg, code in (
        ({**JOIN, "room": room, "v": 2}, "bad_version"),
        ({**JOIN, "room": room, "v": 0}, "bad_version"),
        ({**JOIN, "room": ""}, "bad_room"),
        ({**JOIN, "room": "a" * 65}, "bad_room"),
        ({**JOIN, "room": "bad room"}, "bad_room"),
        ({**JOIN, "room": "bad/room"}, "bad_room"),
        ({**JOIN, "room": "café"}, "bad_room"),
        ({"type": "join", "name": "Ada", "v": 1}, "bad_room"),  # missing room
        ({**JOIN, "room": room, "name": ""}, "bad_name"),
        ({**JOIN, "room": room, "name": "   "}, "bad_name"),
        ({**JOIN, "room": room, "name": "x" * 65}, "bad_name"),
        ({**JOIN, "room": room, "name": "a\u0000b"}, "bad_name"),
        ({"type": "join", "room": room, "v": 1}, "bad_name"),  # missing name
        ({**JOIN, "room": room, "resume": "garbage"}, "bad_resume"),
        ({**JOIN, "room": room, "resume": "abc.def"}, "bad_resume"),
    ):
        err = await refused(c, json.dumps({**msg, "ref": "j"}), code)
        assert err["ref"] == "j"
        await c.roundtrip()
    # 64-character room names and display names are fine
    long_room = (room + "x" * 64)[:64]
    await c.send({**JOIN, "room": long_room, "name": "n" * 64})
    w = await c.expect("welcome")
    assert w["room"]["name"] == long_room and w["participants"][0]["name"] == "n" * 64


async def test_resume_token_for_another_room(
    server: ParleyProcess, clients: Clients, room: str
) -> None:
    a = await clients.join(server, room, "Ada")
    assert a.welcome is not None
    c = await clients.connect(server)
    await c.send({**JOIN, "room": room + "-2", "resume": a.welcome["resume"], "ref": "x"})
    err = await c.error("bad_resume")
    assert err["ref"] == "x"
    await c.roundtrip()


async def test_non_ascii_resume_token_is_bad_resume(
    server: ParleyProcess, clients: Clients, room: str
) -> None:
    c = await clients.connect(server)
    await c.send({**JOIN, "room": room, "resume": "abc.dé"})
    await c.error("bad_resume")


async def test_oversize_and_empty_chat(server: ParleyProcess, clients: Clients, room: str) -> None:
    a = await clients.join(server, room, "Ada")
    b = await clients.join(server, room, "Bob")
    await a.send({"type": "chat", "text": "x" * 4001, "ref": "big"})
    err = await a.error("too_long")
    assert err["ref"] == "big" and "4000" in err["message"]
    await a.send({"type": "chat", "text": "", "ref": "e"})
    assert (await a.error("empty"))["ref"] == "e"
    ok = await a.chat("é" * 4000)  # the limit counts characters, not bytes
    got = await b.expect("chat")
    assert got["message"]["id"] == ok["id"]
    assert [m["message"]["id"] for m in b.of_type("chat")] == [ok["id"]]


async def test_chat_flood_is_rate_limited_and_connection_keeps_working(
    server: ParleyProcess, clients: Clients, room: str
) -> None:
    a = await clients.join(server, room, "Ada")
    b = await clients.join(server, room, "Bob")
    n = 30
    for i in range(n):
        await a.send({"type": "chat", "text": f"flood {i}", "ref": f"f{i}"})
    outcomes: dict[str, str] = {}
    while len(outcomes) < n:
        m = await a.take(lambda x: x["type"] in ("chat-ack", "error"), "ack/error", 10)
        if m["type"] == "error":
            assert m["code"] == "rate_limited", m
            assert_clean(m)
        outcomes[m["ref"]] = m["type"]
    acked = [r for r, t in outcomes.items() if t == "chat-ack"]
    limited = [r for r, t in outcomes.items() if t == "error"]
    assert len(acked) >= 20  # the burst
    assert len(limited) >= 1 and len(acked) + len(limited) == n
    assert acked[:20] == [f"f{i}" for i in range(20)]
    # the connection keeps working: ping (another bucket) now, chat once a token is back
    await a.roundtrip()
    await asyncio.sleep(1.0)
    late = await a.chat("after the flood")
    # refused messages were neither delivered nor stored
    got = set()
    while late["id"] not in got:
        got.add((await b.expect("chat"))["message"]["id"])
    assert len(got) == len(acked) + 1
    _, page = await get_json(server, f"/api/v1/rooms/{room}/messages?limit=200")
    assert len(page["messages"]) == len(acked) + 1


async def test_no_rate_limits_lets_100_chats_through(
    fast_server: ParleyProcess, clients: Clients, room: str
) -> None:
    a = await clients.join(fast_server, room, "Ada")
    for i in range(100):
        await a.send({"type": "chat", "text": f"m{i}", "ref": f"r{i}"})
    for i in range(100):
        await a.expect("chat-ack", lambda m, i=i: m["ref"] == f"r{i}")
    assert not a.of_type("error")
    _, page = await get_json(fast_server, f"/api/v1/rooms/{room}/messages?limit=200")
    assert len(page["messages"]) == 100


async def test_frame_over_limit_closes_1009_others_unaffected(
    server: ParleyProcess, clients: Clients, room: str
) -> None:
    a = await clients.join(server, room, "Ada")
    b = await clients.join(server, room, "Bob")
    big = json.dumps({"type": "chat", "text": "x" * 70_000})
    assert len(big.encode()) > 65536
    await a.send_raw(big)
    assert await a.wait_closed() == 1009
    assert not a.of_type("error")
    # the others are unaffected
    ack = await b.chat("still fine")
    assert (await b.expect("chat"))["message"]["id"] == ack["id"]
    c = await clients.join(server, room, "Cat")
    await c.roundtrip()


async def test_frame_of_one_byte_over_the_limit(
    server: ParleyProcess, clients: Clients, room: str
) -> None:
    a = await clients.join(server, room, "Ada")
    frame = '{"type":"ping","pad":"' + "x" * 65536 + '"}'
    frame = frame[: 65537 - len('"}')] + '"}'
    assert len(frame.encode()) == 65537
    await a.send_raw(frame)
    assert await a.wait_closed() == 1009


async def test_frame_of_exactly_the_limit_is_accepted(
    server: ParleyProcess, clients: Clients, room: str
) -> None:
    a = await clients.join(server, room, "Ada")
    head, tail = '{"type":"ping","ref":"edge","pad":"', '"}'
    frame = head + "x" * (65536 - len(head) - len(tail)) + tail
    assert len(frame.encode()) == 65536
    await a.send_raw(frame)
    await a.expect("pong", within=5)


async def test_binary_frame_closes_1003(server: ParleyProcess, clients: Clients, room: str) -> None:
    a = await clients.join(server, room, "Ada")
    b = await clients.join(server, room, "Bob")
    await a.ws.send_bytes(b'{"type":"ping"}')
    assert await a.wait_closed() == 1003
    await b.roundtrip()
    # before join too
    c = await clients.connect(server)
    await c.ws.send_bytes(b"\x00\x01")
    assert await c.wait_closed() == 1003


async def test_too_many_errors_closes_1008(
    server: ParleyProcess, clients: Clients, room: str
) -> None:
    a = await clients.join(server, room, "Ada")
    b = await clients.join(server, room, "Bob")
    for _ in range(150):
        if a.closed.is_set():
            break
        await a.send_raw("{nope")
    assert await a.wait_closed() == 1008
    errors = a.of_type("error")
    assert len(errors) >= 100 and all(e["code"] == "bad_json" for e in errors)
    for e in errors:
        assert_clean(e)
    await b.roundtrip()
    await b.chat("unaffected")


async def test_join_timeout_closes_1008(
    small_server: ParleyProcess, clients: Clients, room: str
) -> None:
    srv = small_server
    c = await clients.connect(srv)
    assert await c.wait_closed(within=10) == 1008
    assert c.close_reason and "join" in c.close_reason
    # a joined client is not affected by the join timeout
    a = await clients.join(srv, room, "Ada")
    await asyncio.sleep(1.5)
    await a.roundtrip()


async def test_join_timeout_counts_from_connect_not_first_frame(
    small_server: ParleyProcess, clients: Clients
) -> None:
    srv = small_server
    c = await clients.connect(srv)
    await c.roundtrip()  # a ping before join is answered...
    # ...but the client still has to join within the timeout
    assert await c.wait_closed(within=4) == 1008


async def test_huge_history_cursor(server: ParleyProcess, clients: Clients, room: str) -> None:
    """An out-of-range integer cursor is refused or answered, never an internal error."""
    a = await clients.join(server, room, "Ada")
    await a.chat("one")
    await a.send({"type": "history", "before": 2**64, "ref": "h"})
    m = await a.take(lambda x: x.get("ref") == "h" or x["type"] == "error", "history answer", 10)
    assert_clean(m)
    assert m["type"] == "history" or m.get("code") == "bad_message", m
    await a.roundtrip()


async def test_huge_history_cursor_rest(server: ParleyProcess, clients: Clients, room: str) -> None:
    a = await clients.join(server, room, "Ada")
    await a.chat("one")
    status, body = await get_json(server, f"/api/v1/rooms/{room}/messages?before={2**64}")
    assert isinstance(body, dict), body
    assert status in (200, 400), (status, body)
