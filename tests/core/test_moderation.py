"""Every moderation rule at the core: protocol bytes in, effects out.

Like ``websockets``' ``tests/test_protocol.py``: nothing here opens a socket or
a store.  A frame is decoded exactly as the server decodes it, handed to
:meth:`Rooms.handle` (or the settings and admin entry points), and the test
reads the effects the executor would carry out.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from parley.config import Limits
from parley.core import protocol as p
from parley.core.effects import (
    Deliver,
    Disconnect,
    Effect,
    LetIn,
    MediaEnded,
    Note,
    RoleChanged,
    RoomEmptied,
    SaveMeeting,
    SaveSettings,
    StopForwarding,
    Unpublish,
    lobby_key,
)
from parley.core.protocol import CloseCode, ErrorCode, ProtocolError
from parley.core.rooms import Rooms
from tests.core.support import bare


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class Meeting:
    """One room; people join by name, then send frames (JSON text, as on the wire)."""

    def __init__(self, limits: Limits | None = None) -> None:
        self.rooms = Rooms(limits or Limits(), monotonic=Clock(10.0), wall_clock=Clock(1e9))
        self.ids: dict[str, str] = {}

    def join(self, name: str, **kw: Any) -> str:
        joined = self.rooms.join("team", name, 1, address=f"10.0.0.{len(self.ids) + 1}", **kw)
        self.ids[name] = joined.member.info.id
        return joined.member.info.id

    def frame(self, name: str, **msg: Any) -> list[Effect]:
        """``name`` sends one frame: its bytes are decoded like the server's."""
        for key in ("to",):
            if key in msg and msg[key] in self.ids:
                msg[key] = self.ids[msg[key]]
        message = p.decode(json.dumps(msg).encode())
        return self.rooms.handle(self.ids[name], message)

    def refused(self, code: str, name: str, **msg: Any) -> None:
        msg.setdefault("ref", "r1")
        with pytest.raises(ProtocolError) as info:
            self.frame(name, **msg)
        assert (info.value.code, info.value.ref) == (code, "r1")

    def role(self, name: str) -> str:
        member = self.rooms.find(self.ids[name])
        assert member is not None
        return member.info.role

    def notes(self, effects: list[Effect]) -> list[str]:
        return [e.text for e in effects if isinstance(e, Note)]


def delivered(effects: list[Effect], kind: type) -> list[Deliver]:
    return [e for e in effects if isinstance(e, Deliver) and isinstance(e.message, kind)]


@pytest.fixture
def m() -> Meeting:
    meeting = Meeting()
    meeting.join("Host")  # the first in is the host
    meeting.join("Bob")
    meeting.join("Cy")
    return meeting


# -- who may moderate ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "msg",
    [
        {"type": "mute", "to": "Cy"},
        {"type": "mute-all"},
        {"type": "remove", "to": "Cy"},
        {"type": "set-role", "to": "Cy", "role": "host"},
        {"type": "lower-hand", "to": "Cy"},
        {"type": "admit", "to": "Cy"},
        {"type": "deny", "to": "Cy"},
        {"type": "end-meeting"},
    ],
)
def test_a_participant_may_not_moderate_and_nothing_changes(
    m: Meeting, msg: dict[str, Any]
) -> None:
    before = {n: m.role(n) for n in m.ids}
    m.refused(ErrorCode.FORBIDDEN, "Bob", **msg)
    assert {n: m.role(n) for n in m.ids} == before
    assert len(m.rooms.room("team").members) == 3  # type: ignore[union-attr]


def test_targets_must_be_in_the_same_room(m: Meeting) -> None:
    m.rooms.join("elsewhere", "Eve", 1)
    eve = next(pid for pid, x in m.rooms.members.items() if x.info.name == "Eve")
    m.refused(ErrorCode.NO_SUCH_PARTICIPANT, "Host", type="mute", to=eve)
    m.refused(ErrorCode.NO_SUCH_PARTICIPANT, "Host", type="remove", to="p_nobody")


# -- mute ----------------------------------------------------------------------------------


def test_mute_one_device_of_one_participant(m: Meeting) -> None:
    m.frame("Bob", type="media", cam=True, mic=True)
    effects = m.frame("Host", type="mute", to="Bob", kind="cam")
    (muted,) = delivered(effects, p.Muted)
    assert muted.to == (m.ids["Bob"],) and muted.message == p.Muted(kind="cam", by=m.ids["Host"])
    (updated,) = delivered(effects, p.ParticipantUpdated)
    info = updated.message.participant  # type: ignore[union-attr]
    assert (info.cam, info.mic) == (False, True)
    assert m.notes(effects) == ["Host turned off Bob's camera"]


def test_mute_all_spares_hosts(m: Meeting) -> None:
    m.frame("Host", type="set-role", to="Cy", role="host")
    effects = m.frame("Host", type="mute-all", kind="mic")
    assert [d.to for d in delivered(effects, p.Muted)] == [(m.ids["Bob"],)]
    assert m.notes(effects) == ["Host turned off everyone's microphone"]


# -- remove and bar ------------------------------------------------------------------------


