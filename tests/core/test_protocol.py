"""protocol.decode: every error path, defaults, unknown fields, byte-exact signal payloads."""

from __future__ import annotations

import json

import msgspec
import pytest

from parley.core import protocol as p
from parley.core.protocol import ErrorCode, ProtocolError


def refused(data: str | bytes) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        p.decode(data)
    return info.value


@pytest.mark.parametrize(
    "data", ["", "{", "not json", '{"type":"ping"', '{"type":"ping"}}', b"\xff\xfe", "{'a':1}"]
)
def test_bad_json(data: str | bytes) -> None:
    err = refused(data)
    assert err.code == ErrorCode.BAD_JSON
    assert err.ref is None
    assert "Traceback" not in err.message


@pytest.mark.parametrize("data", ["[]", '[{"type":"ping"}]', "1", '"ping"', "null", "true", "2.5"])
def test_non_object_is_bad_message(data: str) -> None:
    err = refused(data)
    assert err.code == ErrorCode.BAD_MESSAGE
    assert "object" in err.message


@pytest.mark.parametrize(
    "data",
    [
        "{}",
        '{"text":"hi"}',
        '{"type":"nope"}',
        '{"type":""}',
        '{"type":"Chat"}',
        '{"type":5}',
        '{"type":null}',
        '{"type":["chat"]}',
        '{"type":"welcome"}',  # a server message is not a client message
    ],
)
def test_unknown_or_missing_type(data: str) -> None:
    assert refused(data).code == ErrorCode.UNKNOWN_TYPE


def test_unknown_type_echoes_ref() -> None:
    err = refused('{"type":"nope","ref":"r1"}')
    assert (err.code, err.ref) == (ErrorCode.UNKNOWN_TYPE, "r1")


@pytest.mark.parametrize(
    "data",
    [
        '{"type":"join","room":"a","name":"b","v":"1"}',
        '{"type":"join","room":5,"name":"b","v":1}',
        '{"type":"join","room":"a","name":null,"v":1}',
        '{"type":"join","room":"a","name":"b","v":1,"resume":7}',
        '{"type":"chat","text":5}',
        '{"type":"chat","text":"hi","to":5}',
        '{"type":"chat","text":["hi"]}',
        '{"type":"signal","to":7,"payload":{}}',
        '{"type":"reaction","emoji":1}',
        '{"type":"hand","raised":"yes"}',
        '{"type":"hand","raised":1}',
        '{"type":"media","mic":1}',
        '{"type":"media","cam":"on"}',
        '{"type":"rename","name":{}}',
        '{"type":"history","before":"10"}',
        '{"type":"history","limit":1.5}',
        '{"type":"ping","ref":5}',
    ],
)
def test_wrong_typed_field_is_bad_message(data: str) -> None:
    err = refused(data)
    assert err.code == ErrorCode.BAD_MESSAGE, err.message


def test_wrong_typed_field_echoes_ref() -> None:
    err = refused('{"type":"chat","text":5,"ref":"c9"}')
    assert (err.code, err.ref) == (ErrorCode.BAD_MESSAGE, "c9")
    # a ref that is itself wrong is not echoed
    assert refused('{"type":"chat","text":5,"ref":9}').ref is None


def test_unknown_fields_are_ignored() -> None:
    msg = p.decode('{"type":"ping","extra":1,"nested":{"a":[1,2]},"ref":"x"}')
    assert msg == p.Ping(ref="x")
    msg = p.decode('{"type":"chat","text":"hi","future":true}')
    assert isinstance(msg, p.Chat) and msg.text == "hi" and msg.to is None


def test_defaults_and_types() -> None:
    j = p.decode('{"type":"join","room":"r","name":"n","v":1}')
    assert j == p.Join(room="r", name="n", v=1, resume=None, ref=None)
    assert isinstance(p.decode(b'{"type":"leave"}'), p.Leave)
    m = p.decode('{"type":"media","mic":true}')
    assert isinstance(m, p.Media) and (m.mic, m.cam, m.screen) == (True, None, None)
    h = p.decode('{"type":"history"}')
    assert isinstance(h, p.History) and (h.before, h.limit) == (None, None)
    assert p.decode('{"type":"hand","raised":true}') == p.Hand(raised=True)
    assert p.decode('{"type":"rename","name":"Z"}') == p.Rename(name="Z")
    assert p.decode('{"type":"reaction","emoji":"🎉"}') == p.Reaction(emoji="🎉")


@pytest.mark.parametrize(
    "payload",
    [
        '{"sdp" : "v=0\\r\\no=- 4611 2 IN IP4 127.0.0.1\\r\\n", "type":"offer"}',
        '{ "candidate":"candidate:1 1 udp 2122260223 192.168.1.2 5000 typ host",'
        ' "sdpMid":"0","sdpMLineIndex":0 }',
        "[1, 2.50, null, true]",
        '"just a string with \\u00e9scapes"',
        "null",
        "12345678901234567890123",
    ],
)
def test_signal_payload_passes_through_byte_exact(payload: str) -> None:
    frame = '{"type":"signal","to":"p_abc","payload":' + payload + ',"ref":"s"}'
    msg = p.decode(frame)
    assert isinstance(msg, p.Signal)
    assert msg.to == "p_abc" and msg.ref == "s"
    assert bytes(msg.payload) == payload.encode()
    out = p.encode(p.SignalOut(sender="p_me", payload=msg.payload))
    assert payload.encode() in out
    assert json.loads(out) == {"type": "signal", "from": "p_me", "payload": json.loads(payload)}


def test_signal_without_payload_relays_null() -> None:
    msg = p.decode('{"type":"signal","to":"p_x"}')
    assert isinstance(msg, p.Signal) and bytes(msg.payload) == b"null"


def test_error_encoding() -> None:
    data = p.error(ProtocolError(ErrorCode.TOO_LONG, "too long", "c7"))
    assert json.loads(data) == {
        "type": "error",
        "code": "too_long",
        "message": "too long",
        "ref": "c7",
    }
    # ref omitted when absent
    assert json.loads(p.error(ProtocolError(ErrorCode.BAD_JSON, "bad"))) == {
        "type": "error",
        "code": "bad_json",
        "message": "bad",
    }


def test_server_messages_encode_with_wire_names() -> None:
    assert json.loads(p.encode(p.ReactionOut(sender="p_a", emoji="👍"))) == {
        "type": "reaction",
        "from": "p_a",
        "emoji": "👍",
    }
    assert json.loads(p.encode(p.ParticipantLeft(id="p_a", reason="timeout"))) == {
        "type": "participant-left",
        "id": "p_a",
        "reason": "timeout",
    }
    rec = p.ChatRecord(id=1, ts=2, room="r", sender="p_a", name="A", text="t")
    assert "to" not in json.loads(p.encode(p.ChatOut(message=rec)))["message"]
    assert json.loads(p.encode(p.Pong(ref="x"))) == {"type": "pong", "ref": "x"}
    assert json.loads(p.encode(p.ChatAck(id=4, ts=5))) == {"type": "chat-ack", "id": 4, "ts": 5}


def test_every_client_message_type_decodes() -> None:
    for tag in ("join", "chat", "signal", "reaction", "hand", "media", "rename", "history",
                "ping", "leave"):  # fmt: skip
        msg = p.decode(msgspec.json.encode({"type": tag}))
        assert type(msg).__struct_config__.tag == tag
