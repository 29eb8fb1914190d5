"""Stage and audience, and who may chat, at the core: frames in, effects out."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from parley.config import Limits
from parley.core import protocol as p
from parley.core.effects import Deliver, Effect, RoleChanged, SaveSettings, StoreChat, Unpublish
from parley.core.protocol import ErrorCode
from parley.core.rooms import Rooms
from tests.core.test_moderation import Clock, Meeting


class Stage(Meeting):
    def __init__(self, limits: Limits | None = None, **kw: Any) -> None:
        super().__init__(limits or Limits(max_participants=50, **kw))
        self.mono = Clock(10.0)
        self.rooms._mono = self.mono  # the room chat rate's clock

    def settings(self, name: str, **msg: Any) -> list[Effect]:
        message = p.decode(json.dumps({"type": "room-settings", **msg}).encode())
        assert isinstance(message, p.RoomSettingsUpdate)
        return self.rooms.update_settings(self.ids[name], message, None)

    def info(self, name: str) -> p.Participant:
        member = self.rooms.find(self.ids[name])
        assert member is not None
        return member.info


def chat_of(effects: list[Effect]) -> StoreChat:
    (store,) = [e for e in effects if isinstance(e, StoreChat)]
    return store


@pytest.fixture
def s() -> Stage:
    """A stage room: the host, then two joiners (the audience)."""
    stage = Stage()
    stage.join("Host")
    stage.settings("Host", stage=True)
    stage.join("Aud")
    stage.join("Bea")
    return stage


# -- who is on stage -----------------------------------------------------------------


def test_stage_mode_follows_the_room_size_until_a_host_chooses() -> None:
    big = Stage(Limits(max_participants=500, stage_threshold=100))
    big.join("Host")
    big.join("Aud")
    assert (big.role("Host"), big.role("Aud")) == ("host", "observer")
    room = big.rooms.room("team")
    assert room is not None and big.rooms.settings_of(room).stage is True
    # A host turns it off: later joiners are participants (nobody already in moves).
    big.settings("Host", stage=False)
    big.join("Cy")
    assert (big.role("Aud"), big.role("Cy")) == ("observer", "participant")
    assert big.rooms.settings_of(room).stage is msgspec.UNSET  # (absent on the wire)
    # "auto" gives the choice back to the size; a host limiting the size turns it off.
    big.settings("Host", stage="auto")
    assert big.rooms.settings_of(room).stage is True
    big.settings("Host", max_participants=50)
    assert big.rooms.settings_of(room).stage is msgspec.UNSET

    small = Stage()  # 50 people: no stage unless a host turns it on
    small.join("Host")
    small.join("Bob")
    assert small.role("Bob") == "participant"


def test_a_join_token_role_keeps_its_place(s: Stage) -> None:
    s.join("Speaker", role="participant")
    assert s.role("Speaker") == "participant"


def test_settings_are_announced_saved_and_noted(s: Stage) -> None:
    effects = s.settings("Host", stage=False, chat="questions")
    (upd,) = [e for e in effects if isinstance(e, Deliver)]
    assert isinstance(upd.message, p.RoomUpdated)
    wire = json.loads(p.encode(upd.message))["settings"]
    assert "stage" not in wire and wire["chat"] == "questions"
    (saved,) = [e for e in effects if isinstance(e, SaveSettings)]
    assert (saved.config.stage, saved.config.chat) == (False, "questions")
    assert s.notes(effects) == [
        "Host turned the stage off",
        "Host limited the audience's chat to questions to the stage",
    ]
    assert s.notes(s.settings("Host", stage=False)) == []  # no change, no line


def test_the_audience_may_not_change_settings_or_promote(s: Stage) -> None:
    s.refused(ErrorCode.FORBIDDEN, "Aud", type="set-role", to="Aud", role="participant")
    s.refused(ErrorCode.FORBIDDEN, "Aud", type="set-role", to="Bea", role="host")
    with pytest.raises(p.ProtocolError) as info:
        s.settings("Aud", stage=False)
    assert info.value.code == ErrorCode.FORBIDDEN
    assert (s.role("Aud"), s.role("Bea")) == ("observer", "observer")


def test_the_audience_may_not_publish(s: Stage) -> None:
    s.refused(ErrorCode.FORBIDDEN, "Aud", type="media", mic=True)
    assert s.info("Aud").mic is False
    # ...but raises a hand, reacts and turns nothing on.
    assert s.frame("Aud", type="hand", raised=True)
    assert s.frame("Aud", type="reaction", emoji="👍")
    assert s.frame("Aud", type="media", mic=False)


def test_a_host_invites_someone_on_stage_and_back(s: Stage) -> None:
    s.frame("Aud", type="hand", raised=True)
    effects = s.frame("Host", type="set-role", to="Aud", role="participant")
    assert RoleChanged(s.ids["Aud"], "participant") in effects
    assert s.notes(effects) == ["Host invited Aud to the stage"]
    assert s.info("Aud").hand is False  # the request is answered
    s.frame("Aud", type="media", mic=True, cam=True)
    effects = s.frame("Host", type="set-role", to="Aud", role="observer")
    assert Unpublish("team", s.ids["Aud"]) in effects  # their media stops
    assert s.notes(effects) == ["Host moved Aud to the audience"]
    info = s.info("Aud")
    assert (info.role, info.mic, info.cam) == ("observer", False, False)


# -- who may chat --------------------------------------------------------------------


def test_chat_restricted_to_the_stage(s: Stage) -> None:
    s.settings("Host", chat="stage")
    s.refused(ErrorCode.FORBIDDEN, "Aud", type="chat", text="hi")
    s.refused(ErrorCode.FORBIDDEN, "Aud", type="chat", text="psst", to="Host")
    assert chat_of(s.frame("Host", type="chat", text="welcome")).to is None
    s.frame("Host", type="set-role", to="Bea", role="participant")
    assert chat_of(s.frame("Bea", type="chat", text="hello")).to is None


def test_questions_reach_the_stage_and_their_sender_only(s: Stage) -> None:
    s.settings("Host", chat="questions")
    s.frame("Host", type="set-role", to="Bea", role="participant")
    store = chat_of(s.frame("Aud", type="chat", text="When is lunch?"))
    assert store.to == "stage"
    assert store.deliver_to is not None
    assert sorted(store.deliver_to) == sorted([s.ids["Host"], s.ids["Bea"], s.ids["Aud"]])
    # A private message would go around the rule.
    s.refused(ErrorCode.FORBIDDEN, "Aud", type="chat", text="psst", to="Host")
    # The stage chats as usual; "stage" is nobody's id to them.
    assert chat_of(s.frame("Bea", type="chat", text="soon")).deliver_to is None
    s.refused(ErrorCode.NO_SUCH_PARTICIPANT, "Bea", type="chat", text="x", to="stage")


def test_everyone_chats_by_default(s: Stage) -> None:
    store = chat_of(s.frame("Aud", type="chat", text="hi"))
    assert (store.to, store.deliver_to) == (None, None)
    s.refused(ErrorCode.NO_SUCH_PARTICIPANT, "Aud", type="chat", text="x", to="stage")


# -- the room's chat rate ------------------------------------------------------------------


def test_a_room_chat_rate_holds_everyone_together_but_hosts() -> None:
    s = Stage(room_chat_rate=4)
    for name in ("Host", "Ann", "Bob"):
        s.join(name)
    for i in range(4):
        s.frame("Ann" if i % 2 else "Bob", type="chat", text=f"m{i}")
    s.refused(ErrorCode.RATE_LIMITED, "Ann", type="chat", text="one more")
    s.refused(ErrorCode.RATE_LIMITED, "Bob", type="chat", text="me too")
    assert chat_of(s.frame("Host", type="chat", text="hosts still speak"))
    s.mono.t += 2.5  # 4 per 10 s: one back every 2.5 s
    assert chat_of(s.frame("Bob", type="chat", text="again"))
    # Another room is not held back by this one.
    other = s.rooms.join("other", "Eve", 1).member.info.id
    chat = p.Chat(text="hi")
    assert s.rooms.chat(other, chat)


def test_the_room_chat_rate_is_off_with_rate_limits_and_forgotten_with_the_room() -> None:
    off = Stage(room_chat_rate=1, rate_limits=False)
    off.join("Host")
    off.join("Ann")
    for _ in range(5):
        off.frame("Ann", type="chat", text="x")
    rooms = Rooms(Limits(room_chat_rate=1))
    host = rooms.join("r", "A", 1).member.info.id
    pid = rooms.join("r", "B", 1).member.info.id
    rooms.chat(pid, p.Chat(text="x"))
    assert len(rooms.chat_rates) == 1
    rooms.leave(pid)
    rooms.leave(host)
    assert len(rooms.chat_rates) == 0  # no state kept for a closed room
