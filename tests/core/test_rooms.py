"""The rules of the meeting (rooms.Rooms), as plain Python with injected clocks."""

from __future__ import annotations

import dataclasses

import msgspec
import pytest

from parley.config import Limits
from parley.core import protocol as p
from parley.core.effects import Deliver, chat_deliveries
from parley.core.names import check_display_name, check_room_name
from parley.core.protocol import ErrorCode, ProtocolError
from parley.core.rooms import Rooms


class Clock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def mono() -> Clock:
    return Clock(100.0)


@pytest.fixture
def wall() -> Clock:
    return Clock(1_790_000_000.0)


@pytest.fixture
def rooms(mono: Clock, wall: Clock) -> Rooms:
    return Rooms(Limits(), wall_clock=wall, monotonic=mono)


def join(rooms: Rooms, room: str = "team", name: str = "Ada", **kw: object) -> str:
    return rooms.join(room, name, 1, **kw).member.info.id  # type: ignore[arg-type]


def delivers(effects: list[object], kind: type) -> list[Deliver]:
    return [e for e in effects if isinstance(e, Deliver) and isinstance(e.message, kind)]


def code_of(fn: object, *args: object) -> str:
    with pytest.raises(ProtocolError) as info:
        fn(*args)  # type: ignore[operator]
    return info.value.code


# -- join validation -------------------------------------------------------------------


def jmsg(**kw: object) -> p.Join:
    base: dict[str, object] = {"room": "team", "name": "Ada", "v": 1}
    base.update(kw)
    return p.Join(**base)  # type: ignore[arg-type]


def test_validate_join_ok_trims_name(rooms: Rooms) -> None:
    assert rooms.validate_join(jmsg(name="  Ada Lovelace \t")) == ("team", "Ada Lovelace")


@pytest.mark.parametrize("v", [0, 2, -1, 100])
def test_bad_version(rooms: Rooms, v: int) -> None:
    with pytest.raises(ProtocolError) as info:
        rooms.validate_join(jmsg(v=v, ref="j1"))
    assert (info.value.code, info.value.ref) == (ErrorCode.BAD_VERSION, "j1")


@pytest.mark.parametrize(
    "name", ["a", "A" * 64, "team-1", "a.b_c-D", "...", "0", "x" * 63 + "9", "_"]
)
def test_good_room_names(name: str) -> None:
    assert check_room_name(name, Limits()) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "a" * 65,
        "has space",
        "slash/room",
        "back\\slash",
        "émoji",
        "ｔｅａｍ",  # fullwidth letters
        "١٢٣",  # Arabic-Indic digits
        "team\n",
        "\nteam",
        "tab\t",
        "a#b",
        "a?b",
        "a%20b",
        "a:b",
        "null\x00",
        "🎉",
    ],
)
def test_bad_room_names(rooms: Rooms, name: str) -> None:
    assert code_of(check_room_name, name, Limits()) == ErrorCode.BAD_ROOM
    with pytest.raises(ProtocolError) as info:
        rooms.validate_join(jmsg(room=name, ref="r"))
    assert (info.value.code, info.value.ref) == (ErrorCode.BAD_ROOM, "r")


@pytest.mark.parametrize(
    "name", ["Ada", "  Ada  ", "x" * 64, " " + "y" * 64 + " ", "Zoë 🎉", "A B"]
)
def test_good_display_names(name: str) -> None:
    assert check_display_name(name, Limits()) == name.strip()


@pytest.mark.parametrize(
    "name",
    ["", " ", "\t\n ", "\u3000", "x" * 65, " " + "z" * 65, "a\x00b", "a\nb", "a\x1bb", "a\x7fb"],
)
def test_bad_display_names(rooms: Rooms, name: str) -> None:
    assert code_of(check_display_name, name, Limits()) == ErrorCode.BAD_NAME
    with pytest.raises(ProtocolError) as info:
        rooms.validate_join(jmsg(name=name, ref="n"))
    assert (info.value.code, info.value.ref) == (ErrorCode.BAD_NAME, "n")


@pytest.mark.parametrize("name", ["a\x85b", "a\x9b31mb"])
def test_c1_control_characters_in_display_names(name: str) -> None:
    assert code_of(check_display_name, name, Limits()) == ErrorCode.BAD_NAME


def test_display_name_limit_is_configurable() -> None:
    limits = dataclasses.replace(Limits(), display_name_max=5)
    assert check_display_name("abcde", limits) == "abcde"
    assert code_of(check_display_name, "abcdef", limits) == ErrorCode.BAD_NAME


# -- joining, room_full, leave -----------------------------------------------------------