def test_remove_tells_the_removed_closes_and_announces(m: Meeting) -> None:
    bob = m.ids["Bob"]
    effects = m.frame("Host", type="remove", to="Bob")
    assert effects[0] == Deliver("team", p.Removed(by=m.ids["Host"], ban=False), to=(bob,))
    assert effects[1] == Disconnect(bob, "team", CloseCode.REMOVED, "removed by a host")
    assert Deliver("team", p.ParticipantLeft(id=bob, reason="removed")) in effects
    assert StopForwarding("team", bob) in effects and SaveMeeting("team") in bare(effects)
    assert m.notes(effects) == ["Host removed Bob"]
    assert m.rooms.find(bob) is None
    m.join("Bob")  # not barred: may come back (as someone new)


def test_remove_with_ban_bars_id_subject_and_address(m: Meeting) -> None:
    m.join("Dan", subject="user-7")
    m.frame("Host", type="remove", to="Dan", ban=True)
    banned = m.rooms.room("team").banned  # type: ignore[union-attr]
    assert {"sub:user-7", f"pid:{m.ids['Dan']}"} <= banned
    with pytest.raises(ProtocolError) as info:
        m.rooms.join("team", "Dan again", 1, subject="user-7")
    assert info.value.code == ErrorCode.BANNED


def test_admin_remove_and_unknown_target() -> None:
    meeting = Meeting()
    meeting.join("Host")
    bob = meeting.join("Bob")
    effects = meeting.rooms.admin_remove("team", bob)
    assert effects is not None and meeting.notes(effects) == ["An administrator removed Bob"]
    assert meeting.rooms.admin_remove("team", bob) is None
    assert meeting.rooms.admin_remove("nowhere", bob) is None


# -- roles ---------------------------------------------------------------------------------


def test_make_host_renews_the_token_and_is_saved(m: Meeting) -> None:
    effects = m.frame("Host", type="set-role", to="Bob", role="host")
    assert RoleChanged(m.ids["Bob"], "host") in effects and SaveMeeting("team") in bare(effects)
    assert m.notes(effects) == ["Host made Bob a host"]
    assert m.role("Bob") == "host"


def test_make_observer_turns_media_off_and_stops_forwarding(m: Meeting) -> None:
    m.frame("Bob", type="media", mic=True, cam=True, screen=True)
    effects = m.frame("Host", type="set-role", to="Bob", role="observer")
    assert Unpublish("team", m.ids["Bob"]) in effects
    (updated,) = delivered(effects, p.ParticipantUpdated)
    info = updated.message.participant  # type: ignore[union-attr]
    assert (info.mic, info.cam, info.screen, info.role) == (False, False, False, "observer")
    assert m.notes(effects) == ["Host made Bob an observer"]
    m.refused(ErrorCode.FORBIDDEN, "Bob", type="media", mic=True)


def test_the_last_host_cannot_step_down(m: Meeting) -> None:
    m.refused(ErrorCode.FORBIDDEN, "Host", type="set-role", to="Host", role="participant")
    m.frame("Host", type="set-role", to="Bob", role="host")
    m.frame("Bob", type="set-role", to="Host", role="participant")
    assert (m.role("Host"), m.role("Bob")) == ("participant", "host")


def test_unknown_role_is_a_bad_message(m: Meeting) -> None:
    with pytest.raises(ProtocolError):  # refused at decoding: not a role
        m.frame("Host", type="set-role", to="Bob", role="king", ref="r1")


def test_last_host_leaving_hands_over_to_the_longest_present(m: Meeting) -> None:
    effects = m.rooms.leave(m.ids["Host"])
    assert RoleChanged(m.ids["Bob"], "host") in effects
    assert m.notes(effects) == ["Bob is now a host"]


# -- hands ---------------------------------------------------------------------------------


def test_lower_someone_elses_hand(m: Meeting) -> None:
    m.frame("Cy", type="hand", raised=True)
    effects = m.frame("Host", type="lower-hand", to="Cy")
    assert m.notes(effects) == ["Host lowered Cy's hand"]
    assert m.frame("Host", type="lower-hand", to="Cy") == []  # already down: nothing


# -- room settings -------------------------------------------------------------------------


def test_settings_are_announced_saved_and_noted(m: Meeting) -> None:
    msg = p.decode(b'{"type":"room-settings","locked":true,"password":"pw","max_participants":4}')
    assert isinstance(msg, p.RoomSettingsUpdate)
    effects = m.rooms.update_settings(m.ids["Host"], msg, "argon2-hash")
    assert delivered(effects, p.RoomUpdated)[0].message == p.RoomUpdated(
        settings=p.RoomSettings(locked=True, lobby=False, has_password=True, max_participants=4)
    )
    (saved,) = [e for e in effects if isinstance(e, SaveSettings)]
    assert (saved.config.password_hash, saved.config.locked) == ("argon2-hash", True)
    assert m.notes(effects) == [
        "Host limited the room to 4 participants",
        "Host locked the room",
        "Host set a room password",
    ]