def test_join_announces_to_the_others(rooms: Rooms, wall: Clock) -> None:
    joined = rooms.join("team", "Ada", 42)
    info = joined.member.info
    assert joined.resumed is False
    assert info.id.startswith("p_") and len(info.id) == 18
    assert info.name == "Ada" and info.joined_at == int(wall.t * 1000)
    (announce,) = delivers(joined.effects, p.ParticipantJoined)
    assert announce.room == "team" and announce.exclude == info.id and announce.to is None
    assert announce.message == p.ParticipantJoined(participant=info)
    assert rooms.rooms["team"].created_at == 42
    # a second joiner gets a different id; the room keeps its creation time
    other = rooms.join("team", "Bob", 99).member.info.id
    assert other != info.id
    assert rooms.rooms["team"].created_at == 42
    assert [x.id for x in rooms.rooms["team"].participants()] == [info.id, other]


def test_room_full() -> None:
    rooms = Rooms(dataclasses.replace(Limits(), max_participants=2))
    join(rooms, name="A")
    join(rooms, name="B")
    with pytest.raises(ProtocolError) as info:
        rooms.join("team", "C", 1, ref="j")
    assert (info.value.code, info.value.ref) == (ErrorCode.ROOM_FULL, "j")
    assert len(rooms.rooms["team"].members) == 2
    join(rooms, room="other", name="C")  # other rooms are unaffected


def test_room_full_default_six(rooms: Rooms) -> None:
    for i in range(6):
        join(rooms, name=f"U{i}")
    assert code_of(rooms.join, "team", "U6", 1) == ErrorCode.ROOM_FULL


def test_leave_tells_the_others_and_forgets_empty_rooms(rooms: Rooms) -> None:
    a = join(rooms, name="A")
    b = join(rooms, name="B")
    effects = rooms.leave(b)
    (left,) = delivers(effects, p.ParticipantLeft)
    assert left.message == p.ParticipantLeft(id=b, reason="left")
    assert left.room == "team"
    assert b not in rooms.members
    assert rooms.leave(b) == []  # idempotent
    assert code_of(rooms.member, b) == ErrorCode.NOT_JOINED
    rooms.leave(a)
    assert "team" not in rooms.rooms
    assert rooms.members == {}


# -- resume, disconnect and expiry ------------------------------------------------------


def test_resume_of_in_memory_member_is_silent(rooms: Rooms, mono: Clock) -> None:
    a = join(rooms, name="A")
    join(rooms, name="B")
    rooms.media(a, p.Media(mic=True))
    assert rooms.disconnected(a) == mono.t + Limits().resume_grace
    assert rooms.members[a].connected is False
    mono.t += 29
    again = rooms.join("team", "A renamed?", 5, resume_id=a)
    assert again.resumed is True
    assert again.effects == []
    assert again.member.info.id == a
    assert again.member.info.mic is True  # state kept
    assert again.member.connected is True and again.member.resume_deadline is None
    assert len(rooms.rooms["team"].members) == 2
    # no expiry after a resume
    mono.t += 1000
    assert rooms.expire(a) == []
    assert a in rooms.members


def test_resume_of_connected_member_is_silent_too(rooms: Rooms) -> None:
    """The old socket is not yet seen as dead: the new one takes over."""
    a = join(rooms, name="A")
    again = rooms.join("team", "A", 1, resume_id=a)
    assert again.resumed is True and again.effects == []
    assert len(rooms.rooms["team"].members) == 1


def test_resume_in_a_full_room_is_allowed() -> None:
    rooms = Rooms(dataclasses.replace(Limits(), max_participants=1))
    a = join(rooms, name="A")
    rooms.disconnected(a)
    assert rooms.join("team", "A", 1, resume_id=a).resumed is True


def test_disconnected_then_expire(rooms: Rooms, mono: Clock) -> None:
    a = join(rooms, name="A")
    b = join(rooms, name="B")
    deadline = rooms.disconnected(a)
    assert deadline == mono.t + 30
    mono.t = deadline - 0.001
    assert rooms.expire(a) == []  # not yet
    assert a in rooms.members
    mono.t = deadline
    effects = rooms.expire(a)
    (left,) = delivers(effects, p.ParticipantLeft)
    assert left.message == p.ParticipantLeft(id=a, reason="disconnected")
    assert a not in rooms.members
    assert rooms.expire(a) == []
    # expiring a connected member does nothing
    assert rooms.expire(b) == []
    assert rooms.disconnected("p_unknown") is None