@pytest.mark.parametrize(
    "frame",
    [
        b'{"type":"room-settings","max_participants":0,"ref":"r1"}',
        b'{"type":"room-settings","max_participants":51,"ref":"r1"}',
        b'{"type":"room-settings","password":"' + b"x" * 129 + b'","ref":"r1"}',
    ],
)
def test_out_of_range_settings_change_nothing(m: Meeting, frame: bytes) -> None:
    rooms = Rooms(dataclasses.replace(Limits(), max_participants=50))
    host = rooms.join("team", "Host", 1).member.info.id
    msg = p.decode(frame)
    assert isinstance(msg, p.RoomSettingsUpdate)
    with pytest.raises(ProtocolError) as info:
        rooms.update_settings(host, msg, None)
    assert (info.value.code, info.value.ref) == (ErrorCode.BAD_MESSAGE, "r1")
    assert rooms.room("team").config.max_participants is None  # type: ignore[union-attr]


def test_settings_by_a_participant_are_forbidden(m: Meeting) -> None:
    with pytest.raises(ProtocolError) as info:
        m.rooms.update_settings(m.ids["Bob"], p.RoomSettingsUpdate(locked=True), None)
    assert info.value.code == ErrorCode.FORBIDDEN


# -- the lobby -----------------------------------------------------------------------------


@pytest.fixture
def lobby() -> Meeting:
    meeting = Meeting()
    meeting.join("Host")
    meeting.rooms.update_settings(meeting.ids["Host"], p.RoomSettingsUpdate(lobby=True), None)
    meeting.join("Guest")
    return meeting


def test_joiners_wait_and_hosts_see_the_lobby(lobby: Meeting) -> None:
    guest = lobby.rooms.find(lobby.ids["Guest"])
    assert guest is not None and guest.waiting
    lobby.refused(ErrorCode.WAITING, "Guest", type="chat", text="let me in")


def test_admit_lets_in_and_announces(lobby: Meeting) -> None:
    gid = lobby.ids["Guest"]
    effects = lobby.frame("Host", type="admit", to="Guest")
    # Stored (and logged) first, then let in, then announced.
    assert bare(effects)[:2] == [SaveMeeting("team"), LetIn(gid, "team")]
    (joined,) = delivered(effects, p.ParticipantJoined)
    assert joined.exclude == gid
    assert delivered(effects, p.Lobby)[0].message == p.Lobby(waiting=[])
    assert lobby.notes(effects) == ["Host admitted Guest"]
    assert SaveMeeting("team") in bare(effects)


def test_deny_tells_the_joiner_and_closes(lobby: Meeting) -> None:
    gid = lobby.ids["Guest"]
    effects = lobby.frame("Host", type="deny", to="Guest")
    assert effects[0].room == lobby_key("team")  # type: ignore[union-attr]
    assert Disconnect(gid, "team", CloseCode.DENIED, "denied") in effects
    assert lobby.notes(effects) == ["Host declined Guest's request to join"]
    assert lobby.rooms.find(gid) is None
    lobby.refused(ErrorCode.NO_SUCH_PARTICIPANT, "Host", type="admit", to=gid)


def test_turning_the_lobby_off_admits_who_fits(lobby: Meeting) -> None:
    off = p.RoomSettingsUpdate(lobby=False)
    effects = lobby.rooms.update_settings(lobby.ids["Host"], off, None)
    assert LetIn(lobby.ids["Guest"], "team") in effects
    assert "Host turned the lobby off" in lobby.notes(effects)


def test_the_last_member_leaving_sends_the_lobby_away(lobby: Meeting) -> None:
    effects = lobby.rooms.leave(lobby.ids["Host"])
    assert Disconnect(lobby.ids["Guest"], "team", CloseCode.ENDED, "no host is left") in effects
    assert RoomEmptied("team", 1, None) in bare(effects)


# -- ending the meeting --------------------------------------------------------------------


def test_end_meeting_for_everyone(m: Meeting) -> None:
    effects = m.frame("Host", type="end-meeting")
    assert m.notes(effects) == ["Host ended the meeting"]
    assert Deliver("team", p.MeetingEnded(by=m.ids["Host"])) in effects
    assert Deliver(lobby_key("team"), p.MeetingEnded(by=m.ids["Host"])) in effects
    assert MediaEnded("team") in effects and RoomEmptied("team", 1, None) in bare(effects)
    closed = {e.pid for e in effects if isinstance(e, Disconnect)}
    assert closed == set(m.ids.values())
    assert m.rooms.room("team") is None and not m.rooms.members


def test_admin_end_and_admin_settings() -> None:
    meeting = Meeting()
    meeting.join("Host")
    assert meeting.rooms.admin_end("nowhere") is None
    effects = meeting.rooms.admin_settings("team", p.RoomSettingsUpdate(lobby=True), None)
    assert effects is not None
    assert meeting.notes(effects) == ["An administrator turned the lobby on"]
    assert meeting.rooms.room("team").config.managed  # type: ignore[union-attr]
    assert meeting.rooms.admin_settings("nowhere", p.RoomSettingsUpdate(lobby=True), None) is None
    ended = meeting.rooms.admin_end("team")
    assert ended is not None and meeting.notes(ended) == ["An administrator ended the meeting"]