def test_resume_after_expiry_joins_as_someone_new(rooms: Rooms, mono: Clock) -> None:
    """Past the grace the server no longer holds the identity: the token restores nothing."""
    a = join(rooms, name="A")
    join(rooms, name="B")
    rooms.disconnected(a)
    mono.t += 31
    rooms.expire(a)
    again = rooms.join("team", "A", 1, resume_id=a)
    assert again.member.info.id != a and again.resumed is False
    (announce,) = delivers(again.effects, p.ParticipantJoined)  # the others see it
    assert announce.exclude == again.member.info.id


def test_resume_grace_is_configurable(mono: Clock) -> None:
    rooms = Rooms(dataclasses.replace(Limits(), resume_grace=2.0), monotonic=mono)
    a = join(rooms)
    assert rooms.disconnected(a) == mono.t + 2.0


# -- chat -----------------------------------------------------------------------------------


def test_check_chat(rooms: Rooms) -> None:
    a = join(rooms, name="A")
    b = join(rooms, name="B")
    member, text, to = rooms.check_chat(a, p.Chat(text=" hi "))
    assert (member.info.id, text, to) == (a, " hi ", None)
    assert rooms.check_chat(a, p.Chat(text="x" * 4000))[1] == "x" * 4000
    assert rooms.check_chat(a, p.Chat(text="psst", to=b))[2] == b
    for text in ("", " ", "\n\t "):
        with pytest.raises(ProtocolError) as info:
            rooms.check_chat(a, p.Chat(text=text, ref="e"))
        assert (info.value.code, info.value.ref) == (ErrorCode.EMPTY, "e")
    with pytest.raises(ProtocolError) as info:
        rooms.check_chat(a, p.Chat(text="x" * 4001, ref="l"))
    assert (info.value.code, info.value.ref) == (ErrorCode.TOO_LONG, "l")
    assert "4001" in info.value.message and "4000" in info.value.message
    with pytest.raises(ProtocolError) as info:
        rooms.check_chat(a, p.Chat(text="psst", to="p_nobody", ref="t"))
    assert (info.value.code, info.value.ref) == (ErrorCode.NO_SUCH_PARTICIPANT, "t")
    assert code_of(rooms.check_chat, "p_stranger", p.Chat(text="hi")) == ErrorCode.NOT_JOINED


def test_chat_private_to_participant_of_another_room(rooms: Rooms) -> None:
    a = join(rooms, room="one", name="A")
    b = join(rooms, room="two", name="B")
    assert code_of(rooms.check_chat, a, p.Chat(text="x", to=b)) == ErrorCode.NO_SUCH_PARTICIPANT


def test_chat_max_chars_configurable() -> None:
    rooms = Rooms(dataclasses.replace(Limits(), chat_max_chars=3))
    a = join(rooms)
    rooms.check_chat(a, p.Chat(text="abc"))
    assert code_of(rooms.check_chat, a, p.Chat(text="abcd")) == ErrorCode.TOO_LONG


def record(**kw: object) -> p.ChatRecord:
    base: dict[str, object] = {
        "id": 1, "ts": 2, "room": "team", "sender": "p_a", "name": "A", "text": "t"
    }  # fmt: skip
    base.update(kw)
    return p.ChatRecord(**base)  # type: ignore[arg-type]


def test_chat_stored_audiences(rooms: Rooms) -> None:
    public = record()
    assert chat_deliveries(public) == [Deliver("team", p.ChatOut(message=public))]
    private = record(to="p_b")
    (d,) = chat_deliveries(private)
    assert d.to == ("p_a", "p_b") and d.exclude is None and d.message == p.ChatOut(message=private)
    to_self = record(to="p_a")
    (d,) = chat_deliveries(to_self)
    assert d.to == ("p_a",)


# -- signal, reaction, media, hand, rename ------------------------------------------------


def test_signal(rooms: Rooms) -> None:
    a = join(rooms, name="A")
    b = join(rooms, name="B")
    payload = msgspec.Raw(b'{"sdp" : "x"}')
    (d,) = rooms.signal(a, p.Signal(to=b, payload=payload))
    assert d.to == (b,) and d.room == "team"
    assert isinstance(d.message, p.SignalOut)
    assert d.message.sender == a and bytes(d.message.payload) == b'{"sdp" : "x"}'
    with pytest.raises(ProtocolError) as info:
        rooms.signal(a, p.Signal(to="p_ghost", ref="s"))
    assert (info.value.code, info.value.ref) == (ErrorCode.NO_SUCH_PARTICIPANT, "s")
    assert code_of(rooms.signal, "p_ghost", p.Signal(to=a)) == ErrorCode.NOT_JOINED


def test_signal_to_other_rooms_participant_refused(rooms: Rooms) -> None:
    a = join(rooms, room="one", name="A")
    b = join(rooms, room="two", name="B")
    assert code_of(rooms.signal, a, p.Signal(to=b)) == ErrorCode.NO_SUCH_PARTICIPANT


def test_signal_to_disconnected_member_within_grace(rooms: Rooms) -> None:
    a = join(rooms, name="A")
    b = join(rooms, name="B")
    rooms.disconnected(b)
    # still a member during the grace period: the relay is addressed to it
    (d,) = rooms.signal(a, p.Signal(to=b))
    assert d.to == (b,)


def test_reaction(rooms: Rooms) -> None:
    a = join(rooms)
    for emoji in p.REACTIONS:
        (d,) = rooms.reaction(a, p.Reaction(emoji=emoji))
        assert d.to is None and d.exclude is None  # everyone, sender included
        assert d.message == p.ReactionOut(sender=a, emoji=emoji)
    assert p.REACTIONS == {"👍", "👏", "❤️", "😂", "😮", "🎉", "🤔", "👋"}
    for bad in ("", "💩", "👍👍", "thumbs", "❤"):
        with pytest.raises(ProtocolError) as info:
            rooms.reaction(a, p.Reaction(emoji=bad, ref="r"))
        assert (info.value.code, info.value.ref) == (ErrorCode.BAD_REACTION, "r")


def test_media_partial_update(rooms: Rooms) -> None:
    a = join(rooms)
    (d,) = delivers(rooms.media(a, p.Media(mic=True)), p.ParticipantUpdated)
    info = rooms.members[a].info
    assert (info.mic, info.cam, info.screen) == (True, False, False)
    assert d.message == p.ParticipantUpdated(participant=info) and d.to is None
    rooms.media(a, p.Media(cam=True, screen=True))
    assert (info.mic, info.cam, info.screen) == (True, True, True)
    rooms.media(a, p.Media(mic=False))
    assert (info.mic, info.cam, info.screen) == (False, True, True)
    rooms.media(a, p.Media())  # nothing changes, still announced
    assert (info.mic, info.cam, info.screen) == (False, True, True)


def test_hand_queue_ordering(rooms: Rooms, wall: Clock) -> None:
    a = join(rooms, name="A")
    b = join(rooms, name="B")
    c = join(rooms, name="C")
    join(rooms, room="elsewhere", name="X")
    wall.t = 2_000_000_000.0
    rooms.hand(b, p.Hand(raised=True))
    wall.t += 1
    rooms.hand(c, p.Hand(raised=True))
    wall.t += 1
    rooms.hand(a, p.Hand(raised=True))
    assert [x.id for x in rooms.hand_queue("team")] == [b, c, a]
    assert rooms.members[b].info.hand_at == 2_000_000_000_000
    # raising again keeps the place in the queue
    wall.t += 1
    rooms.hand(b, p.Hand(raised=True))
    assert rooms.members[b].info.hand_at == 2_000_000_000_000
    # lowering removes; raising again goes to the back
    (d,) = delivers(rooms.hand(b, p.Hand(raised=False)), p.ParticipantUpdated)
    assert rooms.members[b].info.hand is False and rooms.members[b].info.hand_at is None
    assert d.message == p.ParticipantUpdated(participant=rooms.members[b].info)
    assert [x.id for x in rooms.hand_queue("team")] == [c, a]
    wall.t += 1
    rooms.hand(b, p.Hand(raised=True))
    assert [x.id for x in rooms.hand_queue("team")] == [c, a, b]
    assert rooms.hand_queue("nowhere") == []


def test_rename(rooms: Rooms) -> None:
    a = join(rooms)
    (d,) = delivers(rooms.rename(a, p.Rename(name="  Ada L. ")), p.ParticipantUpdated)
    assert rooms.members[a].info.name == "Ada L."
    assert isinstance(d.message, p.ParticipantUpdated) and d.message.participant.name == "Ada L."
    for bad in ("", "   ", "x" * 65, "a\nb"):
        with pytest.raises(ProtocolError) as info:
            rooms.rename(a, p.Rename(name=bad, ref="rn"))
        assert (info.value.code, info.value.ref) == (ErrorCode.BAD_NAME, "rn")
    assert rooms.members[a].info.name == "Ada L."  # unchanged by refusals


def test_requests_before_join_are_not_joined(rooms: Rooms) -> None:
    for fn, msg in (
        (rooms.media, p.Media(mic=True)),
        (rooms.hand, p.Hand(raised=True)),
        (rooms.rename, p.Rename(name="x")),
        (rooms.reaction, p.Reaction(emoji="🎉")),
    ):
        assert code_of(fn, "p_nobody", msg) == ErrorCode.NOT_JOINED
